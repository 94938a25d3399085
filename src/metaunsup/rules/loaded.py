"""A rule with its meta-parameters, usable on any base network: :class:`LoadedRule`.

:class:`LoadedRule` pairs a registered rule's name and configuration with its
meta-parameters, so that ``loaded.for_net(spec)`` gives an
:class:`~metaunsup.rules.base.UpdateRule` for any widths, depth or activation.
It is also an optax-style pair of pure functions over the base network's pytree
(any tuple of ``(w, b, v)`` layers, or a :class:`metaunsup.models.network.Network`),
jit-able and vmap-able::

    rule = metaunsup.load_rule()                    # any rule spec (rules.loading)
    net = metaunsup.init_network(196, (128, 32), key=jax.random.key(0))
    state = rule.init(net, key=k0)                  # RuleState: arrays + the static spec
    net, state, metrics = jax.jit(rule.update)(net, state, x, k1)   # x: [B, 196]

:func:`check_meta_params` is the one check of a rule's tensors, whatever reads them.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec
from metaunsup.models.network import Network, spec_of
from metaunsup.rules.base import UpdateRule, make_rule
from metaunsup.rules.learned import LearnedRuleConfig
from metaunsup.run.checkpoint import flatten_named, leaf_name
from metaunsup.types import MetaParams

PLACEHOLDER_NET = MLPSpec(n_in=1, widths=(1,))
"""A network to build a rule for when only its meta-parameters matter (they never
depend on the network)."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RuleState:
    """What :meth:`LoadedRule.init` returns: the rule's state and the network it is for.

    Attributes:
      rule_state: the rule's own carry (a pytree of arrays).
      spec: the base network's static description (not a pytree leaf).
    """

    rule_state: Any
    spec: MLPSpec = dataclasses.field(metadata=dict(static=True))


def _split_network(params, activation: str | None) -> tuple[Any, MLPSpec, Any]:
    """(layer params, spec, the Network or None) of a Network or a tuple of (w, b, v) layers."""
    if isinstance(params, Network):
        if activation is not None and activation != params.spec.activation:
            raise UserError(f"activation {activation!r} differs from the network's "
                            f"{params.spec.activation!r}")
        return params.params, params.spec, params
    return params, spec_of(params, activation or "relu"), None


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedRule:
    """A rule's name, configuration and meta-parameters.

    Attributes:
      name: registered rule name ("learned", ...).
      config: the rule's configuration as a plain dict (from the file header).
      meta_params: theta.
      header: the file's whole JSON header (format, provenance, ...), or {}.
    """

    name: str
    config: dict
    meta_params: MetaParams
    header: dict

    def for_net(self, net: MLPSpec) -> UpdateRule:
        """The rule, configured as saved, for the base network ``net``."""
        if self.name == "learned":
            fields = {f.name for f in dataclasses.fields(LearnedRuleConfig)}
            unknown = sorted(set(self.config) - fields)
            if unknown:
                raise UserError(f"rule file config has unknown fields {unknown}; it was written "
                                "by a newer metaunsup")
            cfg = {k: tuple(map(tuple, v)) if k == "init_mix" else
                   (tuple(v) if isinstance(v, list) else v) for k, v in self.config.items()}
            return make_rule("learned", net, config=LearnedRuleConfig(**cfg))
        return make_rule(self.name, net, **self.config)

    def init(self, params, *, key=None, activation: str | None = None) -> RuleState:
        """The rule's initial state for the base network ``params``.

        Args:
          params: a :class:`~metaunsup.network.Network`, or a tuple of layers
            with ``w`` [n_in, n_out], ``b`` [n_out], ``v`` [n_in, n_out].
          key: PRNG key of rules with random state (default ``PRNGKey(0)``).
          activation: the network's nonlinearity, for a plain layer tuple
            (default "relu"; a Network carries its own).
        """
        layers, spec, _ = _split_network(params, activation)
        key = jax.random.PRNGKey(0) if key is None else key
        return RuleState(self.for_net(spec).init_state(self.meta_params, layers, key=key), spec)

    def update(self, params, state: RuleState, x, key):
        """One unsupervised step: ``(params, state, metrics)`` after the batch ``x`` [B, n_in].

        Pure: jit it, vmap it over networks (stack two networks' and states' leaves).
        ``params`` comes back in the form it was given (a Network keeps its spec;
        its batch-norm statistics are those it had, not refreshed).
        """
        if not isinstance(state, RuleState):
            raise UserError(f"state must be the RuleState from rule.init, got "
                            f"{type(state).__name__}")
        layers, _, network = _split_network(params, state.spec.activation)
        new, rule_state, metrics = self.for_net(state.spec).step(
            self.meta_params, layers, state.rule_state, x, key=key)
        out = dataclasses.replace(network, params=new) if network is not None else new
        return out, RuleState(rule_state, state.spec), metrics


def check_meta_params(path, name: str, config: dict, meta_params) -> None:
    """Every tensor of a rule against the ``init_meta_params`` of the rule it names.

    The one check of a rule's tensors, whatever reads them (a rule file here, a
    workdir's checkpoint in ``validate``): each must exist with the shape and dtype
    that the rule ``name`` with ``config`` defines, and hold only finite numbers.

    Raises:
      UserError: one line naming ``path`` and the first bad tensor.
    """
    rule = LoadedRule(name, config, {}, {}).for_net(PLACEHOLDER_NET)
    shapes = jax.eval_shape(rule.init_meta_params, jax.random.PRNGKey(0))
    want = {leaf_name(p): s for p, s in jax.tree_util.tree_flatten_with_path(shapes)[0]}
    got, _ = flatten_named(meta_params)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or extra:
        what = (f"lacks tensor {missing[0]!r}, which" if missing
                else f"has tensor {extra[0]!r}, which no tensor of")
        raise UserError(f"{path}: the file {what} its rule {name!r} with the stored config "
                        f"defines ({len(missing)} missing, {len(extra)} extra)")
    for k in sorted(want):
        if got[k].shape != tuple(want[k].shape) or got[k].dtype != want[k].dtype:
            raise UserError(f"{path}: tensor {k!r} has shape {got[k].shape} dtype "
                            f"{got[k].dtype} but its rule {name!r} with the stored config "
                            f"expects shape {tuple(want[k].shape)} dtype {want[k].dtype}")
        bad = got[k].size - int(np.count_nonzero(np.isfinite(got[k])))
        if bad:
            raise UserError(f"{path}: tensor {k!r} holds {bad} NaN or Inf value(s) of "
                            f"{got[k].size}; this rule cannot be applied (export another "
                            "checkpoint of the run that made it)")


__all__ = ["LoadedRule", "PLACEHOLDER_NET", "RuleState", "check_meta_params"]
