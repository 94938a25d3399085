"""Rendered glyphs: the paper's "Alphabet" set, generated from system fonts.

62 classes (digits 0-9, A-Z, a-z), drawn with Pillow from every TrueType/OpenType font
under ``/usr/share/fonts`` that has all 62 characters (Debian packages such as
``fonts-dejavu-core``, ``fonts-liberation2``, ``fonts-freefont-ttf``). Each sample
picks a font at random and applies a random affine jitter (rotation, scale, shift);
everything is seeded, so the same fonts give the same arrays.

How a sample is made:
  1. Each (font, character) is rendered once into a "master" canvas of side
     ``M = 4 * resolution`` at a per-font point size that makes ascent + descent fill
     ``_FILL`` of the canvas, anchored at the middle of that line box. Letters of one
     font therefore keep their relative size and baseline ('o' stays smaller than 'O').
  2. The output image of side ``r`` is supersampled on a ``G = 4 r`` grid. Grid point
     q (in units of the image side, origin at the centre) reads the master at
     ``p = A^-1 (q - t)`` with ``A = s R(theta)``, by bilinear interpolation (zero
     outside the canvas); Pillow's affine transform does this in C.
  3. The 4x4 blocks are averaged (box filter), giving an anti-aliased r x r image.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from metaunsup.errors import UserError

CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FONT_DIRS = ("/usr/share/fonts",)
FONT_SUFFIXES = (".ttf", ".otf")
HOW_TO_GET = "apt-get install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf; pip install pillow"

# Jitter ranges (uniform). Shift is in units of the image side.
MAX_ROTATION_DEG = 12.0
SCALE_RANGE = (0.85, 1.1)
MAX_SHIFT = 0.08
# Supersampling factor of the output grid and of the master canvas.
_SUPERSAMPLE = 4
# Fraction of the canvas height filled by the font's ascent + descent.
_FILL = 0.9
# A code point no font maps; Pillow draws the font's .notdef glyph for it.
_MISSING = "\U0010fffd"


def pillow_available() -> bool:
    try:
        import PIL.ImageFont  # noqa: F401
    except ImportError:
        return False
    return True


def font_files(dirs: tuple[str, ...] = FONT_DIRS) -> list[Path]:
    """All ``.ttf`` / ``.otf`` files under ``dirs``, sorted (cheap: no font is opened)."""
    found = []
    for d in dirs:
        root = Path(d)
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file()]
    return sorted(set(found))


def available() -> bool:
    return pillow_available() and bool(font_files())


def _render_font(path: Path, canvas: int) -> np.ndarray | None:
    """uint8 [62, canvas, canvas] masters of one font, or None if it lacks a character."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        probe = ImageFont.truetype(str(path), size=100)
        ascent, descent = probe.getmetrics()
        size = max(4, int(round(100 * _FILL * canvas / max(ascent + descent, 1))))
        font = ImageFont.truetype(str(path), size=size)

        def draw(ch: str) -> np.ndarray:
            img = Image.new("L", (canvas, canvas), 0)
            ImageDraw.Draw(img).text((canvas / 2, canvas / 2), ch, fill=255, font=font, anchor="mm")
            return np.asarray(img)

        notdef = draw(_MISSING)
        masters = np.stack([draw(ch) for ch in CHARACTERS])
    except Exception:  # noqa: BLE001 - any font Pillow cannot use is skipped
        return None
    # A character drawn as nothing, or as the .notdef box, is missing from this font.
    blank = masters.reshape(len(CHARACTERS), -1).max(axis=1) == 0
    as_notdef = np.all(masters == notdef[None], axis=(1, 2))
    if blank.any() or as_notdef.any():
        return None
    return masters


@functools.lru_cache(maxsize=4)
def _masters(fonts: tuple[Path, ...], canvas: int) -> tuple[tuple[Path, ...], np.ndarray]:
    used, stacks = [], []
    for path in fonts:
        m = _render_font(path, canvas)
        if m is not None:
            used.append(path)
            stacks.append(m)
    if not stacks:
        raise UserError(f"dataset glyphs is not available offline: no usable font found; {HOW_TO_GET}")
    arr = np.stack(stacks)  # uint8 [F, 62, M, M]
    arr.setflags(write=False)
    return tuple(used), arr


def usable_fonts(resolution: int = 16) -> list[Path]:
    """The fonts that render all 62 characters (these are the ones sampled)."""
    return list(_masters(tuple(font_files()), _SUPERSAMPLE * resolution)[0])


def _sample(masters: np.ndarray, font: np.ndarray, label: np.ndarray, rng: np.random.Generator,
            resolution: int) -> np.ndarray:
    """Jittered renders, float32 [N, r*r] in [0, 1]; see the module docstring.

    Pillow's affine transform maps each output pixel centre X (continuous pixel
    coordinates on the G x G grid) to the master pixel ``in = L X + c``. With image
    units ``q = X / G - 1/2`` and master coordinate ``(p + 1/2) M`` where
    ``p = A^-1 (q - t)``:  ``L = (M / G) A^-1`` and ``c = M/2 - M A^-1 (1/2 + t)``.
    """
    from PIL import Image

    n = len(label)
    big = masters.shape[-1]
    grid = _SUPERSAMPLE * resolution
    theta = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, n))
    scale = rng.uniform(*SCALE_RANGE, n)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, (n, 2))
    out = np.empty((n, resolution * resolution), dtype=np.uint8)
    for i in range(n):
        cos, sin = np.cos(theta[i]), np.sin(theta[i])
        a_inv = np.array([[cos, sin], [-sin, cos]]) / scale[i]  # (s R(theta))^-1
        lin = (big / grid) * a_inv
        off = big / 2 - big * a_inv @ (0.5 + shift[i])
        coeffs = (lin[0, 0], lin[0, 1], off[0], lin[1, 0], lin[1, 1], off[1])
        master = Image.fromarray(masters[font[i], label[i]])
        img = master.transform((grid, grid), Image.Transform.AFFINE, coeffs,
                               resample=Image.Resampling.BILINEAR, fillcolor=0)
        out[i] = np.asarray(img.reduce(_SUPERSAMPLE)).ravel()  # box filter
    return out.astype(np.float32) / np.float32(255.0)


def generate(*, resolution: int = 16, per_class: int, seed: int,
             fonts: tuple[Path, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` jittered samples of each of the 62 characters, shuffled.

    Args:
      resolution: output side r (pixels).
      per_class: samples per character.
      seed: seeds font choice, jitter and order.
      fonts: font files to draw from; default all usable fonts under /usr/share/fonts.

    Returns:
      x float32 [62 * per_class, r*r] in [0, 1]; y int32 [62 * per_class] with
      ``CHARACTERS[y]`` the character drawn.
    """
    if not pillow_available():
        raise UserError(f"dataset glyphs is not available offline: Pillow is missing; {HOW_TO_GET}")
    fonts = tuple(font_files()) if fonts is None else tuple(Path(f) for f in fonts)
    _, masters = _masters(fonts, _SUPERSAMPLE * resolution)
    rng = np.random.default_rng(seed)
    label = np.repeat(np.arange(len(CHARACTERS)), per_class)
    rng.shuffle(label)
    font = rng.integers(0, masters.shape[0], size=len(label))
    x = _sample(masters, font, label, rng, resolution)
    return x, label.astype(np.int32)
