"""Seeded index sampling: stratified train/test splits, few-shot supports, episodes.

Glossary (see ``metaunsup.types``): the *support* split is the few labelled examples a
probe is fitted on, the *query* split is what it is scored on. All sampling uses
``np.random.default_rng(seed)``, so the same seed always gives the same indices.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from metaunsup.errors import UserError, check_array


class Episode(NamedTuple):
    """One few-shot episode; labels keep their original values unless relabelled.

    Attributes:
      support_x: [n_classes * shots, D].
      support_y: int32 [n_classes * shots].
      query_x: [n_classes * query_shots, D] (zero rows when no query was asked for).
      query_y: int32 [n_classes * query_shots].
    """

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray


def _labels(y, n: int | None = None) -> np.ndarray:
    y = check_array(y, name="y", ndim=1)
    if y.dtype.kind not in "iub":
        raise UserError(f"y: labels must be integers, got dtype {y.dtype}; cast with y.astype(int)")
    if n is not None and len(y) != n:
        raise UserError(f"x has {n} rows but y has {len(y)} labels; pass matching arrays")
    return y


def _count(value, name: str, *, allow_zero: bool = False) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < (0 if allow_zero else 1):
        least = "a non-negative" if allow_zero else "a positive"
        raise UserError(f"{name} must be {least} integer, got {value!r}")
    return int(value)


def _per_class(y: np.ndarray, classes: np.ndarray, need: int, rng: np.random.Generator,
               what: str) -> list[np.ndarray]:
    """For each class, ``need`` distinct indices in random order (or an error naming it)."""
    chosen = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if len(idx) < need:
            raise UserError(
                f"class {c} has only {len(idx)} examples but {what} = {need}; lower it to at most {len(idx)}"
            )
        chosen.append(rng.permutation(idx)[:need])
    return chosen


def sample_few_shot(y, shots: int, seed: int, *, classes: Sequence[int] | None = None) -> np.ndarray:
    """Indices of ``shots`` examples of every class (e.g. a probe's support set).

    Args:
      y: int [N] labels of the split to draw from (the train split, for probes).
      shots: examples per class (k).
      seed: RNG seed; the same seed gives the same indices.
      classes: the classes to draw; default every distinct value of ``y``. A class
        with fewer than ``shots`` examples (including none) is an error naming it.

    Returns:
      int64 [n_classes * shots] indices into ``y``, grouped by class in the order of
      ``classes`` (ascending by default), random within a class.
    """
    y = _labels(y)
    shots = _count(shots, "shots")
    chosen = np.unique(y) if classes is None else np.asarray(classes).reshape(-1)
    rng = np.random.default_rng(seed)
    picks = _per_class(y, chosen, shots, rng, "shots")
    return np.concatenate(picks).astype(np.int64)


def check_shots(labels, shots: int, num_classes: int | None = None) -> np.ndarray:
    """Checks every class has at least ``shots`` examples; returns the class ids.

    Args:
      labels: [N] integer labels of the split the support set is drawn from.
      shots: examples per class wanted.
      num_classes: if given, classes are ``0..num_classes-1`` and each must occur.
    """
    labels = np.asarray(labels)
    if not isinstance(shots, (int, np.integer)) or isinstance(shots, bool) or shots <= 0:
        raise UserError(f"shots must be a positive integer, got {shots!r}")
    classes, counts = np.unique(labels, return_counts=True)
    if num_classes is not None:
        full = np.zeros(num_classes, dtype=np.int64)
        inside = (classes >= 0) & (classes < num_classes)
        full[classes[inside]] = counts[inside]
        classes, counts = np.arange(num_classes), full
    if classes.size < 2:
        raise UserError(f"a probe needs at least 2 classes, the labels have {classes.size}")
    smallest = int(np.argmin(counts))
    if counts[smallest] < shots:
        raise UserError(
            f"shots={shots} but class {classes[smallest]} has only {counts[smallest]} "
            f"training examples; use --shots {int(counts[smallest])} or fewer")
    return classes


def few_shot_indices(labels, shots: int, seed: int, num_classes: int | None = None) -> np.ndarray:
    """Indices of ``shots`` examples per class, drawn without replacement.

    Checks the request (:func:`check_shots`), then draws with
    :func:`sample_few_shot` (``numpy.random.default_rng(seed)``).

    Args:
      labels: [N] integer labels.
      shots: examples per class.
      seed: integer seed.
      num_classes: optional number of classes (all must occur).

    Returns:
      [num_classes * shots] int indices into ``labels``, grouped by class.
    """
    labels = np.asarray(labels)
    classes = check_shots(labels, shots, num_classes)
    return sample_few_shot(labels, shots, int(seed), classes=classes)


def sample_episode(x, y, *, shots: int, query_shots: int | None = None, seed: int,
                   classes: int | Sequence[int] | None = None, relabel: bool = False) -> Episode:
    """Samples a k-shot support set and a disjoint query set from (x, y).

    Args:
      x: [N, D] examples.
      y: int [N] labels.
      shots: support examples per class (k).
      query_shots: query examples per class (q); None or 0 for an empty query.
      seed: RNG seed; the same seed gives the same episode.
      classes: which classes take part: None = all present in ``y``; an int n = n
        classes drawn at random (n-way); a sequence = exactly those labels.
      relabel: map the episode's classes (sorted) to 0..n-1.

    Returns:
      :class:`Episode`; within each split the rows are shuffled.
    """
    x = np.asarray(x)
    y = _labels(y, len(x))
    shots = _count(shots, "shots")
    q = 0 if query_shots is None else _count(query_shots, "query_shots", allow_zero=True)
    rng = np.random.default_rng(seed)
    present = np.unique(y)
    if classes is None:
        chosen = present
    elif isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        if not 1 <= classes <= len(present):
            raise UserError(f"classes={classes}: y has {len(present)} classes; pick 1..{len(present)}")
        chosen = np.sort(rng.choice(present, size=int(classes), replace=False))
    else:
        chosen = np.unique(np.asarray(classes))
        unknown = np.setdiff1d(chosen, present)
        if unknown.size:
            raise UserError(f"classes {unknown.tolist()} do not occur in y; pick from {present.tolist()}")
    what = "shots" if q == 0 else f"shots + query_shots ({shots} + {q})"
    picks = _per_class(y, chosen, shots + q, rng, what)
    support = rng.permutation(np.concatenate([p[:shots] for p in picks]))
    query = rng.permutation(np.concatenate([p[shots:] for p in picks]))
    sy, qy = y[support], y[query]
    if relabel:
        sy, qy = np.searchsorted(chosen, sy), np.searchsorted(chosen, qy)
    return Episode(x[support], sy.astype(np.int32), x[query], qy.astype(np.int32))


def stratified_split(y, *, test_size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices so every class keeps its share in both train and test.

    Args:
      y: int [N] labels.
      test_size: number of test examples (int) or their fraction of N (float in (0, 1)).
      seed: RNG seed.

    Each class c of size n_c gets the quota ``n_test * n_c / N``; quotas are floored
    and the leftover examples go to the classes with the largest remainders (ties to
    the smaller label), so the test split has exactly ``n_test`` examples.

    Returns:
      (train_idx, test_idx): int64 arrays, each sorted ascending.
    """
    y = _labels(y)
    n = len(y)
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise UserError(f"test_size as a fraction must be in (0, 1), got {test_size}")
        n_test = int(round(n * test_size))
    else:
        n_test = _count(test_size, "test_size")
    if not 0 < n_test < n:
        raise UserError(f"test_size {test_size} leaves no train or no test examples out of {n}")
    classes, counts = np.unique(y, return_counts=True)
    exact = n_test * counts / n
    quota = np.floor(exact).astype(np.int64)
    order = np.lexsort((classes, -(exact - quota)))  # largest remainder first
    quota[order[: n_test - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c, k in zip(classes, quota):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
