"""Summary statistics of repeated evaluations: mean and a 95% t-interval.

Accuracies measured under ``n`` independent seeds are summarised as
``mean +- h`` with the half-width of the two-sided Student-t interval

    h = t_{1 - alpha/2, n-1} * s / sqrt(n),   s^2 = sum_i (a_i - mean)^2 / (n - 1).

The quantile comes from ``scipy.stats.t`` (scipy is a dependency of
scikit-learn, so it is normally present); :func:`t_quantile_975` falls back to a
table for ``df <= 30`` and a Cornish-Fisher expansion beyond it.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from metaunsup.errors import UserError

# Two-sided 95% Student-t quantiles t_{0.975, df}, df = 1..30 (standard tables).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)
_Z975 = 1.959963984540054


def _t975_fallback(df: int) -> float:
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion of the t quantile in powers of 1/df around the
    # normal quantile z (Abramowitz & Stegun 26.7.5); error < 1e-5 for df > 30.
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise UserError(f"t quantile needs df >= 1, got {df}")
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - scipy ships with scikit-learn
        return _t975_fallback(int(df))
    return float(stats.t.ppf(0.975, df))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% t-interval half-width of ``values`` (same units as the values).

    Args:
      values: [n] measurements, one per seed.

    Returns:
      ``(mean, half_width)``; the half-width is NaN when ``n == 1`` (no spread
      can be estimated from one measurement).
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise UserError(f"need a non-empty list of values, got shape {a.shape}")
    mean = float(a.mean())
    n = a.size
    if n == 1:
        return mean, math.nan
    sd = float(a.std(ddof=1))
    return mean, t_quantile_975(n - 1) * sd / math.sqrt(n)
