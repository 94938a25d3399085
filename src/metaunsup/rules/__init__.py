"""Update rules: the learned neuron-local rule and hand-designed references."""
from metaunsup.rules.base import UpdateRule, make_rule, register_rule, rule_names

__all__ = ["UpdateRule", "make_rule", "register_rule", "rule_names"]
