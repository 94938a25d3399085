"""Loading a rule file into a usable rule, for any base network.

A rule file (:mod:`metaunsup.run.rulefile`: safetensors arrays + a JSON header,
never pickle) stores ``meta_params`` and the rule's name and configuration;
:class:`LoadedRule` pairs them so that ``loaded.for_net(spec)`` gives an
:class:`~metaunsup.rules.base.UpdateRule` for any widths, depth or activation.
"""
from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import jax

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec
from metaunsup.rules.base import UpdateRule, make_rule
from metaunsup.types import MetaParams

SHIPPED_RULE = "rule_small.safetensors"
RANDOM_INIT = "random-init"


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


def shipped_rule_path() -> Path:
    return Path(str(resources.files("metaunsup") / "assets" / SHIPPED_RULE))


def random_init_rule(seed: int = 0, config: str = "small") -> LoadedRule:
    """The learned rule with freshly initialised (not meta-trained) meta_params."""
    from metaunsup.rules.learned import rule_config

    cfg = rule_config(config)
    probe = make_rule("learned", MLPSpec(n_in=1, widths=(1,)), config=cfg)
    meta = probe.init_meta_params(jax.random.PRNGKey(seed))
    return LoadedRule("learned", dataclasses.asdict(cfg), meta, {})


def load_rule(path: str | Path | None = None, *, seed: int = 0) -> LoadedRule:
    """Loads a rule file (default: the rule shipped with metaunsup).

    Args:
      path: a rule file, ``None`` for the shipped rule, or ``"random-init"`` for
        the learned rule's untrained initialisation (seeded by ``seed``).

    Returns:
      A :class:`LoadedRule`; call ``.for_net(spec)`` to apply it.
    """
    from metaunsup.run.rulefile import load_rule_file

    if path is not None and str(path) == RANDOM_INIT:
        return random_init_rule(seed)
    p = shipped_rule_path() if path is None else Path(path)
    if not p.is_file():
        if path is None:
            raise UserError("no rule is shipped with this installation; pass --rule PATH "
                            "(a rule.safetensors from 'metaunsup meta-train')")
        raise UserError(f"{p}: no such rule file")
    meta_params, header = load_rule_file(p)
    meta_params = jax.tree_util.tree_map(jax.numpy.asarray, meta_params)
    return LoadedRule(str(header.get("rule", "learned")), dict(header.get("rule_config", {})),
                      meta_params, header)


__all__ = ["LoadedRule", "RANDOM_INIT", "load_rule", "random_init_rule", "shipped_rule_path"]
