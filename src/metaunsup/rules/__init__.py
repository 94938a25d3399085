"""Update rules: the learned neuron-local rule and hand-designed references."""
from metaunsup.rules.base import UpdateRule, make_rule, register_rule, rule_names
from metaunsup.rules import hand as _hand  # noqa: F401  (registers hand-designed rules)
from metaunsup.rules import competitive as _competitive  # noqa: F401  (competitive rules, bcm)
from metaunsup.rules import learned as _learned  # noqa: F401  (registers "learned")
from metaunsup.rules import vae as _vae  # noqa: F401  (registers "vae")

__all__ = ["UpdateRule", "make_rule", "register_rule", "rule_names"]
