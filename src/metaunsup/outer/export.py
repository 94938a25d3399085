"""Rule files of meta-training runs: written at every checkpoint, exported on demand.

The rule file (``run.rulefile``: safetensors + JSON header, never a pickle)
holds the rule's meta-parameters, its configuration and the run's provenance;
``export_rule`` picks a checkpoint by validation score (never by held-out
data) and writes its rule.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from metaunsup.outer.config import (
    STRATEGIES,
    MetaTrainConfig,
    build_rule,
    config_from_dict,
    config_to_dict,
)
from metaunsup.rules.base import UpdateRule
from metaunsup.rules.loaded import PLACEHOLDER_NET
from metaunsup.run import make_provenance, save_rule, select_checkpoint
from metaunsup.streams import key_data, meta_init_key, residual_start_key
from metaunsup.types import MetaParams, PRNGKey


def start_key(config: MetaTrainConfig) -> PRNGKey:
    """The key a run of ``config`` draws its step-0 meta-parameters with.

    A gradient run: :func:`metaunsup.streams.meta_init_key`; an evolution strategy,
    whose step 0 is the residual's start: :func:`metaunsup.streams.residual_start_key`.
    """
    if config.estimator in STRATEGIES:
        return residual_start_key(config.seed, config.init_key)
    return meta_init_key(config.seed, config.init_key)


def write_rule(path, config: MetaTrainConfig, rule: UpdateRule, meta_params: MetaParams,
               step: int, **provenance: Any) -> None:
    """The rule file of ``meta_params`` at outer ``step``, with the run's provenance.

    The provenance records the key of the run's step 0 (``meta_init_key``,
    :func:`start_key`), so that ``init:RULE`` rebuilds that start without re-deriving it.
    """
    rule_config = getattr(rule, "config", None)
    rule_config = dataclasses.asdict(rule_config) if dataclasses.is_dataclass(rule_config) else {}
    provenance["meta_init_key"] = key_data(start_key(config))
    save_rule(path, meta_params, rule_name=config.rule, rule_config=rule_config,
              provenance=make_provenance(recipe=config.name, seed=config.seed, meta_steps=step,
                                         estimator=config.estimator,
                                         config=config_to_dict(config), **provenance))


def checkpoint_rule(workdir: str, *, step: int | None = None):
    """The rule of one kept checkpoint of a meta-training run.

    The checkpoint is chosen on the run's validation split only
    (:func:`metaunsup.run.workdir.select_checkpoint`: with ``step=None`` the best
    ``val_accuracy`` among those kept; else the one at ``step``).

    Returns:
      ``(config, rule, meta_params, step, val_accuracy)``: the run's config, its
      rule (built for a placeholder network; ``dataclasses.replace(rule,
      net=...)`` or the rule config give others), theta, the chosen step and its
      validation accuracy (None if that step has no validation record).
    """
    sel = select_checkpoint(workdir, step=step)
    config = config_from_dict(sel.config)
    rule = build_rule(config, PLACEHOLDER_NET)
    return config, rule, sel.tree["meta_params"], sel.step, sel.val_accuracy


def export_rule(workdir: str, out: str, *, step: int | None = None) -> dict:
    """Writes the rule of one checkpoint of a meta-training run to a rule file.

    The checkpoint is chosen by :func:`checkpoint_rule` (default: best validation score).

    Returns:
      ``{"step", "val_accuracy", "path"}`` of what was written.
    """
    config, rule, meta_params, step, val = checkpoint_rule(workdir, step=step)
    write_rule(out, config, rule, meta_params, step,
               selected_by="val_accuracy" if val is not None else "step", val_accuracy=val)
    return {"step": step, "val_accuracy": val, "path": str(out)}


__all__ = ["checkpoint_rule", "export_rule", "start_key", "write_rule"]
