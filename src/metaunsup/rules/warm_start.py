"""Warm-starting a richer learned-rule configuration from a trained compact one.

Issue 11: the compact family (``learned`` with ``config="compact"``: a learned mix of
planes over the activations) is cheap enough for full-horizon ES; the ``small`` and
``paper`` configurations add per-unit networks and learned read-outs that TBPTT or
PES can then train. :func:`warm_start_meta_params` carries what the two share:

- the mixing weights (and per-kind offsets) of every plane that both configurations
  build from the activations alone (``planes.HAND_PLANES`` and the competition
  planes), matched by name;
- the learned step size and the competition temperature.

Everything whose meaning depends on the read-outs starts where the target has no
effect: the mixing weights of the read-out planes (``outer*``, ``gram_*``) and the
bias read-out are zero. So the warm-started rule's weight and bias updates equal the
source rule's exactly, for any network (a test checks it), while its read-outs and
per-unit networks keep their random initialisation: their planes' mixing weights
get a non-zero meta-gradient at once, and the read-outs one step later (starting
the read-outs at zero as well would be a saddle point of the bilinear planes). The
bias read-out and the read-out planes read a different hidden state in each
configuration (the compact family's ``outer*`` planes read the activations), so they
are not carried over: the equality holds for sources whose bias read-out and
``outer*`` mixing weights are zero (as the compact family's untrained rule), and
:func:`dropped_parts` names what a trained source loses.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from metaunsup.errors import UserError
from metaunsup.rules.planes import COMPETITIVE_PLANES, HAND_PLANES
from metaunsup.types import MetaParams

SHARED_PLANES = HAND_PLANES + COMPETITIVE_PLANES
"""Planes computed from the activations alone: the same in every configuration."""


def check_warm_start(target, source) -> None:
    """Raises UserError unless ``source`` can seed ``target`` (both LearnedRuleConfig)."""
    for f in ("normalize_columns", "scale_by_fan_in", "v_update", "per_kind_mix", "learn_lr",
              "lr_min", "lr_max", "comp_tau_min", "comp_tau_max", "comp_k", "comp_delta",
              "eps", "var_eps"):
        if getattr(target, f) != getattr(source, f):
            raise UserError(f"warm start: the rule configurations differ in {f} "
                            f"({getattr(source, f)!r} in the source, {getattr(target, f)!r} "
                            "in the target), so the warm-started rule would not equal the "
                            "source rule")
    missing = [p for p in source.planes if p in SHARED_PLANES and p not in target.planes]
    if missing:
        raise UserError(f"warm start: the target configuration lacks plane(s) {missing} of "
                        "the source; use a configuration with them (e.g. small_competitive)")
    if not source.learn_lr and source.lr != target.lr:
        raise UserError(f"warm start: fixed step sizes differ ({source.lr} vs {target.lr})")


def dropped_parts(source_config, source_meta: MetaParams) -> list[str]:
    """The source's non-zero meta-parameters that a warm start cannot carry over."""
    labels = source_config.plane_labels
    w = np.asarray(source_meta["mix"]["w"])
    kind = np.asarray(source_meta["mix"].get("kind", np.zeros((1, len(labels)))))
    out = [lab for i, lab in enumerate(labels)
           if lab.split("[")[0] not in SHARED_PLANES and (w[i] != 0 or np.any(kind[:, i] != 0))]
    if np.any(np.asarray(source_meta["bias"]["w"]) != 0) or np.asarray(source_meta["bias"]["b"]):
        out.append("bias read-out")
    return out


def warm_start_meta_params(target_config, target_meta: MetaParams, source_config,
                           source_meta: MetaParams) -> MetaParams:
    """``target_meta`` with the shared parts copied from ``source_meta`` (see module doc).

    Args:
      target_config, source_config: the two rules' ``LearnedRuleConfig``.
      target_meta: the target's freshly initialised meta-parameters (random parts kept).
      source_meta: the trained source rule's meta-parameters.
    """
    check_warm_start(target_config, source_config)
    src_labels = list(source_config.plane_labels)
    tgt_labels = list(target_config.plane_labels)
    src_w = np.asarray(source_meta["mix"]["w"])
    w = np.zeros(len(tgt_labels), np.float32)
    kind = np.zeros((3, len(tgt_labels)), np.float32)
    src_kind = np.asarray(source_meta["mix"]["kind"]) if target_config.per_kind_mix else None
    for i, label in enumerate(tgt_labels):
        if label in SHARED_PLANES and label in src_labels:
            j = src_labels.index(label)
            w[i] = src_w[j]
            if src_kind is not None:
                kind[:, i] = src_kind[:, j]
    out = dict(target_meta)
    mix = dict(target_meta["mix"])
    mix["w"] = jnp.asarray(w)
    if target_config.per_kind_mix:
        mix["kind"] = jnp.asarray(kind)
    if "log_tau" in mix and "log_tau" in source_meta["mix"]:
        mix["log_tau"] = jnp.asarray(source_meta["mix"]["log_tau"])
    out["mix"] = mix
    if "log_lr" in out:
        out["log_lr"] = jnp.asarray(source_meta["log_lr"])
    out["bias"] = {"w": jnp.zeros_like(target_meta["bias"]["w"]),
                   "b": jnp.zeros_like(target_meta["bias"]["b"])}
    return out


__all__ = ["SHARED_PLANES", "check_warm_start", "dropped_parts", "warm_start_meta_params"]
