"""metaunsup: meta-learned neuron-local unsupervised learning rules in JAX.

Curated API (everything else lives in the subpackages named in README.md)::

    rule = metaunsup.load_rule()                  # shipped rule, a file, "oja", "random-init"
    net = metaunsup.train(rule, x, widths=(128, 128, 128, 128, 32), steps=1000)
    feats = metaunsup.features(net, x)            # [N, top width]
    metaunsup.save_network("net.safetensors", net); net = metaunsup.load_network(...)

    # optax style: a rule is a pure init/update pair over the network pytree
    net = metaunsup.init_network(196, (128, 32), key=jax.random.PRNGKey(0))
    state = rule.init(net)
    net, state, metrics = jax.jit(rule.update)(net, state, x_batch, key)

Importing ``metaunsup`` imports no JAX; each name loads its module on first use.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_rule": "metaunsup.rules.loading",
    "LoadedRule": "metaunsup.rules.loading",
    "RuleState": "metaunsup.rules.loading",
    "train": "metaunsup.api",
    "features": "metaunsup.api",
    "TrainInfo": "metaunsup.api",
    "Network": "metaunsup.network",
    "init_network": "metaunsup.network",
    "save_network": "metaunsup.network",
    "load_network": "metaunsup.network",
    "UserError": "metaunsup.errors",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'metaunsup' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
