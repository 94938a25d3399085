"""Training a base network with an update rule on a dataset held in memory.

This is the inner loop as a user runs it (evaluation, the demo): minibatches are
drawn on the host from a numpy array, sent to the device a chunk at a time, and
consumed by the jitted ``lax.scan`` of :func:`metaunsup.inner.unroll_jit`, so
device memory is bounded by one chunk ``[chunk, batch_size, n_in]`` whatever
the number of steps.

Minibatches: each epoch visits every example once in an order drawn from a
numpy generator seeded from ``key``; batches are consecutive slices of that
order (a batch never straddles two epochs). So a run is reproducible from its
key, and two runs with the same key see the same batches whatever ``chunk``
or ``curve_every`` are.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple

import jax
import numpy as np

from metaunsup.errors import UserError, check_array, check_positive_int
from metaunsup.inner.unroll import InnerState, init_inner_state, unroll_jit
from metaunsup.progress import progress_bar
from metaunsup.rules.base import UpdateRule
from metaunsup.types import MetaParams, Params, PRNGKey


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes:
      params: the base network's parameters after ``steps`` updates.
      inner_state: the full final carry (params, rule state, step, key), to
        continue training with :func:`metaunsup.inner.unroll_jit`.
      curve_steps: inner steps at which ``probe_fn`` was evaluated: 0, every
        ``curve_every`` steps, and ``steps`` (empty if no curve was asked for).
      curve: ``probe_fn(params)`` at each of ``curve_steps``, host values.
      metrics: the rule's metrics averaged over the last chunk (floats).
    """

    params: Params
    inner_state: InnerState
    curve_steps: list[int]
    curve: list[Any]
    metrics: dict[str, float]


def batch_indices(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless stream of [batch_size] index arrays: shuffled epochs, no straddling."""
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    while True:
        order = rng.permutation(n)
        for i in range(per_epoch):
            yield order[i * batch_size:(i + 1) * batch_size]


def segments(steps: int, curve_every: int | None, chunk: int) -> Iterator[tuple[int, bool]]:
    """Yields (scan length, probe after it) covering ``steps`` steps.

    Scans are at most ``chunk`` long and end at every multiple of
    ``curve_every``; at most three distinct lengths occur, so few compilations.
    """
    period = curve_every or steps
    done = 0
    while done < steps:
        seg_end = min(done + period, steps)
        while done < seg_end:
            length = min(chunk, seg_end - done)
            done += length
            yield length, curve_every is not None and done == seg_end


def train(rule: UpdateRule, meta_params: MetaParams, data_x, *, steps: int, batch_size: int,
          key: PRNGKey, curve_every: int | None = None,
          probe_fn: Callable[[Params], Any] | None = None, chunk: int = 50,
          progress: bool = False, inner_state: InnerState | None = None,
          params: Params | None = None) -> TrainResult:
    """Trains a base network (``rule.net``, fresh by default) with ``rule`` for ``steps`` steps.

    Args:
      rule: the update rule (its ``net`` must take ``data_x.shape[1]`` inputs).
      meta_params: the rule's parameters (``{}`` for hand-designed rules).
      data_x: [N, n_in] unlabeled training examples (numpy or array-like).
      steps: number of inner steps.
      batch_size: examples per step (<= N).
      key: PRNG key; it seeds the initial parameters, the rule's randomness and
        the order of minibatches.
      curve_every: if given, call ``probe_fn(params)`` at step 0, every
        ``curve_every`` steps and at the end.
      probe_fn: function of the base network's parameters (e.g. few-shot
        accuracy of their features); required with ``curve_every``.
      chunk: steps per ``lax.scan`` call; bounds device memory.
      progress: show a progress bar (rate and ETA; on a terminal only,
        :mod:`metaunsup.progress`).
      inner_state: continue from this state instead of a fresh network.
      params: start from this base network (its rule state is initialised as
        for a fresh one: same keys) instead of freshly drawn parameters.

    Returns:
      A :class:`TrainResult`.
    """
    data = check_array(data_x, name="data_x", ndim=2)
    steps = check_positive_int(steps, name="steps")
    batch_size = check_positive_int(batch_size, name="batch_size")
    chunk = check_positive_int(chunk, name="chunk")
    if data.shape[1] != rule.net.n_in:
        raise UserError(f"data_x has {data.shape[1]} features but the network takes "
                        f"{rule.net.n_in} inputs")
    if batch_size > data.shape[0]:
        raise UserError(f"batch_size {batch_size} exceeds the {data.shape[0]} examples given")
    if curve_every is not None:
        curve_every = check_positive_int(curve_every, name="curve_every")
        if probe_fn is None:
            raise UserError("curve_every needs a probe_fn to evaluate")
    data = data.astype(np.float32, copy=False)

    k_init, k_data = jax.random.split(key)  # streams.method_keys for key = method_key(seed)
    if inner_state is None:
        inner_state = init_inner_state(rule, meta_params, key=k_init)
        if params is not None:  # the keys init_inner_state uses for the rule state
            _, k_state, _ = jax.random.split(k_init, 3)
            inner_state = inner_state._replace(
                params=params, rule_state=rule.init_state(meta_params, params, key=k_state))
    seed = int(jax.random.randint(k_data, (), 0, np.iinfo(np.int32).max))
    batches = batch_indices(data.shape[0], batch_size, seed)

    curve_steps: list[int] = []
    curve: list[Any] = []
    if curve_every is not None:
        curve_steps.append(0)
        curve.append(probe_fn(inner_state.params))

    bar = progress_bar(progress, total=steps, unit="step", desc=f"inner ({rule.name})")
    metrics: dict[str, float] = {}
    done = 0
    try:
        for length, probe in segments(steps, curve_every, chunk):
            idx = np.stack([next(batches) for _ in range(length)])  # [length, B]
            inner_state, stacked = unroll_jit(rule, meta_params, inner_state, data[idx])
            done += length
            if not bar.disable:
                jax.block_until_ready(inner_state.params)
            bar.update(length)
            if probe:
                curve_steps.append(done)
                curve.append(probe_fn(inner_state.params))
        metrics = {k: float(np.mean(v)) for k, v in jax.device_get(stacked).items()}
    finally:
        bar.close()
    return TrainResult(inner_state.params, inner_state, curve_steps, curve, metrics)
