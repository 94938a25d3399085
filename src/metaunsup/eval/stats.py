"""Summary statistics of repeated evaluations: mean and a 95% t-interval.

Accuracies measured under ``n`` independent seeds are summarised as
``mean +- h`` with the half-width of the two-sided Student-t interval

    h = t_{1 - alpha/2, n-1} * s / sqrt(n),   s^2 = sum_i (a_i - mean)^2 / (n - 1).

The quantile is ``scipy.stats.t.ppf(0.975, n - 1)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

from metaunsup.errors import UserError

def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise UserError(f"t quantile needs df >= 1, got {df}")
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
