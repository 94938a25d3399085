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


def make_estimator(name: str, *, truncation: int, sigma: float, remat: bool | str = False,
                   **_unused) -> Estimator:
    """The meta-gradient estimator called ``name`` ("tbptt" or "pes") with its settings.

    Full-horizon antithetic ES is no longer an estimator here: evosax's OpenAI-ES
    (antithetic sampling, centred ranks, an optax optimizer) does it as an ask/tell
    strategy (``estimator = "open_es"``, :mod:`metaunsup.outer.evolve`).
    """
    if name == "tbptt":
        return TBPTT(truncation, remat)
    if name == "pes":
        return PES(truncation, sigma)
    raise UserError(f"unknown estimator {name!r}; choose tbptt or pes (or an evolution "
                    "strategy: cma_es, sep_cma_es, snes, open_es)")


__all__ = ["Estimator", "PES", "PESState", "TBPTT", "es_full", "gaussian_like",
           "make_estimator", "pes", "pes_accumulate", "pes_init", "tbptt", "tbptt_init"]
