"""The inner loop: an update rule training a base network on unlabeled batches."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metaunsup.models import init_params
from metaunsup.rules.base import UpdateRule
from metaunsup.types import Array, MetaParams, Metrics, Params, PRNGKey, PyTree


class InnerState(NamedTuple):
    """Carry of the inner loop.

    Attributes:
      params: the base network's parameters.
      rule_state: the rule's state.
      step: int32 scalar, inner steps taken.
      key: PRNG key for the following steps.
    """

    params: Params
    rule_state: PyTree
    step: Array
    key: PRNGKey


def initial_params(key: PRNGKey, net) -> Params:
    """The base network :func:`init_inner_state` starts from for ``key``.

    Baselines that do not go through the inner loop (``supervised``) call this,
    so every method compared for a seed starts from the same network.
    """
    return init_params(jax.random.split(key, 3)[0], net)


def init_inner_state(rule: UpdateRule, meta_params: MetaParams, *, key: PRNGKey) -> InnerState:
    """Fresh base-network parameters and rule state for ``rule.net``."""
    _, k_state, k_next = jax.random.split(key, 3)
    params = initial_params(key, rule.net)
    rule_state = rule.init_state(meta_params, params, key=k_state)
    return InnerState(params, rule_state, jnp.zeros((), jnp.int32), k_next)


def inner_step(rule: UpdateRule, meta_params: MetaParams, inner_state: InnerState,
               x: Array) -> tuple[InnerState, Metrics]:
    """One rule update from the unlabeled batch ``x`` [B, n_in]."""
    key, k_step = jax.random.split(inner_state.key)
    params, rule_state, metrics = rule.step(
        meta_params, inner_state.params, inner_state.rule_state, x, key=k_step)
    return InnerState(params, rule_state, inner_state.step + 1, key), metrics


def unroll(rule: UpdateRule, meta_params: MetaParams, inner_state: InnerState,
           batches: Array) -> tuple[InnerState, Metrics]:
    """Applies ``rule`` once per batch with ``jax.lax.scan``.

    Differentiable with respect to ``meta_params``. Jit it with ``rule`` static:
    ``jax.jit(unroll, static_argnums=0)``; it compiles once per shape.

    Args:
      rule: the update rule (static).
      meta_params: the rule's parameters.
      inner_state: the carry.
      batches: [T, B, n_in] unlabeled batches, one per step.

    Returns:
      The final inner state and the per-step metrics stacked along a leading T axis.
    """
    def body(state, x):
        return inner_step(rule, meta_params, state, x)

    return jax.lax.scan(body, inner_state, batches)


unroll_jit = jax.jit(unroll, static_argnums=0)
