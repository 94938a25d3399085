"""User-facing errors.

Every problem a user can cause (unknown dataset, bad shape, NaN in data, corrupt
checkpoint, bad config value) raises :class:`UserError` with a one-line message
that names the problem and, where there is one, the fix. The CLI prints the
message and exits with status 2; it never shows a traceback for these.
"""
from __future__ import annotations

import numpy as np


class UserError(ValueError):
    """A problem with the user's input, reported as a single line."""


def check_array(x, *, name: str, ndim: int | None = None, finite: bool = True) -> np.ndarray:
    """Validates a user-provided array and returns it as a numpy array.

    Args:
      x: array-like.
      name: how the array is called in the error message.
      ndim: required rank, if any.
      finite: reject NaN / Inf.
    """
    try:
        arr = np.asarray(x)
    except Exception as e:  # noqa: BLE001 - any conversion problem is the user's
        raise UserError(f"{name}: cannot convert to an array ({e})") from None
    if ndim is not None and arr.ndim != ndim:
        raise UserError(f"{name}: expected a rank-{ndim} array, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise UserError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise UserError(f"{name}: contains {bad} NaN or Inf values")
    return arr


def check_positive_int(value, *, name: str) -> int:
    """Returns ``value`` as an int, or raises if it is not a positive integer."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if isinstance(value, str) and value.strip().lstrip("+").isdigit():
        value, ok = int(value), True
    if not ok or int(value) <= 0:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
