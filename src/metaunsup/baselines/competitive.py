"""Hand-designed local rules as evaluation methods, and random features of a wide layer.

- ``krotov_hopfield``, ``softhebb``, ``wta``, ``bcm``, ``oja``: the base network
  trained by that rule of :mod:`metaunsup.rules.competitive` /
  :mod:`metaunsup.rules.hand` with its defaults (tuned on the validation split,
  see experiments/README.md), from the same seeded network, minibatches and
  step count as the ``rule`` method. Any method option named like a field of
  the rule's config (``--option lr=0.01``, ``--option conscience=1``)
  overrides it; other options are left to the methods they belong to.
- ``random_wide``: the features of a randomly initialised network of ONE hidden
  layer of ``width`` units (default 2000) instead of ``--widths``: a different
  network, the reference a user would try first (random features, as in
  Krotov & Hopfield's comparisons).
"""
from __future__ import annotations

import dataclasses

import jax

from metaunsup.baselines.registry import register_method, register_trainable
from metaunsup.baselines.rule import train_update_rule
from metaunsup.baselines.simple import network_at_init
from metaunsup.errors import UserError
from metaunsup.models import MLPSpec, init_params
from metaunsup.rules import competitive, hand, make_rule

HAND_RULE_METHODS = ("krotov_hopfield", "softhebb", "wta", "bcm", "oja")
WIDE_WIDTH = 2000


def rule_overrides(rule_name: str, options: dict) -> dict:
    """The method options that name fields of ``rule_name``'s config."""
    if rule_name in competitive.RULES:
        config_cls = competitive.RULES[rule_name][1]
    else:
        config_cls = hand.HebbianConfig
    fields = {f.name for f in dataclasses.fields(config_cls)}
    return {k: v for k, v in options.items() if k in fields}


def _hand_trainer(rule_name: str):
    def train(dataset, *, spec: MLPSpec, seed: int, options: dict, curve_every=None,
              probe_fn=None):
        rule = make_rule(rule_name, spec, **rule_overrides(rule_name, options))
        return train_update_rule(rule, {}, dataset, seed=seed, options=options,
                                 curve_every=curve_every, probe_fn=probe_fn)

    train.__doc__ = f"Trains the base network with the hand-designed {rule_name!r} rule."
    return train


def random_wide_features(dataset, *, spec: MLPSpec, seed: int, options: dict):
    """Top-layer features of a random network of one hidden layer of ``options["width"]``
    units (default 2000), with ``spec``'s input size and activation."""
    width = int(options.get("width", WIDE_WIDTH))
    if width <= 0:
        raise UserError(f"random_wide: width must be positive, got {width}")
    wide = dataclasses.replace(spec, widths=(width,))
    params = init_params(jax.random.PRNGKey(int(seed)), wide)  # its own draw, as recorded
    return network_at_init(params, dataset, spec=wide, seed=seed, options=options)


_DESCRIPTIONS = {
    "krotov_hopfield": "Krotov-Hopfield competing hidden units (PNAS 2019), layer-wise",
    "softhebb": "SoftHebb soft winner-take-all (Journe et al. ICLR 2023), layer-wise",
    "wta": "hard winner-take-all competitive learning (online k-means), layer-wise",
    "bcm": "BCM with a sliding threshold (Bienenstock, Cooper & Munro 1982), layer-wise",
    "oja": "Oja's subspace rule, layer-wise",
}
for _name in HAND_RULE_METHODS:
    register_trainable(_name, _hand_trainer(_name), description=_DESCRIPTIONS[_name])
register_method("random_wide", random_wide_features, stochastic=True, options={"width": int},
                description=f"random network of ONE hidden layer of {WIDE_WIDTH} units "
                            "(a different network)")
