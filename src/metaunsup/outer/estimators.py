"""Meta-gradient estimators over a :class:`~metaunsup.inner.task.TruncatedTask`.

Three ways to estimate the gradient of the meta-objective with respect to
``meta_params`` (theta), each a pure function over explicit state that sees the
task only through ``init`` / ``unroll``:

- :func:`tbptt`: truncated backpropagation through time (Metz et al. 2019,
  sec. 4.3). Exact gradient of one truncation's loss, holding the incoming
  state fixed; biased towards short horizons.
- :func:`es_full`: antithetic evolution strategies over a whole episode from a
  fresh init. Unbiased for the Gaussian-smoothed loss, no backprop, but it
  cannot persist state between calls.
- :func:`pes`: persistent evolution strategies (P. Vicol, L. Metz,
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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from metaunsup.errors import UserError
from metaunsup.inner.task import TruncatedTask
from metaunsup.types import Array, MetaParams, Metrics, PRNGKey, PyTree

_tmap = jax.tree_util.tree_map


def _check_sigma(sigma: float) -> None:
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
    _check_sigma(sigma)
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
    _check_sigma(sigma)
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
        _check_sigma(self.sigma)
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
