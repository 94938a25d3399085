"""Repeated few-shot evaluation: probe accuracy over explicit seeds, mean and 95% interval.

:func:`evaluate_features` probes given features (or features made per seed);
:func:`evaluate` runs a registered method (:mod:`metaunsup.baselines.registry`) on a
dataset and probes what it produces. For a stochastic method, probe seed ``s``
also seeds the method, so each seed draws a new network *and* a new support set.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from metaunsup.baselines.registry import compute_features, get_method
from metaunsup.data.episodes import check_shots
from metaunsup.errors import UserError
from metaunsup.eval.probes import ProbeConfig, get_probe
from metaunsup.eval.stats import mean_ci95
from metaunsup.models import MLPSpec

FeaturePair = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Accuracies of one configuration over several seeds, in percent.

    Attributes:
      mean: mean accuracy (percentage points).
      ci95: half-width of the 95% t-interval of the mean (percentage points; NaN
        for a single seed).
      accuracies: per-seed accuracy (percentage points), in the order of ``seeds``.
      seeds: the integer seeds used.
      seconds: wall time spent (features + probes).
    """

    mean: float
    ci95: float
    accuracies: tuple[float, ...]
    seeds: tuple[int, ...]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None)."""
        def clean(v):
            return None if isinstance(v, float) and math.isnan(v) else v
        return {"mean": clean(self.mean), "ci95": clean(self.ci95),
                "accuracies": list(self.accuracies), "seeds": list(self.seeds),
                "seconds": self.seconds}


def _check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise UserError("need at least one seed")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"seeds must be distinct, got {list(seeds)}")
    return seeds


def evaluate_features(features: FeaturePair | Callable[[int], FeaturePair], train_labels,
                      test_labels, *, shots: int, seeds: Sequence[int], probe: str = "logreg",
                      config: ProbeConfig = ProbeConfig()) -> ProbeResult:
    """Few-shot probe accuracy over several seeds.

    Args:
      features: ``(train_features [N, F], test_features [M, F])``, or a function
        ``seed -> (train_features, test_features)`` called once per seed.
      train_labels: [N] integer labels of the training split.
      test_labels: [M] integer labels of the test split.
      shots: labelled examples per class.
      seeds: integer seeds, one probe (and one call of ``features``) per seed.
      probe: "logreg" or "ridge".
      config: probe options.

    Returns:
      :class:`ProbeResult` in percent.
    """
    start = time.perf_counter()
    seeds = _check_seeds(seeds)
    probe_fn = get_probe(probe)
    check_shots(train_labels, shots)
    accs = []
    for seed in seeds:
        pair = features(seed) if callable(features) else features
        acc = probe_fn(pair[0], train_labels, pair[1], test_labels, shots=shots, seed=seed,
                       config=config)
        accs.append(100.0 * acc)
    mean, ci = mean_ci95(accs)
    return ProbeResult(mean=mean, ci95=ci, accuracies=tuple(accs), seeds=seeds,
                       seconds=time.perf_counter() - start)


def evaluate(method: str, dataset, *, spec, shots: int, seeds: Sequence[int],
             probe: str = "logreg", config: ProbeConfig = ProbeConfig(),
             options: dict[str, Any] | None = None) -> ProbeResult:
    """Runs a registered method on ``dataset`` and probes its features.

    Args:
      method: a name from :func:`metaunsup.eval.method_names`.
      dataset: has ``x_train`` [N, D], ``y_train`` [N], ``x_test`` [M, D], ``y_test`` [M].
      spec: :class:`metaunsup.models.MLPSpec` of the base network (``n_in == D``).
      shots: labelled examples per class.
      seeds: integer seeds; a stochastic method runs once per seed with that
        seed, a deterministic one once with ``seeds[0]``.
      probe: "logreg" or "ridge".
      config: probe options.
      options: passed to the method (e.g. ``steps``, ``rule``, ``whiten``), with
        ``shots`` set to the probe's (the ``supervised`` method trains on the
        probe's labelled examples).

    Returns:
      :class:`ProbeResult` in percent, ``seconds`` covering the method and the probes.
    """
    start = time.perf_counter()
    seeds = _check_seeds(seeds)
    entry = get_method(method)
    get_probe(probe)
    check_shots(dataset.y_train, shots)  # fail before spending time on features

    options = {**(options or {}), "shots": shots}

    def make(seed: int) -> FeaturePair:
        return compute_features(method, dataset, spec=spec, seed=seed, options=options)

    feats = make if entry.stochastic else make(seeds[0])
    result = evaluate_features(feats, dataset.y_train, dataset.y_test, shots=shots,
                               seeds=seeds, probe=probe, config=config)
    return dataclasses.replace(result, seconds=time.perf_counter() - start)


def evaluate_methods(methods: Sequence[str], dataset, *, dataset_name: str,
                     resolution: int | None, widths: Sequence[int], activation: str,
                     shots: int, seeds: Sequence[int], probe: str = "logreg",
                     max_test: int | None = 2000, options: dict | None = None,
                     standardize: bool = True,
                     on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """Evaluates each method on ``dataset``: one JSON-able record per method.

    The records are those ``metaunsup evaluate --json`` prints: :class:`ProbeResult`'s
    fields, the settings, and ``test_examples`` (how many test examples were scored).
    ``on_record`` is called with each as soon as it is computed.
    """
    options = dict(options or {})
    for m in methods:
        get_method(m)  # unknown names fail before any work
    spec = MLPSpec(n_in=int(dataset.x_train.shape[1]), widths=tuple(widths),
                   activation=activation)
    check_shots(dataset.y_train, shots)
    config = ProbeConfig(max_test=max_test, standardize=standardize)
    n_test = len(dataset.y_test)
    records = []
    for m in methods:
        res = evaluate(m, dataset, spec=spec, shots=shots, seeds=seeds, probe=probe,
                       config=config, options=options)
        rec = {"method": m, "dataset": dataset_name, "resolution": resolution,
               "shots": shots, **res.to_dict(), "widths": list(widths),
               "activation": activation, "probe": probe, "standardize": standardize,
               "max_test": max_test,
               "test_examples": n_test if max_test is None else min(max_test, n_test),
               "options": options}
        rec["seconds"] = round(rec["seconds"], 3)
        if on_record is not None:
            on_record(rec)
        records.append(rec)
    return records


__all__ = ["ProbeResult", "evaluate", "evaluate_features", "evaluate_methods"]
