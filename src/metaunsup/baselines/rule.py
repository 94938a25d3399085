"""Methods that train the base network with an update rule on the unlabeled data.

- ``rule``: a rule (``options["rule"]``: any spec of :mod:`metaunsup.rules.loading`,
  or absent for the rule shipped with metaunsup).
- ``autoencoder``: backprop with Adam on the squared reconstruction error of a
  linear decoder from the top layer (the ``ae_sgd`` rule of :mod:`metaunsup.rules.hand`).
- ``vae``: backprop with Adam on a VAE's negative ELBO (:mod:`metaunsup.rules.vae`).

All three start from the same seeded base network, take ``steps`` steps
(default 1000) on minibatches of ``batch_size`` (default 128) unlabeled training
examples in the same seeded order (a training split smaller than one batch gives
batches of the whole split; fewer than 2 examples per batch is an error, since batch
norm normalises each batch by its own statistics), and are probed on the top layer. Options:
``steps``, ``batch_size``, ``progress``; ``lr`` (default 1e-3) for the two
backprop baselines.
"""
from __future__ import annotations

import numpy as np

from metaunsup.baselines.registry import register_trainable
from metaunsup.errors import UserError
from metaunsup.inner.train import train
from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule
from metaunsup.rules.loading import load_rule
from metaunsup.streams import method_key

DEFAULT_STEPS = 1000
DEFAULT_BATCH = 128
BACKPROP_LR = 1e-3


def steps_and_batch(options: dict, n_examples: int) -> tuple[int, int]:
    """``(steps, batch_size)`` from method options, checked; batch capped at ``n_examples``."""
    steps = int(options.get("steps", DEFAULT_STEPS))
    batch = int(options.get("batch_size", DEFAULT_BATCH))
    if steps < 0 or batch <= 0:
        raise UserError(f"steps must be >= 0 and batch_size > 0, got {steps}, {batch}")
    if steps and min(batch, n_examples) < 2:  # batch norm needs a variance
        raise UserError(f"a method that trains needs batches of at least 2 examples "
                        f"(batch_size {batch}, {n_examples} training example(s))")
    return steps, min(batch, n_examples)


def train_update_rule(rule, meta_params, dataset, *, seed: int, options: dict,
                      curve_every=None, probe_fn=None):
    """Trains the seed's network with ``rule`` (an :class:`~metaunsup.inner.train.TrainResult`).

    The network and the minibatch order come from the seed's method keys
    (:func:`metaunsup.streams.method_keys`), as for every method of that seed.
    """
    x = np.asarray(dataset.x_train)
    steps, batch = steps_and_batch(options, len(x))
    return train(rule, meta_params, x, steps=steps, batch_size=batch,
                 key=method_key(seed), curve_every=curve_every, probe_fn=probe_fn,
                 progress=bool(options.get("progress", False)))


def train_with_rule(dataset, *, spec: MLPSpec, seed: int, options: dict, curve_every=None,
                    probe_fn=None):
    """The ``rule`` method's training: the rule spec named by ``options["rule"]``."""
    loaded = load_rule(options.get("rule"), seed=seed)
    return train_update_rule(loaded.for_net(spec), loaded.meta_params, dataset, seed=seed,
                             options=options, curve_every=curve_every, probe_fn=probe_fn)


def _backprop_trainer(rule_name: str):
    def train(dataset, *, spec: MLPSpec, seed: int, options: dict, curve_every=None,
              probe_fn=None):
        rule = make_rule(rule_name, spec, optimizer="adam",
                         lr=float(options.get("lr", BACKPROP_LR)))
        return train_update_rule(rule, {}, dataset, seed=seed, options=options,
                                 curve_every=curve_every, probe_fn=probe_fn)

    train.__doc__ = f"Trains the base network by backprop with the {rule_name!r} rule (Adam)."
    return train


BACKPROP_OPTIONS = {"lr": float}
"""Options of the methods trained by backprop (beside the training options)."""

register_trainable("rule", train_with_rule, options={"rule": str},
                   description="a base network trained by an update rule (default: the shipped rule)")
register_trainable("autoencoder", _backprop_trainer("ae_sgd"), options=BACKPROP_OPTIONS,
                   description="the base network as encoder of an autoencoder, trained by Adam")
register_trainable("vae", _backprop_trainer("vae"), options=BACKPROP_OPTIONS,
                   description="the base network as encoder of a VAE, trained by Adam")
