"""Meta-training data held on device, with class-balanced sampling inside jit.

All meta-training datasets are stacked into one [N, D] array at a common
resolution (so that one compiled inner loop serves every dataset), with a
per-class table of example indices, so that tasks can draw unlabeled batches
and labelled support/query episodes with ``jax.random`` alone.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.data import dataset_info, load
from metaunsup.errors import UserError
from metaunsup.tasks.synthetic import SYNTHETIC, generate
from metaunsup.types import Array, PRNGKey


class DataPool(NamedTuple):
    """Stacked datasets (a pytree of arrays; jit/vmap friendly).

    Attributes:
      x: [N, D] float32 examples in [0, 1].
      class_index: [C, M] int32 indices into ``x`` of each class's examples;
        rows shorter than M are padded by repeating their own entries.
      class_count: [C] int32 number of distinct examples of each class.
      class_dataset: [C] int32 dataset id of each class.
      dataset_num_classes: [K] int32 number of classes of each dataset.
      dataset_image: [K] float32, 1 for image sets (shifts and rotations
        apply), 0 for the others (only pixel noise applies).
    """

    x: Array
    class_index: Array
    class_count: Array
    class_dataset: Array
    dataset_num_classes: Array
    dataset_image: Array

    @property
    def num_datasets(self) -> int:
        return int(self.dataset_num_classes.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])


def build_pool(arrays: Sequence[tuple[np.ndarray, np.ndarray]], *,
               max_per_class: int = 400, seed: int = 0,
               image: Sequence[bool] | None = None) -> DataPool:
    """Stacks ``[(x [n_k, D], y [n_k]), ...]`` into a :class:`DataPool`.

    At most ``max_per_class`` examples of each class are kept (a seeded subset),
    which bounds the index table. Class ids are made global across datasets.
    ``image`` flags the image sets (default: all).
    """
    rng = np.random.default_rng(seed)
    dims = {x.shape[1] for x, _ in arrays}
    if len(dims) != 1:
        raise UserError(f"meta-training datasets must share one input size, got {sorted(dims)}")
    xs, rows, class_dataset, n_classes = [], [], [], []
    offset = 0
    for k, (x, y) in enumerate(arrays):
        keep = []
        labels = np.unique(y)
        for c in labels:
            idx = np.flatnonzero(y == c)
            if len(idx) > max_per_class:
                idx = np.sort(rng.choice(idx, max_per_class, replace=False))
            keep.append(idx)
        order = np.concatenate(keep)
        xs.append(np.asarray(x[order], np.float32))
        start = 0
        for idx in keep:
            rows.append(offset + start + np.arange(len(idx)))
            start += len(idx)
            class_dataset.append(k)
        n_classes.append(len(labels))
        offset += len(order)
    width = max(len(r) for r in rows)
    table = np.stack([np.resize(r, width) for r in rows]).astype(np.int32)
    return DataPool(
        x=jnp.asarray(np.concatenate(xs)),
        class_index=jnp.asarray(table),
        class_count=jnp.asarray([len(r) for r in rows], jnp.int32),
        class_dataset=jnp.asarray(class_dataset, jnp.int32),
        dataset_num_classes=jnp.asarray(n_classes, jnp.int32),
        dataset_image=jnp.asarray([True] * len(arrays) if image is None else list(image),
                                  jnp.float32),
    )


def load_split(names: Sequence[str], *, resolution: int, split: str, seed: int = 0,
               per_class: int | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                     list[bool]]:
    """The ``split`` ("train" or "test") of each named data set at ``resolution``.

    Registry sets (``metaunsup.data``) give their own splits (glyphs are
    rendered with 30 test examples per class, enough for disjoint support and
    query sets); generated ones (``tasks.synthetic``) are drawn with ``seed``
    for "train" and ``seed + 10_000`` for "test" (new classes: the validation
    classes never appear in meta-training), ``per_class`` examples per class
    (default 300 / 60). Non-image sets must have ``resolution ** 2`` inputs.

    Returns:
      ``([(x [n, D], y [n]), ...], [is_image, ...])``.
    """
    if split not in ("train", "test"):
        raise UserError(f"split must be 'train' or 'test', got {split!r}")
    dim = resolution ** 2
    arrays, image = [], []
    for name in names:
        if name in SYNTHETIC:
            n = per_class or (300 if split == "train" else 60)
            arrays.append(generate(name, dim=dim, per_class=n,
                                   seed=seed if split == "train" else seed + 10_000))
            image.append(False)
            continue
        opts = {"test_per_class": 30} if name in ("glyphs", "alphabet") else {}
        ds = load(name, resolution=resolution if _is_image(name) else None, **opts)
        x = ds.x_train if split == "train" else ds.x_test
        y = ds.y_train if split == "train" else ds.y_test
        x = np.asarray(x, np.float32).reshape(len(y), -1)
        if x.shape[1] != dim:
            raise UserError(f"data set {name!r} has {x.shape[1]} inputs; tasks need "
                            f"{dim} (resolution {resolution})")
        arrays.append((x, np.asarray(y)))
        image.append(ds.modality == "image")
    return arrays, image


def _is_image(name: str) -> bool:
    return dataset_info(name).modality == "image"


def check_episodes(pool: DataPool, *, n_way: int, shots: int, names: Sequence[str],
                   where: str = "tasks") -> None:
    """Raises a one-line error unless every dataset of ``pool`` can give an episode.

    An episode draws ``n_way`` classes of one dataset and ``2 * shots`` distinct
    examples of each (support + query); inside jit a shortfall would silently take
    classes of another dataset or fail with an XLA error, so it is checked here.
    """
    counts, owner = np.asarray(pool.class_count), np.asarray(pool.class_dataset)
    for k, name in enumerate(names):
        n_classes = int(np.asarray(pool.dataset_num_classes)[k])
        if n_classes < n_way:
            raise UserError(f"{where}.n_way={n_way} but dataset {name!r} has only {n_classes} "
                            f"classes; use {where}.n_way={n_classes} or fewer")
        fewest = int(counts[owner == k].min())
        if fewest < 2 * shots:
            raise UserError(f"{where}.shots={shots} needs {2 * shots} examples of each class "
                            f"(support + query) but dataset {name!r} keeps only {fewest} of "
                            f"one class; use {where}.shots={fewest // 2} or fewer (or raise "
                            f"{where}.max_per_class)")


def sample_classes(key: PRNGKey, pool: DataPool, dataset_id: Array, n_way: int) -> Array:
    """Draws ``n_way`` distinct global class ids of dataset ``dataset_id``: [n_way]."""
    scores = jax.random.uniform(key, pool.class_count.shape)
    scores = jnp.where(pool.class_dataset == dataset_id, scores, -1.0)
    return jax.lax.top_k(scores, n_way)[1]


def sample_unlabeled(key: PRNGKey, pool: DataPool, dataset_id: Array, batch_size: int) -> Array:
    """Draws a [B, D] batch from one dataset (uniform class, then uniform example)."""
    k_class, k_ex = jax.random.split(key)
    logits = jnp.where(pool.class_dataset == dataset_id, 0.0, -jnp.inf)
    classes = jax.random.categorical(k_class, logits, shape=(batch_size,))
    slot = jax.random.randint(k_ex, (batch_size,), 0, pool.class_count[classes])
    return pool.x[pool.class_index[classes, slot]]


def sample_episode(key: PRNGKey, pool: DataPool, classes: Array, per_class: int) -> tuple[Array, Array]:
    """Draws ``per_class`` distinct examples of each class, without replacement.

    Returns:
      ``(x, labels)``: [n_way * per_class, D] examples grouped by class, and
      [n_way * per_class] labels 0..n_way-1 (positions in ``classes``).
    """
    width = pool.class_index.shape[1]
    keys = jax.random.split(key, classes.shape[0])

    def one(k, c):
        scores = jax.random.uniform(k, (width,))
        scores = jnp.where(jnp.arange(width) < pool.class_count[c], scores, -1.0)
        slots = jax.lax.top_k(scores, per_class)[1]
        return pool.x[pool.class_index[c, slots]]

    x = jax.vmap(one)(keys, classes)
    labels = jnp.repeat(jnp.arange(classes.shape[0], dtype=jnp.int32), per_class)
    return x.reshape((-1, x.shape[-1])), labels
