"""The methods a study compares, as labels over the evaluation registry.

A study's ``methods`` setting lists labels. Each label maps to a registered
evaluation method (:mod:`metaunsup.baselines.registry`) and its options:

| label | evaluation method | options |
|---|---|---|
| ``rule`` | ``rule`` | the rule given with ``--rule`` (default: the shipped rule) |
| ``rule_init`` | ``rule`` | the same rule's untrained initialisation (:func:`init_rule_spec`) |
| any other registered name | itself | none (``random``, ``raw``, ``pca``, ``autoencoder``, ...) |

Every row is computed by :func:`metaunsup.eval.evaluate` (or the curve code of
:mod:`metaunsup.eval.compare`), the same path as ``metaunsup evaluate`` and the demo.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from metaunsup.errors import UserError
from metaunsup.eval import (
    ProbeConfig,
    compute_features,
    evaluate_features,
    get_method,
    method_names,
)
from metaunsup.rules.loading import load_rule

# Hand-designed rules added as evaluation methods by other modules; a study's default
# list includes those that are registered here.
HAND_RULES = ("softhebb", "krotov_hopfield", "wta", "bcm")
BASE_METHODS = ("rule", "rule_init", "random", "raw", "pca", "autoencoder")
# Methods whose features do not depend on the base network's widths, depth or
# activation (PCA keeps as many components as the top width, fixed in every study).
NETWORK_FREE = frozenset({"raw", "pca"})
RULE_LABELS = ("rule", "rule_init")


def default_methods(extra: Sequence[str] = ()) -> list[str]:
    """The base comparison plus every registered hand-designed rule, plus ``extra``."""
    names = set(method_names())
    out = list(BASE_METHODS) + [m for m in HAND_RULES if m in names]
    return out + [m for m in extra if m not in out]


def check_methods(labels: Sequence[str]) -> list[str]:
    """Validates study method labels (one-line error on an unknown one)."""
    labels = list(labels)
    if not labels:
        raise UserError("a study needs at least one method")
    if len(set(labels)) != len(labels):
        raise UserError(f"methods listed twice: {labels}")
    for label in labels:
        if label not in RULE_LABELS:
            get_method(label)
    return labels


def resolve(label: str, *, rule: str | None, init_rule: str) -> tuple[str, dict]:
    """``(evaluation method, options)`` of a study method label."""
    if label == "rule":
        return "rule", ({} if rule is None else {"rule": rule})
    if label == "rule_init":
        return "rule", {"rule": init_rule}
    return label, {}


def init_rule_spec(rule: str | None) -> str:
    """The spec of ``rule``'s untrained initialisation.

    ``init:<rule>`` (``init:shipped`` for the shipped rule) where the rule loader
    understands it; otherwise ``random-init``, the learned rule's default
    initialisation.
    """
    spec = f"init:{rule or 'shipped'}"
    try:
        load_rule(spec)
    except (UserError, OSError, ValueError):
        return "random-init"
    return spec


def rule_provenance(rule: str | None) -> dict:
    """Where the rule comes from (file header's provenance), loading it once to check it."""
    loaded = load_rule(rule)
    prov = dict(loaded.header.get("provenance", {}))
    keep = ("recipe", "seed", "meta_steps", "selected_by", "val_accuracy", "date", "commit",
            "estimator")
    return {"spec": rule or "shipped", "rule": loaded.name,
            **{k: prov[k] for k in keep if k in prov}}


class FeatureCache:
    """Features of the most recent (method, data, network, options) group, per seed.

    Consecutive rows that differ only in the probe (``shots``) reuse the trained
    networks' features instead of training them again.
    """

    def __init__(self):
        self._group, self._features = None, {}

    def get(self, group: str, seed: int, make):
        if group != self._group:
            self._group, self._features = group, {}
        if seed not in self._features:
            self._features[seed] = make(seed)
        return self._features[seed]


def evaluate_row(label: str, dataset, *, spec, shots: int, seeds: Sequence[int],
                 settings: Mapping[str, Any], rule: str | None, init_rule: str,
                 data_id: str = "", cache: FeatureCache | None = None) -> dict:
    """One study row: ``label``'s features of ``dataset``, probed over ``seeds``.

    The same steps as :func:`metaunsup.eval.evaluate` (a stochastic method runs
    once per seed with that seed, a deterministic one once), through
    :func:`~metaunsup.eval.compute_features` and :func:`~metaunsup.eval.evaluate_features`;
    with a ``cache``, rows of the same group (``data_id``, network, options) share features.

    Returns:
      ``{"mean", "ci95", "accuracies", "seeds"}`` in percent (ci95 None for one seed).
    """
    method, options = resolve(label, rule=rule, init_rule=init_rule)
    options = {**options, "steps": int(settings["steps"]),
               "batch_size": int(settings["batch_size"]), "shots": shots}
    stochastic = get_method(method).stochastic
    cache = cache or FeatureCache()
    group = repr((label, data_id, spec, sorted((k, v) for k, v in options.items()
                                               if k != "shots" or method == "supervised")))

    def make(seed: int):
        return compute_features(method, dataset, spec=spec, seed=seed, options=options)

    def features(seed: int):
        return cache.get(group, seed if stochastic else -1, make if stochastic
                         else (lambda _: make(seeds[0])))

    res = evaluate_features(features, dataset.y_train, dataset.y_test, shots=shots,
                            seeds=seeds, config=ProbeConfig(max_test=int(settings["max_test"])))
    out = res.to_dict()
    out.pop("seconds", None)
    return out


def method_settings(label: str, *, rule: str | None, init_rule: str) -> dict:
    method, options = resolve(label, rule=rule, init_rule=init_rule)
    return {"method": method, "method_options": options}
