"""Antithetic evolution strategies and persistent ES as pure functions (one task each).

- :func:`es_full`: antithetic evolution strategies over a whole episode from a
  fresh init. Unbiased for the Gaussian-smoothed loss, no backprop, but it
  cannot persist state between calls.
- :func:`pes`: persistent evolution strategies (P. Vicol, L. Metz,
  J. Sohl-Dickstein, "Unbiased Gradient Estimation in Unrolled Computation
  Graphs with Persistent Evolution Strategies", ICML 2021). Unbiased over a
  whole episode while paying for one truncation per call.

Perturbation convention: ``delta ~ N(0, sigma^2 I)`` in the space of
``meta_params`` leaves; every estimate has the form
``delta * (L(theta + delta) - L(theta - delta)) / (2 sigma^2)``. The interface
that chooses between these and TBPTT is :mod:`metaunsup.outer.estimators`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from metaunsup.errors import UserError
from metaunsup.inner.task import TruncatedTask
from metaunsup.types import Array, MetaParams, Metrics, PRNGKey, PyTree

_tmap = jax.tree_util.tree_map


def check_sigma(sigma: float) -> None:
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
        raise UserError(f"sigma must be a positive number, got {sigma!r}")


def gaussian_like(key: PRNGKey, tree: PyTree, sigma: float) -> PyTree:
    """``sigma * N(0, I)`` noise with the structure, shapes and dtypes of ``tree``."""
    noise = optax.tree_utils.tree_random_like(key, tree, jax.random.normal)
    return _tmap(lambda n: (sigma * n).astype(n.dtype), noise)


def _scale(tree: PyTree, c: Array) -> PyTree:
    return _tmap(lambda x: (c * x).astype(jnp.result_type(x)), tree)


def _pair_params(meta_params: MetaParams, delta: PyTree) -> PyTree:
    """``theta + delta`` and ``theta - delta`` stacked on a leading axis of 2."""
    return _tmap(lambda t, d: jnp.stack([t + d, t - d]), meta_params, delta)


# ----------------------------------------------------------------------------
# Antithetic ES over a whole episode.
# ----------------------------------------------------------------------------

def es_full(task: TruncatedTask, meta_params: MetaParams, key: PRNGKey, *, sigma: float,
            num_pairs: int, num_steps: int, task_state: PyTree | None = None
            ) -> tuple[MetaParams, Array, Metrics]:
    """Antithetic ES gradient of one episode's meta-loss.

    Gaussian smoothing ``L_sigma(theta) = E_delta[L(theta + delta)]`` with
    ``delta ~ N(0, sigma^2 I)`` has (Stein's lemma)
    ``grad L_sigma = E[delta L(theta + delta)] / sigma^2``; pairing ``delta``
    with ``-delta`` keeps the expectation (the integrand is symmetric) and
    cancels the even part of L, including the constant ``L(theta)``::

        g_hat = 1/N sum_i delta_i (L(theta + delta_i) - L(theta - delta_i)) / (2 sigma^2)

    For a quadratic L this is exactly the mean of ``u u^T g`` with
    ``u = delta / sigma ~ N(0, I)``, so (Isserlis) ``Cov[g_hat] = (|g|^2 I + g g^T) / N``
    and ``E|g_hat - g|^2 = (D + 1) |g|^2 / N`` for D meta-parameters.

    By default each member starts a fresh episode, ``task.init(theta +- delta, k)``
    (so a dependence of ``init`` on theta is part of the estimated gradient),
    with one init key and one unroll key shared by every member (common random
    numbers: every pair sees the same episode). ``num_steps`` should cover the
    episode's length; a shorter unroll gives ES of its first ``num_steps``.
    Passing ``task_state`` instead starts every member from that state, which
    makes this truncated ES of one truncation.

    Args:
      task: the task (static).
      meta_params: theta.
      key: drawn into init, perturbation and unroll keys.
      sigma: perturbation standard deviation (static, > 0).
      num_pairs: antithetic pairs N (static); all are vmapped (memory ~ 2N
        task states).
      num_steps: unroll length (static).
      task_state: optional common starting state instead of a fresh episode.

    Returns:
      ``(meta_grad, loss, metrics)``: ``loss`` is the mean of ``L(theta +- delta)``
      over all members, metrics hold ``loss_pos`` / ``loss_neg`` means.
    """
    check_sigma(sigma)
    k_init, k_pert, k_unroll = jax.random.split(key, 3)

    def one_pair(k):
        delta = gaussian_like(k, meta_params, sigma)
        pair = _pair_params(meta_params, delta)
        if task_state is None:
            states = jax.vmap(lambda p: task.init(p, k_init))(pair)
        else:
            states = _tmap(lambda x: jnp.stack([x, x]), task_state)
        _, losses, _ = jax.vmap(lambda p, s: task.unroll(p, s, k_unroll, num_steps))(pair, states)
        return _scale(delta, (losses[0] - losses[1]) / (2.0 * sigma**2)), losses

    grads, losses = jax.vmap(one_pair)(jax.random.split(k_pert, num_pairs))
    grad = _tmap(lambda g: jnp.mean(g, axis=0), grads)
    metrics = {"loss_pos": jnp.mean(losses[:, 0]), "loss_neg": jnp.mean(losses[:, 1])}
    return grad, jnp.mean(losses), metrics


# ----------------------------------------------------------------------------
# Persistent ES (Vicol et al. 2021).
# ----------------------------------------------------------------------------

class PESState(NamedTuple):
    """Persistent state of one antithetic PES pair.

    Attributes:
      pos: task state unrolled under ``theta + delta_k`` at every truncation k.
      neg: task state unrolled under ``theta - delta_k``.
      accumulator: xi, structure of ``meta_params``: the sum of the
        perturbations ``delta_j`` applied to ``pos`` since its episode began
        (``neg`` got ``-xi``).
    """

    pos: PyTree
    neg: PyTree
    accumulator: MetaParams


def pes_init(task: TruncatedTask, meta_params: MetaParams, key: PRNGKey) -> PESState:
    """One fresh episode, shared by both members, and a zero accumulator."""
    state = task.init(meta_params, key)
    return PESState(state, state, _tmap(jnp.zeros_like, meta_params))


def pes_accumulate(accumulator: PyTree, delta: PyTree, reset: Array) -> PyTree:
    """``xi_k = (0 if reset else xi_{k-1}) + delta_k``; ``reset`` is a scalar."""
    return _tmap(lambda a, d: jnp.where(reset, jnp.zeros_like(a), a) + d, accumulator, delta)


def pes(task: TruncatedTask, meta_params: MetaParams, pes_state: PESState, key: PRNGKey, *,
        sigma: float, num_steps: int) -> tuple[MetaParams, PESState, Array, Metrics]:
    """One truncation of persistent ES for one antithetic pair.

    Derivation (Vicol et al. 2021, sec. 3-4). Within an episode, truncation k
    runs with its own perturbed ``theta + delta_k`` (``delta_k ~ N(0, sigma^2 I)``,
    independent across k), and its loss ``L_k(theta + delta_1, ..., theta + delta_k)``
    depends on every earlier perturbation through the persistent state. Stein's
    lemma on the joint Gaussian of ``(delta_1, ..., delta_k)``, all of which shift
    the same theta, gives::

        d/dtheta E[L_k] = E[(delta_1 + ... + delta_k) L_k] / sigma^2 = E[xi_k L_k] / sigma^2

    and the antithetic twin (every ``delta_j`` negated, hence ``-xi_k``) cancels
    the even part::

        g_hat_k = xi_k (L_k^+ - L_k^-) / (2 sigma^2)

    Summed over the truncations of an episode, ``sum_k g_hat_k`` is unbiased for
    the gradient of the smoothed episode loss ``sum_k L_k``: unlike TBPTT, the
    path through the carried state is credited, via xi. When the task resets at
    the start of truncation k (``metrics["reset"]``), the fresh state depends on
    no earlier perturbation (the episode schedule does not depend on theta, and
    ``init`` runs under this truncation's ``theta +- delta_k``), so xi restarts:
    ``xi_k = delta_k``. Both members use the same key, hence the same data and
    the same re-initialisations.

    Args:
      task: the task (static).
      meta_params: theta.
      pes_state: from :func:`pes_init` or the previous call.
      key: drawn into this truncation's perturbation and unroll keys.
      sigma: perturbation standard deviation (static, > 0).
      num_steps: truncation length (static).

    Returns:
      ``(meta_grad, new_pes_state, loss, metrics)``; ``loss`` is the mean of the
      two members' losses; metrics: ``loss_pos``, ``loss_neg``, ``reset``,
      ``accumulator_norm`` (|xi| over all leaves).
    """
    check_sigma(sigma)
    k_pert, k_unroll = jax.random.split(key)
    delta = gaussian_like(k_pert, meta_params, sigma)
    # One vmap over the pair keeps both members in a single scan. Both see the
    # same key (common random numbers): same data, same re-initialisations.
    states = _tmap(lambda p, n: jnp.stack([p, n]), pes_state.pos, pes_state.neg)
    new_states, losses, task_metrics = jax.vmap(
        lambda p, s: task.unroll(p, s, k_unroll, num_steps))(_pair_params(meta_params, delta),
                                                             states)
    # Both members share the episode schedule, so their reset flags agree.
    reset = jnp.asarray(task_metrics["reset"][0]).astype(bool)
    xi = pes_accumulate(pes_state.accumulator, delta, reset)
    grad = _scale(xi, (losses[0] - losses[1]) / (2.0 * sigma**2))
    new_state = PESState(_tmap(lambda x: x[0], new_states), _tmap(lambda x: x[1], new_states), xi)
    xi_sq = sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(xi))
    metrics = {k: jnp.mean(v.astype(jnp.float32)) for k, v in task_metrics.items()}
    metrics.update({"loss_pos": losses[0], "loss_neg": losses[1], "reset": reset,
                    "accumulator_norm": jnp.sqrt(xi_sq)})
    return grad, new_state, jnp.mean(losses), metrics


__all__ = ["PESState", "check_sigma", "es_full", "gaussian_like", "pes", "pes_accumulate", "pes_init"]
