"""Meta-gradient estimators over a :class:`~metaunsup.inner.task.TruncatedTask`.

Three ways to estimate the gradient of the meta-objective with respect to
``meta_params`` (theta), each a pure function over explicit state that sees the
task only through ``init`` / ``unroll``:

- :func:`tbptt`: truncated backpropagation through time (Metz et al. 2019,
  sec. 4.3). Exact gradient of one truncation's loss, holding the incoming
  state fixed; biased towards short horizons.
- :func:`es_full` (:mod:`metaunsup.outer.es_math`): antithetic evolution strategies over a whole episode from a
  fresh init. Unbiased for the Gaussian-smoothed loss, no backprop, but it
  cannot persist state between calls.
- :func:`pes` (:mod:`metaunsup.outer.es_math`): persistent evolution strategies (P. Vicol, L. Metz,
  J. Sohl-Dickstein, "Unbiased Gradient Estimation in Unrolled Computation
  Graphs with Persistent Evolution Strategies", ICML 2021). Unbiased over a
  whole episode while paying for one truncation per call.

Each function handles ONE task (for ES, one task and ``num_pairs`` antithetic
pairs on it); the caller ``vmap``s over a meta-batch and averages. All are
``jit``-compatible with ``task``, ``num_steps``, ``num_pairs``, ``sigma`` and
``remat`` static, e.g.
``jax.jit(pes, static_argnames=("task", "sigma", "num_steps"))``.

Perturbation convention (ES and PES): ``delta ~ N(0, sigma^2 I)`` in the space
of ``meta_params`` leaves; every estimate has the form
``delta * (L(theta + delta) - L(theta - delta)) / (2 sigma^2)``.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from metaunsup.errors import UserError
from metaunsup.inner.task import TruncatedTask
from metaunsup.outer.es_math import (
    PESState,
    check_sigma,
    es_full,
    gaussian_like,
    pes,
    pes_accumulate,
    pes_init,
)
from metaunsup.types import Array, MetaParams, Metrics, PRNGKey, PyTree

_tmap = jax.tree_util.tree_map


# ----------------------------------------------------------------------------
# Truncated backpropagation through time.
# ----------------------------------------------------------------------------

def tbptt_init(task: TruncatedTask, meta_params: MetaParams, key: PRNGKey) -> PyTree:
    """The persistent state of :func:`tbptt`: just a fresh task state."""
    return task.init(meta_params, key)


def tbptt(task: TruncatedTask, meta_params: MetaParams, state: PyTree, key: PRNGKey,
          num_steps: int, *, remat: bool | str = False
          ) -> tuple[MetaParams, PyTree, Array, Metrics]:
    """Gradient of one truncation's meta-loss, the incoming state held fixed.

    With ``s_k`` the task state entering truncation ``k`` and
    ``(s_{k+1}, L_k) = unroll(theta, s_k)``, the full-episode gradient is
    ``sum_k dL_k/dtheta`` where ``dL_k/dtheta`` includes the path through
    ``s_k`` (and so through every earlier truncation). TBPTT returns only the
    partial derivative ``dL_k/dtheta |_{s_k fixed}``: the dependence of ``s_k``
    on theta is cut. With one truncation covering a whole episode from a fresh
    state it is the exact gradient.

    Args:
      task: the task (static).
      meta_params: theta.
      state: the task state (from :func:`tbptt_init` or the previous call).
      key: randomness of this truncation.
      num_steps: truncation length (static).
      remat: rematerialise each inner step in the backward pass
        (``jax.checkpoint``): less memory, ~one more forward pass of compute;
        "nested": in two levels, memory ~ sqrt(num_steps)
        (``inner.task.nested_scan``).

    Returns:
      ``(meta_grad, new_state, meta_loss, metrics)``; ``meta_grad`` has the
      structure of ``meta_params``, ``metrics`` are the task's.
    """
    def loss_fn(mp):
        new_state, loss, metrics = task.unroll(mp, state, key, num_steps, remat=remat)
        return loss, (new_state, metrics)

    (loss, (new_state, metrics)), grad = jax.value_and_grad(loss_fn, has_aux=True)(meta_params)
    return grad, new_state, loss, metrics


# ----------------------------------------------------------------------------
# One interface (as in learned_optimization): init / estimate.
# ----------------------------------------------------------------------------

class Estimator:
    """A meta-gradient estimator behind one interface.

    ``init(task, meta_params, key) -> state`` makes the per-task state and
    ``estimate(task, meta_params, state, key) -> (meta_grad, state, loss, metrics)``
    does one outer step's work for one task (the trainer ``vmap``s both over a
    meta-batch). ``healthy(task, state)`` says whether the per-task state is
    still usable (a diverged inner network is re-initialised by the trainer).
    The task's own metrics (e.g. ``accuracy``) are passed through.
    Subclasses are frozen dataclasses, so they can be static jit arguments.
    """

    name: str = ""

    def init(self, task, meta_params: MetaParams, key: PRNGKey) -> PyTree:
        raise NotImplementedError

    def estimate(self, task, meta_params: MetaParams, state: PyTree, key: PRNGKey):
        raise NotImplementedError

    def healthy(self, task, state: PyTree) -> Array:
        return jnp.asarray(True)


@dataclasses.dataclass(frozen=True)
class TBPTT(Estimator):
    """Truncated backpropagation through time (:func:`tbptt`)."""

    num_steps: int
    remat: bool | str = False
    name: str = "tbptt"

    def init(self, task, meta_params, key):
        return tbptt_init(task, meta_params, key)

    def estimate(self, task, meta_params, state, key):
        grad, state, loss, metrics = tbptt(task, meta_params, state, key, self.num_steps,
                                           remat=self.remat)
        return grad, state, loss, {**metrics, "inner_steps": jnp.float32(self.num_steps)}

    def healthy(self, task, state):
        return task.is_finite(state) if hasattr(task, "is_finite") else jnp.asarray(True)


@dataclasses.dataclass(frozen=True)
class PES(Estimator):
    """Persistent ES, one antithetic pair per task (:func:`pes`)."""

    num_steps: int
    sigma: float
    name: str = "pes"

    def init(self, task, meta_params, key):
        return pes_init(task, meta_params, key)

    def estimate(self, task, meta_params, state, key):
        grad, state, loss, metrics = pes(task, meta_params, state, key, sigma=self.sigma,
                                         num_steps=self.num_steps)
        return grad, state, loss, {**metrics, "inner_steps": jnp.float32(2 * self.num_steps)}

    def healthy(self, task, state):
        if not hasattr(task, "is_finite"):
            return jnp.asarray(True)
        return task.is_finite(state.pos) & task.is_finite(state.neg)


SHAPINGS = ("none", "sign", "rank")


def shape_differences(diff: Array, shaping: str) -> Array:
    """Fitness shaping of antithetic loss differences ``L(+) - L(-)`` [N].

    ``none`` keeps them; ``sign`` keeps only their sign (as VeLO's first phase
    did), which makes a step insensitive to the loss scale of the task and to
    outliers; ``rank`` replaces them by centred ranks of ``|diff|`` times their
    sign, in ``[-1, 1]``.
    """
    if shaping == "none":
        return diff
    if shaping == "sign":
        return jnp.sign(diff)
    ranks = jnp.argsort(jnp.argsort(jnp.abs(diff))).astype(diff.dtype)
    n = diff.shape[0]
    return jnp.sign(diff) * (ranks + 1.0) / n


@dataclasses.dataclass(frozen=True)
class FullES(Estimator):
    """Antithetic ES over whole inner runs of sampled length, scored at their end.

    Each call draws one horizon ``T`` log-uniformly in ``horizon_range`` from
    its key, shared by all pairs of the task; every antithetic pair shares the
    task, the initial network, the minibatches and the scoring episodes
    (``task.episode_loss`` with one key). The inner run is a ``fori_loop`` with
    a traced length, so one compilation serves every horizon; when tasks are
    vmapped the batch runs as long as its longest member, so ES recipes use a
    meta-batch of one task with many pairs. The state counts the calls. The estimate is
    ``mean_i delta_i f(L(theta + delta_i) - L(theta - delta_i)) / (2 sigma^2)``
    with the fitness shaping ``f`` of :func:`shape_differences`.
    """

    sigma: float
    num_pairs: int
    horizon_range: tuple[int, int] = (100, 1000)
    shaping: str = "sign"
    name: str = "es"

    def __post_init__(self):
        check_sigma(self.sigma)
        lo, hi = self.horizon_range
        if not (isinstance(self.num_pairs, int) and self.num_pairs > 0):
            raise UserError(f"ES num_pairs must be a positive integer, got {self.num_pairs!r}")
        if not 1 <= lo <= hi:
            raise UserError(f"ES horizon_range must satisfy 1 <= lo <= hi, got {self.horizon_range}")
        if self.shaping not in SHAPINGS:
            raise UserError(f"ES shaping must be one of {SHAPINGS}, got {self.shaping!r}")

    def horizon(self, key: PRNGKey) -> Array:
        """An inner length drawn log-uniformly in ``horizon_range`` (integers)."""
        lo, hi = self.horizon_range
        u = jax.random.uniform(key)
        t = jnp.exp(jnp.log(lo) + u * (jnp.log(hi + 1.0) - jnp.log(lo)))
        return jnp.clip(jnp.floor(t), lo, hi).astype(jnp.int32)

    def init(self, task, meta_params, key):
        return jnp.zeros((), jnp.int32)

    def estimate(self, task, meta_params, state, key):
        k_task, k_pert, k_len = jax.random.split(key, 3)
        horizon = self.horizon(k_len)
        deltas = jax.vmap(lambda k: gaussian_like(k, meta_params, self.sigma))(
            jax.random.split(k_pert, self.num_pairs))
        members = _tmap(lambda t, d: jnp.concatenate([t[None] + d, t[None] - d]),
                        meta_params, deltas)  # [2N, ...]: N positive, then N negative
        losses, metrics = jax.vmap(lambda p: task.episode_loss(p, k_task, horizon))(members)
        pos, neg = losses[:self.num_pairs], losses[self.num_pairs:]
        weights = shape_differences(pos - neg, self.shaping) / (2.0 * self.sigma**2)
        grad = _tmap(lambda d: jnp.tensordot(weights, d, axes=1) / self.num_pairs, deltas)
        out = {k: jnp.mean(v) for k, v in metrics.items()}
        out.update(loss_pos=jnp.mean(pos), loss_neg=jnp.mean(neg),
                   horizon=horizon.astype(jnp.float32),
                   inner_steps=(2 * self.num_pairs * horizon).astype(jnp.float32))
        return grad, state + 1, jnp.mean(losses), out


def make_estimator(name: str, *, truncation: int, sigma: float, es_pairs: int,
                   remat: bool | str = False, horizon_range: tuple[int, int] = (100, 1000),
                   shaping: str = "sign") -> Estimator:
    """The estimator called ``name`` ("tbptt", "pes" or "es") with its settings."""
    if name == "tbptt":
        return TBPTT(truncation, remat)
    if name == "pes":
        return PES(truncation, sigma)
    if name == "es":
        return FullES(sigma, es_pairs, tuple(horizon_range), shaping)
    raise UserError(f"unknown estimator {name!r}; choose tbptt, pes or es")


__all__ = ["Estimator", "FullES", "PES", "PESState", "SHAPINGS", "TBPTT", "es_full",
           "gaussian_like", "make_estimator", "pes", "pes_accumulate", "pes_init",
           "shape_differences", "tbptt", "tbptt_init"]
