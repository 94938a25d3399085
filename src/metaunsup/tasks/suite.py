"""A fixed, seeded suite of validation tasks on which rules are compared *paired*.

Every task is drawn from the validation split of the meta-training data
families (:data:`VALIDATION_DATASETS`: glyphs, digits, natural-image patches and
four generated non-image families; never MNIST, Fashion-MNIST or the text set)
and fixes everything that varies between tasks: the family, a random input
permutation, the 10 classes of the few-shot episode, the initial network, the
sequence of augmented unlabeled minibatches, and the augmented support/query
episode. Tasks are spread over fixed architecture groups (``tasks.archs``: the
paper's 4 x 128 + 32 network, deeper and wider ones, and every activation of
the nonlinearities study) so that one compilation serves all tasks of a group
(they are ``vmap``-ed).

The *transfer* suite (:data:`SUITES`) is built the same way from families that
neither meta-training nor validation sees (textures, a generated family): the
check that choosing by validation is not choosing for glyphs and digits.

Two rules run on the same suite therefore see identical tasks, initial
networks, minibatches and episodes, and their per-task scores can be compared
pair by pair (:mod:`metaunsup.eval.validate`). The suite depends only on
:class:`SuiteConfig` (seed included), not on the rule or the machine.

Scores per task and horizon (inner steps): the features of the support and
query examples (for the logistic probe, computed outside JAX), and the ridge
meta-objective (loss and accuracy; :func:`metaunsup.objectives.ridge_meta_loss`)
fitted on the support set and scored on the query set.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.errors import UserError
from metaunsup.inner.task import tree_all_finite
from metaunsup.inner.unroll import init_inner_state, inner_step
from metaunsup.models import MLPSpec
from metaunsup.objectives import RidgeConfig, centred_one_hot
from metaunsup.streams import task_reference_key
from metaunsup.tasks.augment import AugmentConfig, augment
from metaunsup.tasks.archs import ALL_GROUPS, ARCH_GROUPS, arch_spec
from metaunsup.tasks.episode import episode, ridge_score
from metaunsup.tasks.pool import (DataPool, build_pool, load_split, sample_classes,
                                  sample_unlabeled)
from metaunsup.types import Array, MetaParams

VALIDATION_DATASETS = ("glyphs", "digits", "natural", "synthetic_sparse", "synthetic_gmm",
                       "synthetic_arcs", "synthetic_signals")
"""Families of the validation suite: the validation split of every meta-training family."""
VALIDATION_WEIGHTS = (1.0, 1.0, 2.0, 0.5, 0.5, 0.5, 0.5)
"""Their shares of the tasks: images 2/3 (natural patches as much as glyphs and
digits together), the four non-image families 1/3."""
TRANSFER_DATASETS = ("textures", "synthetic_prototypes")
"""The transfer check: families kept out of meta-training and validation alike."""
DEFAULT_GROUPS = ALL_GROUPS
SUITES = {"validation": (VALIDATION_DATASETS, VALIDATION_WEIGHTS, 0),
          "transfer": (TRANSFER_DATASETS, (1.0, 1.0), 1)}
"""Named suites: (datasets, weights, seed)."""


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """What the validation suite looks like.

    Attributes:
      tasks: number of tasks N (spread over ``groups`` by their shares).
      steps: the long horizon S (inner steps), as in the demo.
      short_steps: the short horizon (reported beside S).
      seed: everything about the tasks derives from it.
      resolution: image side (meta-training uses <= 16).
      batch_size: unlabeled examples per inner step.
      n_way: classes per episode.
      shots: labelled support examples per class.
      query: query examples per class.
      groups: names of the architecture groups used (subset of ``ARCH_GROUPS``).
      datasets: the data families (registry or ``tasks.synthetic`` names), each
        task drawing one with probability proportional to ``weights``.
      weights: the families' shares (default: equal).
      augment: per-example augmentation of unlabeled batches and episodes.
      permute_inputs: a fixed random input permutation per task.
      ref_size: unlabeled examples whose batch statistics normalise the features.
      bank_size: each task augments this many unlabeled examples once, before
        training, and every inner step draws its minibatch from them (with
        replacement): at 1000 steps of 64 every example is seen about 16 times,
        as in epochs over an augmented data set. Augmenting every minibatch
        afresh spent most of an inner step in random-number generation and
        interpolation (measured: 2.3 of 4.2 ms per task-step with Oja's rule)
        and made the program 2 MB of HLO (50 s to compile per group).
    """

    tasks: int = 64
    steps: int = 1000
    short_steps: int = 100
    seed: int = 0
    resolution: int = 14
    batch_size: int = 64
    n_way: int = 10
    shots: int = 10
    query: int = 20
    groups: tuple[str, ...] = DEFAULT_GROUPS
    datasets: tuple[str, ...] = VALIDATION_DATASETS
    weights: tuple[float, ...] = VALIDATION_WEIGHTS
    augment: AugmentConfig = AugmentConfig()
    permute_inputs: bool = True
    ref_size: int = 256
    bank_size: int = 4096

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        weights = tuple(float(w) for w in self.weights)
        if self.datasets != VALIDATION_DATASETS and self.weights == VALIDATION_WEIGHTS:
            weights = (1.0,) * len(self.datasets)  # other families: equal shares by default
        object.__setattr__(self, "weights", weights)
        if not self.datasets or len(set(self.datasets)) != len(self.datasets):
            raise UserError(f"suite datasets must be distinct names, got {list(self.datasets)}")
        if len(weights) != len(self.datasets) or not all(w > 0 for w in weights):
            raise UserError(f"suite weights must be {len(self.datasets)} positive numbers, "
                            f"got {list(self.weights)}")
        for f in ("tasks", "steps", "batch_size", "n_way", "shots", "query", "ref_size",
                  "bank_size"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise UserError(f"suite {f} must be a positive integer, got {v!r}")
        if not 0 <= self.short_steps <= self.steps:
            raise UserError(f"suite short_steps must be in [0, steps={self.steps}], "
                            f"got {self.short_steps}")
        known = [g[0] for g in ARCH_GROUPS]
        bad = [g for g in self.groups if g not in known]
        if bad or not self.groups:
            raise UserError(f"suite groups must be names from {known}, got {list(self.groups)}")
        if self.seed < 0:
            raise UserError(f"suite seed must be >= 0, got {self.seed}")

    @property
    def horizons(self) -> tuple[int, ...]:
        return tuple(sorted({self.short_steps, self.steps}))


class SuiteGroup(NamedTuple):
    """The tasks of one architecture group (leading axis: tasks of the group).

    Attributes:
      name: group name.
      spec: the base network (without ``n_in`` until bound to a pool).
      index: [n] positions of these tasks in the whole suite.
      dataset_id, perm, classes: per-task data choices.
      key_init, key_data, key_episode: per-task PRNG keys.
    """

    name: str
    spec: MLPSpec
    index: np.ndarray
    dataset_id: Array
    perm: Array
    classes: Array
    key_init: Array
    key_data: Array
    key_episode: Array


def load_suite_pool(config: SuiteConfig) -> DataPool:
    """The suite's pool: the test (validation) split of ``config.datasets``."""
    arrays, image = load_split(config.datasets, resolution=config.resolution, split="test")
    pool = build_pool(arrays, max_per_class=400, seed=config.seed, image=image)
    need = config.shots + config.query
    if int(jnp.min(pool.class_count)) < need:
        raise UserError(f"suite needs {need} examples per class (shots + query); the "
                        f"validation pool has only {int(jnp.min(pool.class_count))}")
    small = [n for n, (_, y) in zip(config.datasets, arrays) if len(np.unique(y)) < config.n_way]
    if small:
        raise UserError(f"suite needs {config.n_way} classes per data set; {small[0]} has fewer")
    return pool


def suite_config(name: str, **fields) -> SuiteConfig:
    """The named suite (:data:`SUITES`: "validation" or "transfer") with fields overridden."""
    if name not in SUITES:
        raise UserError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    datasets, weights, seed = SUITES[name]
    return SuiteConfig(**{"datasets": datasets, "weights": weights, "seed": seed, **fields})


def group_sizes(config: SuiteConfig) -> dict[str, int]:
    """How many tasks each group gets (by its share; every group at least one)."""
    shares = {g[0]: g[3] for g in ARCH_GROUPS if g[0] in config.groups}
    total = sum(shares.values())
    sizes = {g: max(1, int(config.tasks * s // total)) for g, s in shares.items()}
    first = next(iter(sizes))
    sizes[first] += config.tasks - sum(sizes.values())  # the first group takes the rest
    if sizes[first] < 1:
        raise UserError(f"suite needs at least {len(sizes)} tasks for groups "
                        f"{list(sizes)}, got {config.tasks}")
    return sizes


def build_suite(config: SuiteConfig, pool: DataPool) -> list[SuiteGroup]:
    """The suite's tasks, grouped by architecture (deterministic in ``config``)."""
    arch = {g[0]: g for g in ARCH_GROUPS}
    root = jax.random.PRNGKey(config.seed)
    groups, start = [], 0
    for name, n in group_sizes(config).items():
        _, widths, activation, _ = arch[name]
        keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.arange(start, start + n))
        ks = jax.vmap(lambda k: jax.random.split(k, 6))(keys)  # [n, 6, 2]
        p = jnp.asarray(config.weights, jnp.float32)
        dataset_id = jax.vmap(
            lambda k: jax.random.choice(k, pool.num_datasets, p=p / p.sum()))(ks[:, 0])
        perm = jax.vmap(lambda k: jax.random.permutation(k, pool.dim) if config.permute_inputs
                        else jnp.arange(pool.dim))(ks[:, 1]).astype(jnp.int32)
        classes = jax.vmap(lambda k, d: sample_classes(k, pool, d, config.n_way))(
            ks[:, 2], dataset_id).astype(jnp.int32)
        spec = MLPSpec(n_in=pool.dim, widths=widths, activation=activation)
        groups.append(SuiteGroup(name, spec, np.arange(start, start + n), dataset_id, perm,
                                 classes, ks[:, 3], ks[:, 4], ks[:, 5]))
        start += n
    return groups


class TaskScores(NamedTuple):
    """Outputs of one task at every horizon (leading axis: horizons).

    Attributes:
      support: [H, n_way * shots, F] support features.
      query: [H, n_way * query, F] query features.
      ridge_loss: [H] ridge meta-objective (cosine loss) on the episode.
      ridge_accuracy: [H] its classification accuracy.
      finite: [H] whether every network parameter is finite.
    """

    support: Array
    query: Array
    ridge_loss: Array
    ridge_accuracy: Array
    finite: Array


def run_task(config: SuiteConfig, rule, meta_params: MetaParams, pool: DataPool,
             dataset_id, perm, classes, key_init, key_data, key_episode, *,
             horizons: Array | None = None) -> TaskScores:
    """Trains the task's network with ``rule`` and scores it at every horizon.

    ``horizons`` (an increasing int32 array, may be traced) replaces
    ``config.horizons``, so that one compiled program serves any horizon.
    """
    image = (config.resolution, config.resolution)
    net = rule.net
    ridge = RidgeConfig()
    geometric = pool.dataset_image[dataset_id]
    ex, labels, _ = episode(key_episode, pool, classes, perm, geometric, shots=config.shots,
                            query=config.query, image_shape=image, augment_config=config.augment)
    k_ref, k_ref_aug = jax.random.split(task_reference_key(key_episode))
    ref, _ = augment(k_ref_aug, sample_unlabeled(k_ref, pool, dataset_id, config.ref_size),
                     image, config.augment, geometric=geometric)
    ref = ref[:, perm]
    n_s = config.n_way * config.shots
    targets = centred_one_hot(labels, config.n_way)

    def score(params):
        f, loss, acc = ridge_score(params, net, ex, targets, ref, n_support=n_s,
                                   num_classes=config.n_way, ridge=ridge)
        finite = tree_all_finite(params)
        return f[:n_s], f[n_s:], loss, acc, finite

    k_bank, k_bank_aug, k_steps = jax.random.split(key_data, 3)
    bank, _ = augment(k_bank_aug, sample_unlabeled(k_bank, pool, dataset_id, config.bank_size),
                      image, config.augment, geometric=geometric)
    bank = bank[:, perm]

    def body(inner, t):
        idx = jax.random.randint(jax.random.fold_in(k_steps, t), (config.batch_size,), 0,
                                 config.bank_size)
        inner, _ = inner_step(rule, meta_params, inner, bank[idx])
        return inner, None

    def segment(inner, bounds):
        # One loop body and one scoring in the program, whatever the number of
        # horizons (compilation, not run time, dominates small suites).
        inner = jax.lax.fori_loop(bounds[0], bounds[1], lambda t, s: body(s, t)[0], inner)
        return inner, score(inner.params)

    inner = init_inner_state(rule, meta_params, key=key_init)
    ends = jnp.asarray(config.horizons if horizons is None else horizons, jnp.int32)
    bounds = jnp.stack([jnp.concatenate([jnp.zeros((1,), jnp.int32), ends[:-1]]), ends], axis=1)
    _, outs = jax.lax.scan(segment, inner, bounds)
    return TaskScores(*outs)


@partial(jax.jit, static_argnums=(0, 1))
def _run_group_jit(config, rule, meta_params, pool, dataset_id, perm, classes, key_init,
                   key_data, key_episode):
    return jax.vmap(lambda *a: run_task(config, rule, meta_params, pool, *a))(
        dataset_id, perm, classes, key_init, key_data, key_episode)


def run_group(config: SuiteConfig, rule, meta_params: MetaParams, pool: DataPool,
              group: SuiteGroup) -> TaskScores:
    """Runs ``rule`` (built for ``group.spec``) on every task of ``group`` (vmapped)."""
    if rule.net != group.spec:
        raise ValueError(f"rule built for {rule.net}, group needs {group.spec}")
    return _run_group_jit(config, rule, meta_params, pool, group.dataset_id, group.perm,
                          group.classes, group.key_init, group.key_data, group.key_episode)


def episode_labels(config: SuiteConfig) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the support and query rows of every task's episode."""
    classes = np.arange(config.n_way)
    return np.repeat(classes, config.shots), np.repeat(classes, config.query)


__all__ = ["ARCH_GROUPS", "DEFAULT_GROUPS", "SUITES", "SuiteConfig", "SuiteGroup", "TRANSFER_DATASETS",
           "TaskScores", "VALIDATION_DATASETS", "arch_spec", "build_suite", "episode_labels",
           "group_sizes", "load_suite_pool", "run_group", "run_task", "suite_config"]
