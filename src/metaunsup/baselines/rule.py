"""The learned (or any registered) update rule as an evaluation method.

``rule``: a fresh base network (seeded) is trained by the rule for ``steps``
inner steps on minibatches of the dataset's unlabeled training split; its
top-layer features are then probed like every other method. Options:
``rule`` (a rule file path, ``random-init``, or absent for the shipped rule),
``steps`` (default 1000), ``batch_size`` (default 128), ``progress``.
"""
from __future__ import annotations

import jax
import numpy as np

from metaunsup.errors import UserError
from metaunsup.eval.features import network_features
from metaunsup.eval.methods import register_method
from metaunsup.models import MLPSpec

DEFAULT_STEPS = 1000
DEFAULT_BATCH = 128


def train_with_rule(dataset, *, spec: MLPSpec, seed: int, options: dict, curve_every=None,
                    probe_fn=None):
    """Trains a seeded network with the rule named in ``options``; returns TrainResult."""
    from metaunsup.inner.train import train
    from metaunsup.rules.loading import load_rule

    loaded = load_rule(options.get("rule"), seed=seed)
    rule = loaded.for_net(spec)
    steps = int(options.get("steps", DEFAULT_STEPS))
    batch = int(options.get("batch_size", DEFAULT_BATCH))
    if steps < 0 or batch <= 0:
        raise UserError(f"steps must be >= 0 and batch_size > 0, got {steps}, {batch}")
    return train(rule, loaded.meta_params, np.asarray(dataset.x_train), steps=steps,
                 batch_size=min(batch, len(dataset.x_train)), key=jax.random.PRNGKey(seed),
                 curve_every=curve_every, probe_fn=probe_fn,
                 progress=bool(options.get("progress", False)))


def rule_features(dataset, *, spec: MLPSpec, seed: int, options: dict):
    """Features of a network trained by the rule (see module doc)."""
    result = train_with_rule(dataset, spec=spec, seed=seed, options=options)
    return network_features(result.params, spec, dataset.x_train, dataset.x_test, seed=seed)


register_method("rule", rule_features, stochastic=True,
                description="a base network trained by an update rule (default: the shipped rule)")
