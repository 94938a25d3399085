"""Loading a rule file into a usable rule, for any base network.

A rule file (:mod:`metaunsup.run.rulefile`: safetensors arrays + a JSON header,
never pickle) stores ``meta_params`` and the rule's name and configuration;
:class:`LoadedRule` pairs them so that ``loaded.for_net(spec)`` gives an
:class:`~metaunsup.rules.base.UpdateRule` for any widths, depth or activation.
Every tensor's name, shape and dtype is checked at load against the
``init_meta_params`` of the rule the header describes.

A :class:`LoadedRule` is also an optax-style pair of pure functions over the
base network's pytree (any tuple of ``(w, b, v)`` layers, or a
:class:`metaunsup.network.Network`), jit-able and vmap-able::

    rule = metaunsup.load_rule()                    # or "oja", "softhebb", "random-init",
                                                    # "init:shipped", "init:PATH"
    net = metaunsup.init_network(196, (128, 32), key=jax.random.key(0))
    state = rule.init(net, key=k0)                  # RuleState: arrays + the static spec
    net, state, metrics = jax.jit(rule.update)(net, state, x, k1)   # x: [B, 196]
"""
from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec
from metaunsup.rules.base import UpdateRule, make_rule, rule_names
from metaunsup.types import MetaParams
from metaunsup.values import parse_pairs

SHIPPED_RULE = "rule_small.safetensors"
RANDOM_INIT = "random-init"
INIT_PREFIX = "init:"


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
    from metaunsup.network import Network, spec_of

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
            from metaunsup.rules.learned import LearnedRuleConfig

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
    from metaunsup.run.checkpoint import flatten_named, leaf_name

    rule = LoadedRule(name, config, {}, {}).for_net(MLPSpec(n_in=1, widths=(1,)))
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


def hand_rule(spec: str) -> LoadedRule | None:
    """``NAME`` or ``NAME:key=value,...`` of a hand-designed rule, options typed and checked.

    Returns None when ``spec`` does not start with a hand-designed rule's name. Option
    values are typed by the fields of the rule's config dataclass (``oja:lr=0.01``;
    ``oja:lr=abc`` is a one-line error naming ``lr``, its value and its type).
    """
    name, sep, text = spec.partition(":")
    if name not in rule_names() or name == "learned":
        return None
    options = parse_pairs(text, what=f"rule {spec!r}") if sep else {}
    built = LoadedRule(name, options, {}, {}).for_net(MLPSpec(n_in=1, widths=(1,)))
    typed = {k: getattr(built.config, k) for k in options} if options else {}
    return LoadedRule(name, typed, {}, {})


def shipped_rule_path() -> Path:
    return Path(str(resources.files("metaunsup") / "assets" / SHIPPED_RULE))


def random_init_rule(seed: int = 0, config: str = "small") -> LoadedRule:
    """The learned rule with freshly initialised (not meta-trained) meta_params."""
    from metaunsup.rules.learned import rule_config

    cfg = rule_config(config)
    probe = make_rule("learned", MLPSpec(n_in=1, widths=(1,)), config=cfg)
    meta = probe.init_meta_params(jax.random.PRNGKey(seed))
    return LoadedRule("learned", dataclasses.asdict(cfg), meta, {})


def initial_rule(loaded: LoadedRule) -> LoadedRule:
    """The untrained starting point of a meta-trained rule file: its run's step 0.

    The file's configuration at ``init_meta_params`` of the key that meta-training
    drew from the seed (or ``init_key``) in the file's provenance (warm-started runs: with the
    warm-start file's parts copied in, as the trainer did). One fixed theta, so
    "rule vs its initialisation" compares the run's end with its own start.
    (``metaunsup validate`` reads ``init:RULE`` differently: the configuration
    averaged over several initialisation keys, see :mod:`metaunsup.eval.validate`.)
    """
    from metaunsup.outer.trainer import meta_init_key

    if loaded.name != "learned":
        raise UserError(f"{INIT_PREFIX}RULE: {loaded.name!r} is hand-designed; it has no "
                        "untrained initialisation")
    prov = loaded.header.get("provenance", {})
    if not isinstance(prov.get("seed"), int):
        raise UserError(f"{INIT_PREFIX}RULE: the rule file records no meta-training seed")
    rule = loaded.for_net(MLPSpec(n_in=1, widths=(1,)))
    run = prov.get("config") or {}
    meta = rule.init_meta_params(meta_init_key(prov["seed"], int(run.get("init_key", -1))))
    warm = run.get("warm_start") or ""
    if warm:
        from metaunsup.rules.warm_start import warm_start_meta_params

        source = load_rule(warm)
        meta = warm_start_meta_params(rule.config, meta, source.for_net(rule.net).config,
                                      source.meta_params)
    note = f"untrained: step 0 of the run (seed {prov['seed']}) that made this rule"
    header = {**loaded.header, "provenance": {**prov, "meta_steps": 0, "note": note}}
    return LoadedRule(loaded.name, loaded.config, meta, header)


def load_rule(path: str | Path | None = None, *, seed: int = 0) -> LoadedRule:
    """Loads a rule (default: the rule file shipped with metaunsup).

    Args:
      path: a rule file, ``None`` for the shipped rule, ``"random-init"`` for
        the learned rule's untrained initialisation (seeded by ``seed``),
        ``"init:RULE"`` (``init:shipped``, ``init:PATH``) for the starting point
        of the run that made RULE (:func:`initial_rule`), or
        the name of a hand-designed rule ("oja", "sanger", "softhebb", ...;
        see :func:`metaunsup.rules.rule_names`) with optional typed options
        (``"oja:lr=0.01,center=false"``, :func:`hand_rule`), or a :class:`LoadedRule`
        (returned as is).

    Returns:
      A :class:`LoadedRule`; ``.init``/``.update`` apply it to a network,
      ``.for_net(spec)`` gives the :class:`~metaunsup.rules.base.UpdateRule`.

    Raises:
      UserError: a missing or corrupt file, or one whose tensors (names,
        shapes, dtypes) do not match the rule its header describes.
    """
    from metaunsup.run.rulefile import load_rule_file

    if isinstance(path, LoadedRule):
        return path
    if path is not None and not isinstance(path, (str, Path)):
        raise UserError(f"a rule is a file path, a rule name or a LoadedRule, got "
                        f"{type(path).__name__}")
    if path is not None and str(path) == RANDOM_INIT:
        return random_init_rule(seed)
    if path is not None and str(path).startswith(INIT_PREFIX) and not Path(path).is_file():
        inner = str(path)[len(INIT_PREFIX):]
        return initial_rule(load_rule(None if inner == "shipped" else inner))
    if path is not None and str(path) == "learned" and not Path(path).is_file():
        raise UserError("'learned' needs meta-parameters: pass a rule file, or "
                        f"{RANDOM_INIT!r} for its untrained initialisation")
    hand = None if path is None or Path(path).is_file() else hand_rule(str(path))
    if hand is not None:
        return hand
    p = shipped_rule_path() if path is None else Path(path)
    if not p.is_file():
        if path is None:
            raise UserError("no rule is shipped with this installation; pass --rule PATH "
                            "(a rule.safetensors from 'metaunsup meta-train')")
        raise UserError(f"{p}: no such rule file (nor a rule name: "
                        f"{', '.join(n for n in rule_names() if n != 'learned')}, {RANDOM_INIT})")
    meta_params, header = load_rule_file(p)
    name = str(header.get("rule", "learned"))
    config = dict(header.get("rule_config", {}))
    check_meta_params(p, name, config, meta_params)
    meta_params = jax.tree_util.tree_map(jax.numpy.asarray, meta_params)
    return LoadedRule(name, config, meta_params, header)


__all__ = ["INIT_PREFIX", "LoadedRule", "RANDOM_INIT", "check_meta_params", "hand_rule",
           "initial_rule", "RuleState", "load_rule", "random_init_rule", "shipped_rule_path"]
