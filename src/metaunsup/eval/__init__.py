"""Evaluation: few-shot probes, repeated over seeds, of any registered method
(:mod:`metaunsup.baselines.registry`), paired validation of rules, reports."""
from metaunsup.baselines.registry import (
    Method,
    compute_features,
    get_method,
    method_names,
    register_method,
)
from metaunsup.data.episodes import check_shots, few_shot_indices
from metaunsup.eval.evaluate import ProbeResult, evaluate, evaluate_features
from metaunsup.eval.probes import PROBES, ProbeConfig, logreg_probe, ridge_probe
from metaunsup.eval.stats import mean_ci95, t_quantile_975
from metaunsup.models.featurize import network_features

__all__ = [
    "Method", "PROBES", "ProbeConfig", "ProbeResult", "check_shots", "compute_features",
    "evaluate", "evaluate_features", "few_shot_indices", "get_method", "logreg_probe",
    "mean_ci95", "method_names", "network_features", "register_method", "ridge_probe",
    "t_quantile_975",
]
