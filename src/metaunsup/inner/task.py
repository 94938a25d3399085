"""The truncated inner task: what a meta-gradient estimator unrolls.

Meta-training separates *what is unrolled* (a task: its state, its inner loop,
its meta-objective) from *how the meta-gradient is estimated* (truncated
backpropagation, ES, persistent ES; see :mod:`metaunsup.outer.estimators`).
The estimators only ever see the :class:`TruncatedTask` interface below, so the
same estimator code trains a learned rule on image tasks or the toy
:class:`QuadraticTask` whose exact meta-gradient the tests compare against.

The episode contract (what estimators rely on):

- ``init(meta_params, key)`` draws a fresh episode. Its step counter starts at
  zero and its total length is sampled from ``key`` alone: the *schedule* of an
  episode (its step counter, its length, hence when it resets) never depends on
  ``meta_params``, so antithetic copies of one task under ``theta + delta`` and
  ``theta - delta`` reset together.
- ``unroll(meta_params, task_state, key, num_steps, *, remat=False)`` runs one
  truncation of ``num_steps`` inner steps and returns ``(task_state, meta_loss,
  metrics)``. If the incoming state has reached its total length, the truncation
  first replaces it with a fresh ``init(meta_params, key')`` (a ``jnp.where``
  select, so ``jit`` and ``vmap`` see one program) and runs from there. Hence a
  truncation never straddles two episodes (an episode may overrun its length by
  fewer than ``num_steps`` steps), and ``metrics["reset"]`` (bool or 0/1 float)
  says whether this truncation started a new episode.
- ``meta_loss`` is a scalar: the meta-objective summed or averaged over the
  truncation's steps (the task decides; estimators do not care).
- ``remat=True`` wraps the per-step body in ``jax.checkpoint`` so that
  backpropagation through a long truncation stores one carry per step instead
  of every intermediate; ``remat="dots"`` also stores each step's matrix
  products (:func:`remat_policy`); ``remat="nested"`` (:func:`nested_scan`)
  stores about 2 sqrt(num_steps) carries. It changes memory and compute, never values.
- ``num_steps`` and ``remat`` are static (Python int / bool / str); everything else
  may be traced, and the caller may ``vmap`` over a meta-batch of tasks.
- Full-horizon estimators also use ``episode_loss(meta_params, key, num_steps)``:
  a fresh ``init(meta_params, key')`` run for ``num_steps`` inner steps (a traced
  integer: one compilation serves every horizon), scored once at the end.
  Returns ``(loss, metrics)``; it need not be differentiable.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import optax

from metaunsup.types import Array, MetaParams, Metrics, PRNGKey, PyTree


@runtime_checkable
class TruncatedTask(Protocol):
    """A persistent inner problem unrolled a truncation at a time (see module doc)."""

    def init(self, meta_params: MetaParams, key: PRNGKey) -> PyTree: ...

    def unroll(self, meta_params: MetaParams, task_state: PyTree, key: PRNGKey,
               num_steps: int, *, remat: bool | str = False) -> tuple[PyTree, Array, Metrics]: ...


@runtime_checkable
class EpisodeTask(TruncatedTask, Protocol):
    """A task that can also run a whole episode and score only its end."""

    def episode_loss(self, meta_params: MetaParams, key: PRNGKey,
                     num_steps: Array) -> tuple[Array, Metrics]: ...


def tree_all_finite(tree: PyTree) -> Array:
    """Boolean scalar: every element of every leaf of ``tree`` is finite."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


REMAT = (False, True, "dots", "nested")


def remat_policy(remat: bool | str):
    """``jax.checkpoint``'s policy for a per-step ``remat`` mode: None (save nothing,
    recompute the whole step) for True, save the matrix products for "dots"."""
    if remat not in REMAT:
        raise ValueError(f"remat must be one of {REMAT}, got {remat!r}")
    return jax.checkpoint_policies.dots_saveable if remat == "dots" else None


def segment_length(n: int) -> int:
    """The largest divisor of ``n`` not above sqrt(n) (1 for a prime ``n``)."""
    return max(k for k in range(1, math.isqrt(n) + 1) if n % k == 0)


def nested_scan(body, carry: PyTree, xs: PyTree) -> tuple[PyTree, PyTree]:
    """``jax.lax.scan(body, carry, xs)`` with two-level checkpointing.

    The steps run as n / K checkpointed segments of K checkpointed steps (K =
    :func:`segment_length`). The backward pass stores the n / K segment-entry
    carries and, while it recomputes one segment, that segment's K step carries:
    O(n / K + K) carries, O(sqrt n), instead of O(n) with per-step
    ``jax.checkpoint``; it pays one more forward pass per segment. Values are
    those of the plain scan.
    """
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    k = segment_length(n)
    seg = jax.tree_util.tree_map(lambda x: x.reshape((n // k, k) + x.shape[1:]), xs)
    step = jax.checkpoint(body)

    @jax.checkpoint
    def segment(c, x):
        return jax.lax.scan(step, c, x)

    carry, ys = jax.lax.scan(segment, carry, seg)
    return carry, jax.tree_util.tree_map(lambda y: y.reshape((n,) + y.shape[2:]), ys)


def remat_scan(body, carry: PyTree, xs: PyTree, remat: bool | str = False, *,
               unroll: int = 1) -> tuple[PyTree, PyTree]:
    """``jax.lax.scan(body, carry, xs, unroll=unroll)`` under one of the ``remat`` modes
    (:data:`REMAT`): per-step ``jax.checkpoint`` (with :func:`remat_policy`), or
    :func:`nested_scan` for "nested" (which ignores ``unroll``). Values never change."""
    if remat == "nested":
        return nested_scan(body, carry, xs)
    if remat:
        body = jax.checkpoint(body, policy=remat_policy(remat))
    return jax.lax.scan(body, carry, xs, unroll=unroll)


class QuadraticState(NamedTuple):
    """State of one :class:`QuadraticTask` episode.

    Attributes:
      x: [dim] float32 inner parameters.
      step: int32 scalar, inner steps taken in this episode.
      length: int32 scalar, the episode's sampled total length.
    """

    x: Array
    step: Array
    length: Array


_DEFAULT_A = ((2.0, 0.5, 0.0), (0.5, 1.0, 0.2), (0.0, 0.2, 0.5))


@dataclasses.dataclass(frozen=True)
class QuadraticTask:
    """A linear inner loop with a closed-form meta-gradient, for testing estimators.

    Inner loop (gradient descent on ``0.5 (x - theta)^T A (x - theta)``)::

        x_{t+1} = x_t - alpha A (x_t - theta),   alpha = exp(log_alpha)

    so with ``B = I - alpha A`` the error ``e_t = x_t - theta`` obeys
    ``e_{t+1} = B e_t`` and ``x_t = theta + B^t (x_0 - theta)``. The per-step
    meta-loss is ``|x_{t+1} - target|^2`` and a truncation's meta-loss is the
    *sum* over its steps, so the losses of consecutive truncations add up to
    the loss of the whole episode. ``x_0 ~ N(0, init_scale^2 I)`` and the
    length (uniform in ``[min_length, max_length]``) are drawn from the key
    only. Meta-parameters: ``{"theta": [dim], "log_alpha": []}``.

    Attributes:
      a: the symmetric positive definite matrix A, as nested tuples (hashable,
        so the task can be a static argument of ``jax.jit``).
      target: [dim] where the meta-objective wants ``x_t`` to be.
      init_scale: standard deviation of ``x_0``.
      min_length: shortest episode (inner steps).
      max_length: longest episode (inner steps).
    """

    a: tuple[tuple[float, ...], ...] = _DEFAULT_A
    target: tuple[float, ...] = (1.0, -0.5, 0.25)
    init_scale: float = 1.0
    min_length: int = 8
    max_length: int = 8

    @property
    def dim(self) -> int:
        return len(self.target)

    def matrix(self) -> Array:
        """A as a [dim, dim] float32 array."""
        return jnp.asarray(self.a, jnp.float32)

    def init_meta_params(self, key: PRNGKey | None = None) -> MetaParams:
        """theta = 0 and alpha = 0.1 (deterministic; ``key`` is unused)."""
        del key
        return {"theta": jnp.zeros((self.dim,), jnp.float32),
                "log_alpha": jnp.asarray(math.log(0.1), jnp.float32)}

    def init(self, meta_params: MetaParams, key: PRNGKey) -> QuadraticState:
        del meta_params  # x_0 does not depend on theta.
        k_x, k_len = jax.random.split(key)
        x0 = self.init_scale * jax.random.normal(k_x, (self.dim,), jnp.float32)
        length = jax.random.randint(k_len, (), self.min_length, self.max_length + 1)
        return QuadraticState(x0, jnp.zeros((), jnp.int32), length.astype(jnp.int32))

    def step(self, meta_params: MetaParams, x: Array) -> tuple[Array, Array]:
        """One inner step: ``(x_{t+1}, |x_{t+1} - target|^2)``."""
        alpha = jnp.exp(meta_params["log_alpha"])
        x = x - alpha * (self.matrix() @ (x - meta_params["theta"]))
        return x, jnp.sum(jnp.square(x - jnp.asarray(self.target, jnp.float32)))

    def unroll(self, meta_params: MetaParams, task_state: QuadraticState, key: PRNGKey,
               num_steps: int, *, remat: bool | str = False) -> tuple[QuadraticState, Array, Metrics]:
        done = task_state.step >= task_state.length
        state = optax.tree.where(done, self.init(meta_params, key), task_state)

        def body(x, _):
            return self.step(meta_params, x)

        x, losses = remat_scan(body, state.x, jnp.zeros((num_steps,)), remat)
        state = QuadraticState(x, state.step + num_steps, state.length)
        return state, jnp.sum(losses), {"reset": done, "last_loss": losses[-1]}

    def episode_loss(self, meta_params: MetaParams, key: PRNGKey,
                     num_steps: Array) -> tuple[Array, Metrics]:
        """``|x_T - target|^2`` after ``num_steps`` (may be traced) steps of a fresh episode."""
        state = self.init(meta_params, key)
        x = jax.lax.fori_loop(0, num_steps, lambda _, x: self.step(meta_params, x)[0], state.x)
        loss = jnp.sum(jnp.square(x - jnp.asarray(self.target, jnp.float32)))
        return loss, {"last_loss": loss}
