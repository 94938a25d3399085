"""Array transforms shared by the image sources: value scaling and bilinear resizing.

Resizing follows the half-pixel-centre convention of ``tf.image.resize`` (TF2),
``jax.image.resize(..., antialias=False)``, OpenCV and Pillow's geometry: output pixel
``i`` of ``n_out`` samples the input at continuous coordinate

    u = (i + 0.5) * n_in / n_out - 0.5,

interpolating linearly between the two nearest input pixels and clamping at the
border. A consequence worth knowing: halving a side (28 -> 14) samples exactly half-way
between two pixels, so it equals 2x2 average pooling.
"""
from __future__ import annotations

import functools

import numpy as np

from metaunsup.errors import UserError, check_array


@functools.lru_cache(maxsize=64)
def linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """The 1-D linear-interpolation matrix ``A`` with ``out = A @ in``.

    Args:
      n_in: input length (> 0).
      n_out: output length (> 0).

    Returns:
      float64 [n_out, n_in]; every row sums to one and has at most two non-zeros.
    """
    if n_in <= 0 or n_out <= 0:
        raise UserError(f"resize: sizes must be positive, got {n_in} -> {n_out}")
    # Continuous source coordinate of each output sample centre, clamped to the valid
    # pixel range (this is the "edge clamp" border mode).
    u = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    u = np.clip(u, 0.0, n_in - 1)
    lo = np.floor(u).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = u - lo
    a = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(a, (rows, lo), 1.0 - frac)
    np.add.at(a, (rows, hi), frac)
    a.setflags(write=False)
    return a


def resize_images(x_flat, from_shape: tuple[int, int], to_shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a batch of flattened grayscale images.

    The 2-D bilinear map is separable, ``out = A_h @ img @ A_w.T``, so the whole batch
    costs two small matrix products.

    Args:
      x_flat: [N, H*W] images, row-major (H rows of W pixels).
      from_shape: (H, W) of the input images.
      to_shape: (H', W') wanted.

    Returns:
      float32 [N, H'*W'].
    """
    x = check_array(x_flat, name="images", ndim=2)
    h, w = (int(s) for s in from_shape)
    h2, w2 = (int(s) for s in to_shape)
    if x.shape[1] != h * w:
        raise UserError(
            f"images: rows have {x.shape[1]} values but from_shape {from_shape} needs {h * w}"
        )
    x = x.astype(np.float32, copy=False).reshape(-1, h, w)
    if (h, w) == (h2, w2):
        return x.reshape(len(x), h * w).copy()
    a_h = linear_weights(h, h2).astype(np.float32)
    a_w = linear_weights(w, w2).astype(np.float32)
    out = x @ a_w.T  # [N, H, W']
    out = np.einsum("oh,nhw->now", a_h, out, optimize=True)  # [N, H', W']
    return np.ascontiguousarray(out, dtype=np.float32).reshape(len(x), h2 * w2)


def to_unit_range(x, *, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Maps values affinely so that ``low -> 0`` and ``high -> 1``, clipping outside.

    Args:
      x: array of numbers.
      low: value mapped to 0; default ``x.min()``.
      high: value mapped to 1; default ``x.max()``. For uint8 pixels pass 0 and 255.

    Returns:
      float32 array of the same shape with values in [0, 1]. A constant input
      (``high == low``) maps to zeros.
    """
    arr = check_array(x, name="x")
    lo = float(arr.min()) if low is None else float(low)
    hi = float(arr.max()) if high is None else float(high)
    if hi < lo:
        raise UserError(f"to_unit_range: high ({hi}) is below low ({lo}); swap them")
    out = arr.astype(np.float32) - np.float32(lo)
    if hi > lo:
        out *= np.float32(1.0 / (hi - lo))
    else:
        out[...] = 0.0
    return np.clip(out, 0.0, 1.0, out=out)
