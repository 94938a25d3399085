"""Contracts every registered update rule must keep (parametrised over the registry).

A rule registered later (e.g. "learned") is covered automatically; its options
for these tiny networks come from ``RULE_OPTIONS``.
"""
import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.inner import InnerState, init_inner_state, inner_step, unroll_jit
from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule, rule_names

# Equal widths on purpose: eager execution compiles every primitive once per
# shape, and equal widths let the levels share those compilations (halves the
# eager test's time). Unequal widths are exercised by test_any_width_and_depth.
NET = MLPSpec(16, (16, 16))
BATCH = 8
RULE_OPTIONS = {"learned": {"config": "small"}}
RTOL, ATOL = 1e-5, 1e-6


def _rule(name, net=NET):
    return make_rule(name, net, **RULE_OPTIONS.get(name, {}))


def _batch(seed, batch=BATCH, n_in=NET.n_in):
    return jax.random.uniform(jax.random.key(seed), (batch, n_in), jnp.float32)


def _assert_trees_close(a, b, rtol=RTOL, atol=ATOL):
    def data(x):  # typed PRNG keys compare by their bits
        return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    chex.assert_trees_all_close(jax.tree.map(data, a), jax.tree.map(data, b),
                                rtol=rtol, atol=atol)


def _signature(tree):
    return jax.tree.structure(tree), [(jnp.shape(x), jnp.result_type(x))
                                      for x in jax.tree.leaves(tree)]


@functools.lru_cache(maxsize=None)
def _setup(name):
    """Rule, meta-params, a fresh inner state, and a jitted inner step counting its traces.

    Cached so that every test of a rule shares one compilation of its step.
    """
    rule = _rule(name)
    meta_params = rule.init_meta_params(jax.random.key(0))
    state = init_inner_state(rule, meta_params, key=jax.random.key(1))
    traces = []

    def counted_step(mp, inner_state, x):
        traces.append(1)  # a Python side effect: runs only while tracing
        return inner_step(rule, mp, inner_state, x)

    return rule, meta_params, state, jax.jit(counted_step), traces


@pytest.fixture(params=rule_names())
def name(request):
    return request.param


def test_registry_lists_hand_rules():
    assert {"sanger", "oja", "ae_sgd"} <= set(rule_names())


def test_jit_equals_eager_and_second_call_does_not_retrace(name):
    rule, mp, st, step, traces = _setup(name)
    jitted = step(mp, st, _batch(2))
    eager = inner_step(rule, mp, st, _batch(2))
    _assert_trees_close(jitted, eager)
    n = len(traces)
    assert n >= 1
    # New values, same shapes: the compiled step is reused.
    out = step(mp, jitted[0], _batch(3))
    jax.block_until_ready(out)
    assert len(traces) == n


def test_step_keeps_tree_structure_shapes_and_dtypes(name):
    rule, mp, st, step, _ = _setup(name)
    new, metrics = step(mp, st, _batch(4))
    params = new.params
    assert _signature(new) == _signature(st)
    assert isinstance(metrics, dict)
    for k, v in metrics.items():
        assert jnp.shape(v) == (), k
        assert np.isfinite(float(v)), k
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))
    # The rule does something (the rule 'none' exactly nothing).
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params),
                                                         jax.tree.leaves(st.params))]
    assert any(changed) == (name != "none")
    # Meta-parameters never depend on the network: a rule built for another
    # network gets the same tree.
    other = _rule(name, MLPSpec(12, (10, 6, 4)))
    assert _signature(other.init_meta_params(jax.random.key(0))) == _signature(mp)


ORDERED = {"sanger": "Sanger's rule orders its units by design: unit k learns the k-th "
                     "principal component (lower-triangular decorrelation)"}
"""Rules whose update depends on the order of a layer's units, with the reason."""
PERM_NET = MLPSpec(16, (12, 10, 6))


def _permute_layer(params, layer, perm):
    """The same network with the units of hidden layer ``layer`` in the order ``perm``."""
    out = list(params)
    p = out[layer]
    out[layer] = p._replace(w=p.w[:, perm], b=p.b[perm], v=p.v[:, perm])
    q = out[layer + 1]
    out[layer + 1] = q._replace(w=q.w[perm, :], v=q.v[perm, :])
    return tuple(out)


def test_permuting_a_hidden_layer_permutes_the_update(name):
    """Neuron-local: relabel a hidden layer's units and the update is relabelled alike.

    The network (batch norm and activation act per unit) computes the same function
    after the permutation; a rule's state is built from the permuted network by its
    own ``init_state``; one step from each must agree up to the same permutation.
    """
    rule = _rule(name, PERM_NET)
    mp = rule.init_meta_params(jax.random.key(0))
    x = _batch(7, n_in=PERM_NET.n_in)
    perm = np.random.default_rng(0).permutation(PERM_NET.widths[1])  # the middle layer
    start = init_inner_state(rule, mp, key=jax.random.key(1))
    permuted = _permute_layer(start.params, 1, perm)
    state_p = start._replace(params=permuted,
                             rule_state=rule.init_state(mp, permuted, key=jax.random.key(3)))
    state = start._replace(rule_state=rule.init_state(mp, start.params, key=jax.random.key(3)))
    step = jax.jit(inner_step, static_argnums=0)
    new, _ = step(rule, mp, state, x)
    new_p, _ = step(rule, mp, state_p, x)
    expect = _permute_layer(new.params, 1, perm)
    if name in ORDERED:
        with pytest.raises(AssertionError):
            _assert_trees_close(new_p.params, expect, rtol=1e-4, atol=1e-5)
        return
    _assert_trees_close(new_p.params, expect, rtol=1e-4, atol=1e-5)


def test_any_width_and_depth(name):
    """The same meta-parameters drive a network of other widths, depth and activation."""
    rule, mp, _, _, _ = _setup(name)
    net = MLPSpec(12, (10, 6, 4), activation="tanh")
    other = dataclasses.replace(rule, net=net)
    st = init_inner_state(other, mp, key=jax.random.key(2))
    new, _ = jax.jit(inner_step, static_argnums=0)(other, mp, st, _batch(5, 8, 12))
    assert _signature(new) == _signature(st)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(new.params))


def test_vmap_over_tasks_equals_loop(name):
    rule, mp, _, step, _ = _setup(name)
    states = [init_inner_state(rule, mp, key=jax.random.key(10 + i)) for i in range(3)]
    xs = [_batch(20 + i) for i in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *states)
    vstep = jax.jit(jax.vmap(lambda s, x: inner_step(rule, mp, s, x)))
    batched, batched_metrics = vstep(stacked, jnp.stack(xs))
    for i, (s, x) in enumerate(zip(states, xs)):
        single, metrics = step(mp, s, x)
        _assert_trees_close(jax.tree.map(lambda a: a[i], batched), single)
        _assert_trees_close({k: v[i] for k, v in batched_metrics.items()}, metrics)


def test_unroll_equals_repeated_inner_steps(name):
    rule, mp, st, step, _ = _setup(name)
    steps = 3
    batches = jnp.stack([_batch(30 + t) for t in range(steps)])
    final, metrics = unroll_jit(rule, mp, st, batches)
    state = st
    for t in range(steps):
        state, m = step(mp, state, batches[t])
        _assert_trees_close({k: v[t] for k, v in metrics.items()}, m)
    assert isinstance(final, InnerState)
    _assert_trees_close(final, state)
    assert int(final.step) == steps
