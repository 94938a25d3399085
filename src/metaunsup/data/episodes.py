"""Seeded few-shot sampling: k labelled examples per class for support and query."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from metaunsup.errors import UserError


class Episode(NamedTuple):
    """A few-shot episode: support_x [n, D], support_y [n], query_x [m, D], query_y [m]."""

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray


def _per_class(y: np.ndarray, need: int, classes) -> dict[int, np.ndarray]:
    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    out = {}
    for c in classes:
        idx = np.flatnonzero(y == c)
        if len(idx) < need:
            raise UserError(f"class {int(c)} has only {len(idx)} examples but {need} are "
                            "needed per class; lower --shots")
        out[int(c)] = idx
    return out


def sample_few_shot(y: np.ndarray, shots: int, seed: int, classes=None) -> np.ndarray:
    """Indices of ``shots`` examples of each class (sorted by class), seeded."""
    if shots <= 0:
        raise UserError(f"shots must be positive, got {shots}")
    rng = np.random.default_rng(seed)
    groups = _per_class(y, shots, classes)
    return np.concatenate([rng.choice(idx, shots, replace=False) for idx in groups.values()])


def sample_episode(x: np.ndarray, y: np.ndarray, *, shots: int, query_shots: int | None = None,
                   seed: int, classes=None) -> Episode:
    """Disjoint support (``shots`` per class) and query (``query_shots``, default
    ``shots``) sets drawn from (x, y) with a seeded generator."""
    q = shots if query_shots is None else query_shots
    if shots <= 0 or q < 0:
        raise UserError(f"shots must be positive and query_shots >= 0, got {shots}, {q}")
    rng = np.random.default_rng(seed)
    groups = _per_class(y, shots + q, classes)
    sup, qry = [], []
    for idx in groups.values():
        pick = rng.choice(idx, shots + q, replace=False)
        sup.append(pick[:shots])
        qry.append(pick[shots:])
    sup, qry = np.concatenate(sup), np.concatenate(qry)
    x, y = np.asarray(x), np.asarray(y)
    return Episode(x[sup], y[sup], x[qry], y[qry])
