"""``supervised``: the base network trained by backprop on the probe's own labelled examples.

The paper's third comparison (Metz et al. 2019, sec. 5): the same base network,
with a linear softmax head on its top layer, trained with Adam on the
cross-entropy of exactly the ``shots`` labelled examples per class that the
probe will see (drawn by :func:`metaunsup.data.episodes.few_shot_indices` with the
same seed), full batch, for ``steps`` steps. The head is then discarded and the
top layer is probed like every other method's. This is the one method that
reads labels (only those of the support set).

Options: ``shots`` (set by :func:`metaunsup.eval.evaluate` to the probe's),
``steps`` (default 1000), ``lr`` (default 1e-3), ``progress``.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metaunsup.baselines.registry import register_trainable
from metaunsup.baselines.rule import BACKPROP_LR, BACKPROP_OPTIONS, steps_and_batch
from metaunsup.data.episodes import few_shot_indices
from metaunsup.errors import UserError
from metaunsup.inner.train import segments
from metaunsup.inner.unroll import initial_params
from metaunsup.models import MLPSpec, features
from metaunsup.optim import adam
from metaunsup.progress import progress_bar
from metaunsup.streams import method_keys
from metaunsup.types import LayerParams, Params


class SupervisedResult(NamedTuple):
    """``params`` (the trained base network), ``curve_steps``, ``curve``, final ``loss``."""

    params: Params
    curve_steps: list[int]
    curve: list[Any]
    loss: float


def cross_entropy(trainable, v, x, y, spec: MLPSpec):
    """Mean softmax cross-entropy of a linear head on the base network's top layer."""
    layers, (head_w, head_b) = trainable
    params = tuple(LayerParams(w=w, b=b, v=v_l) for (w, b), v_l in zip(layers, v))
    logits = features(params, x, spec) @ head_w + head_b
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


@functools.partial(jax.jit, static_argnames=("spec", "length", "lr"))
def _fit(trainable, opt_state, v, x, y, *, spec: MLPSpec, length: int, lr: float):
    opt = adam(lr)

    def step(carry, _):
        tr, st = carry
        loss, grads = jax.value_and_grad(cross_entropy)(tr, v, x, y, spec)
        updates, st = opt.update(grads, st, tr)
        return (optax.apply_updates(tr, updates), st), loss

    (trainable, opt_state), losses = jax.lax.scan(step, (trainable, opt_state), None,
                                                  length=length)
    return trainable, opt_state, losses[-1]


def train_supervised(dataset, *, spec: MLPSpec, seed: int, options: dict, curve_every=None,
                     probe_fn=None, chunk: int = 250) -> SupervisedResult:
    """Trains the seeded base network on the support set (module doc)."""
    if "shots" not in options:
        raise UserError("the supervised method needs options['shots'] (the probe's shots)")
    idx = few_shot_indices(dataset.y_train, int(options["shots"]), seed)
    steps, _ = steps_and_batch(options, len(idx))
    classes, y = np.unique(np.asarray(dataset.y_train)[idx], return_inverse=True)
    x = jnp.asarray(np.asarray(dataset.x_train, np.float32)[idx])
    y = jnp.asarray(y, jnp.int32)
    # The network every method of this seed starts from (streams.method_keys: the
    # first key builds the network, the second, here, the head).
    k_init, k_head = method_keys(seed)
    params = initial_params(k_init, spec)
    top = spec.widths[-1]
    head = (jax.random.normal(k_head, (top, len(classes)), jnp.float32) / np.sqrt(top),
            jnp.zeros((len(classes),), jnp.float32))
    trainable = (tuple((p.w, p.b) for p in params), head)
    v = tuple(p.v for p in params)
    lr = float(options.get("lr", BACKPROP_LR))
    opt_state = adam(lr).init(trainable)

    def current():
        return tuple(p._replace(w=w, b=b) for p, (w, b) in zip(params, trainable[0]))

    curve_steps, curve = ([0], [probe_fn(params)]) if curve_every else ([], [])
    bar = progress_bar(bool(options.get("progress")), total=steps, unit="step",
                       desc="inner (supervised)")
    loss, done = float("nan"), 0
    try:
        for length, probe in segments(steps, curve_every, chunk):
            trainable, opt_state, loss = _fit(trainable, opt_state, v, x, y, spec=spec,
                                              length=length, lr=lr)
            done += length
            bar.update(length)
            if probe:
                curve_steps.append(done)
                curve.append(probe_fn(current()))
    finally:
        bar.close()
    return SupervisedResult(current(), curve_steps, curve, float(loss))


register_trainable("supervised", train_supervised, options=BACKPROP_OPTIONS,
                   description="the base network trained by Adam on the probe's labelled examples")
