"""Grey-scale patches of natural photographs and textures, from images that packages ship.

The paper meta-trained on CIFAR-10 and ImageNet subsets beside rendered fonts
(Metz et al. 2019, sec. 4.2); neither can be fetched here, so two offline
families stand in for natural images (``../shared/DATA.md``):

- ``natural``: patches of 13 photographs; the class is the source image.
- ``textures``: patches of 5 textured surfaces, each at 3 zooms; the class is
  (texture, zoom), 15 classes.

Every image is converted to grey (BT.601 luma) in [0, 1]. A patch is a window
of ``resolution * zoom`` source pixels, block-averaged down to ``resolution``
(an integer zoom, so the average is exact). Windows whose grey-level std is
below ``MIN_REL_STD`` times the image's own std (flat sky, background) are
redrawn. Each patch is then
histogram-equalised on its own: every pixel is replaced by its rank among the
patch's pixels, scaled to (0, 1) (ties share their mean rank). Every patch then
has the same grey-level histogram (mean exactly 0.5), so neither the mean grey
level, the contrast nor the brightness distribution of a source identifies its
class; only the spatial arrangement does (``experiments/transfer_validation``
reports mean-intensity-only and raw-pixel baselines for both families). A
z-scoring with clipping, tried first, left the mean of clipped patches
informative (a mean-only probe beat raw pixels on textures).

Splits are disjoint regions of every image: the left 75 % of its columns for
training, the right 25 % for testing (the validation split of the
meta-training data). Everything is seeded by fixed constants: the data do not
depend on the caller's seed.

Sources and licences (as stated by each package's documentation):

================  ==========================  ==========================================
image             package                     licence
================  ==========================  ==========================================
astronaut         scikit-image                public domain (NASA)
camera            scikit-image                CC0 (Lav Varshney)
cell              scikit-image                CC0
chelsea           scikit-image                CC0 (Stefan van der Walt)
coffee            scikit-image                CC0 (Rachel Michetti)
coins             scikit-image                no known copyright restrictions
page              scikit-image                scikit-image sample data (BSD-3 package)
retina            scikit-image                CC0 1.0
rocket            scikit-image                public domain (SpaceX)
text              scikit-image                public domain
china, flower     scikit-learn                CC BY 2.0 (Flickr: danielbuechele, vultilion)
grace_hopper      matplotlib                  matplotlib sample data (public domain photo)
brick, grass,     scikit-image (CC0Textures)  CC0
gravel
moon              scikit-image                scikit-image sample data (BSD-3 package)
hubble_deep_field scikit-image                public domain (NASA)
================  ==========================  ==========================================
"""
from __future__ import annotations

import numpy as np

from metaunsup.errors import UserError

NATURAL_IMAGES = ("astronaut", "camera", "cell", "chelsea", "coffee", "coins", "page", "retina",
                  "rocket", "text", "china", "flower", "grace_hopper")
"""Sources of ``natural`` (scikit-image's ``clock`` is left out: the right quarter of it,
the test region, is a flat background)."""
TEXTURE_IMAGES = ("brick", "grass", "gravel", "moon", "hubble_deep_field")
TEXTURE_ZOOMS = (1, 2, 4)
NATURAL_ZOOMS = (2, 3, 4)
MIN_REL_STD = 0.25
TRAIN_FRACTION = 0.75
PATCH_SEED = 20261204
HOW_TO_GET = "pip install scikit-image (its bundled sample images; scikit-learn and matplotlib ship the rest)"


def available() -> bool:
    """Whether scikit-image (whose sample images need no download) is installed."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return False
    return True


def _grey(image: np.ndarray) -> np.ndarray:
    """[H, W] float64 in [0, 1] from a grey, RGB or RGBA uint8 / float image."""
    x = np.asarray(image, np.float64)
    if x.max() > 1.0:
        x = x / 255.0
    if x.ndim == 3:
        x = x[..., :3] @ np.array([0.299, 0.587, 0.114])
    return x


def source_image(name: str) -> np.ndarray:
    """The grey [H, W] image ``name`` in [0, 1], from the package that ships it."""
    if not available():
        raise UserError(f"natural-image patches need scikit-image: {HOW_TO_GET}")
    import skimage.data

    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return _grey(load_sample_image(f"{name}.jpg"))
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return _grey(matplotlib.image.imread(f, format="jpg"))
    return _grey(getattr(skimage.data, name)())


def _windows(rng, region: np.ndarray, side: int, count: int, min_std: float) -> np.ndarray:
    """``count`` random ``side`` x ``side`` windows of ``region`` with std >= ``min_std``."""
    h, w = region.shape
    if h < side or w < side:
        raise UserError(f"an image region of {h}x{w} pixels is smaller than a {side}-pixel patch")
    out, tries = [], 0
    while len(out) < count:
        tries += 1
        if tries > 50 * count:
            raise UserError(f"too few textured {side}-pixel windows in a {h}x{w} region")
        i, j = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        win = region[i:i + side, j:j + side]
        if win.std() >= min_std:
            out.append(win)
    return np.stack(out)


def _block_mean(windows: np.ndarray, zoom: int) -> np.ndarray:
    n, s, _ = windows.shape
    r = s // zoom
    return windows.reshape(n, r, zoom, r, zoom).mean(axis=(2, 4))


def equalize(patches: np.ndarray) -> np.ndarray:
    """Per-patch histogram equalisation: ``(rank - 0.5) / n`` of each pixel among the
    patch's n pixels (ties: mean rank). [N, ...] -> float32 in (0, 1), mean 0.5."""
    from scipy.stats import rankdata

    flat = patches.reshape(len(patches), -1)
    ranks = rankdata(flat, method="average", axis=1)
    return ((ranks - 0.5) / flat.shape[1]).reshape(patches.shape).astype(np.float32)


def _split_patches(classes, resolution: int, train_per_class: int, test_per_class: int,
                   family: int):
    """``classes``: list of (image name, zoom options). Returns x_tr, y_tr, x_te, y_te."""
    rng = np.random.default_rng([PATCH_SEED, family, resolution])
    cache: dict[str, np.ndarray] = {}
    parts = {"train": ([], []), "test": ([], [])}
    for label, (name, zooms) in enumerate(classes):
        if name not in cache:
            cache[name] = source_image(name)
        image = cache[name]
        cut = int(round(TRAIN_FRACTION * image.shape[1]))
        regions = {"train": image[:, :cut], "test": image[:, cut:]}
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            zoom_of = rng.choice(np.asarray(zooms), size=count)
            for zoom in np.unique(zoom_of):
                n = int(np.sum(zoom_of == zoom))
                wins = _windows(rng, regions[split], resolution * int(zoom), n,
                                MIN_REL_STD * image.std())
                parts[split][0].append(equalize(_block_mean(wins, int(zoom))))
                parts[split][1].append(np.full(n, label, np.int32))
    (xtr, ytr), (xte, yte) = parts["train"], parts["test"]
    return np.concatenate(xtr), np.concatenate(ytr), np.concatenate(xte), np.concatenate(yte)


def read_natural(*, resolution: int, train_per_class: int, test_per_class: int):
    """Patches of :data:`NATURAL_IMAGES`, label = source image, zoom drawn from NATURAL_ZOOMS."""
    classes = [(name, NATURAL_ZOOMS) for name in NATURAL_IMAGES]
    return _split_patches(classes, resolution, train_per_class, test_per_class, family=0)


def read_textures(*, resolution: int, train_per_class: int, test_per_class: int):
    """Patches of :data:`TEXTURE_IMAGES` at each of :data:`TEXTURE_ZOOMS`; label = (image, zoom)."""
    classes = [(name, (zoom,)) for name in TEXTURE_IMAGES for zoom in TEXTURE_ZOOMS]
    return _split_patches(classes, resolution, train_per_class, test_per_class, family=1)


__all__ = ["HOW_TO_GET", "NATURAL_IMAGES", "TEXTURE_IMAGES", "TEXTURE_ZOOMS", "available",
           "equalize", "read_natural", "read_textures", "source_image"]
