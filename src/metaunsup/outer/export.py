"""Rule files of meta-training runs: written at every checkpoint, exported on demand.

The rule file (``run.rulefile``: safetensors + JSON header, never a pickle)
holds the rule's meta-parameters, its configuration and the run's provenance;
``export_rule`` picks a checkpoint by validation score (never by held-out
data) and writes its rule.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec
from metaunsup.outer.config import MetaTrainConfig, build_rule, config_from_dict, config_to_dict
from metaunsup.outer.validation import validation_history
from metaunsup.rules.base import UpdateRule
from metaunsup.run import Workdir, make_provenance, save_rule
from metaunsup.types import MetaParams


def write_rule(path, config: MetaTrainConfig, rule: UpdateRule, meta_params: MetaParams,
                step: int, **provenance: Any) -> None:
    """The rule file of ``meta_params`` at outer ``step``, with the run's provenance."""
    rule_config = getattr(rule, "config", None)
    rule_config = dataclasses.asdict(rule_config) if dataclasses.is_dataclass(rule_config) else {}
    save_rule(path, meta_params, rule_name=config.rule, rule_config=rule_config,
              provenance=make_provenance(recipe=config.name, seed=config.seed, meta_steps=step,
                                         estimator=config.estimator,
                                         config=config_to_dict(config), **provenance))


def checkpoint_rule(workdir: str, *, step: int | None = None):
    """The rule of one kept checkpoint of a meta-training run.

    Selection uses the run's validation split only (never held-out data): with
    ``step=None`` the checkpoint at the step of the best ``val_accuracy`` among
    those kept; else the checkpoint at ``step``.

    Returns:
      ``(config, rule, meta_params, step, val_accuracy)``: the run's config, its
      rule (built for a placeholder network; ``dataclasses.replace(rule,
      net=...)`` or the rule config give others), theta, the chosen step and its
      validation accuracy (None if that step has no validation record).
    """
    wd = Workdir(workdir, create=False, keep=10**9)
    data = wd.read_config()
    if data is None:
        raise UserError(f"{workdir}: not a meta-training workdir (no config.json)")
    config = config_from_dict(data)
    kept = set(wd.checkpoints.all_steps())
    if not kept:
        raise UserError(f"{workdir}: holds no checkpoint (none in {wd.checkpoint_dir}); "
                        "a run saves one every checkpoint_every outer steps")
    vals = {r["step"]: r["val_accuracy"] for r in validation_history(workdir)}
    if step is None:
        candidates = [s for s in vals if s in kept]
        if not candidates:
            why = ("its metrics.jsonl, which holds the validation records, is missing or empty"
                   if not wd.read_metrics() else "no kept checkpoint has a validation record")
            raise UserError(f"{workdir}: {why}; pass a step (kept: {sorted(kept)})")
        step = max(candidates, key=lambda s: (vals[s], s))
    elif step not in kept:
        raise UserError(f"{workdir}: no checkpoint at step {step} (kept: {sorted(kept)})")
    tree = wd.checkpoints.restore(step).tree
    rule = build_rule(config, MLPSpec(n_in=1, widths=(1,)))
    return config, rule, tree["meta_params"], step, vals.get(step)


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


__all__ = ["checkpoint_rule", "export_rule", "write_rule"]
