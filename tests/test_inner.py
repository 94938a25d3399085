"""The inner loop: compile-once unroll, gradients through it, and the data-streaming trainer."""
import dataclasses
from typing import ClassVar

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.inner import init_inner_state, unroll, unroll_jit
from metaunsup.inner.train import segments, batch_indices, train
from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule

NET = MLPSpec(6, (5, 3))
TRACES = []


@dataclasses.dataclass(frozen=True)
class DecayRule:
    """Test rule with one meta-parameter: ``w <- (1 - a) w`` on every layer.

    Closed form after T steps: ``w_T = (1 - a)^T w_0``, so
    ``d sum(w_T) / da = -T (1 - a)^(T-1) sum(w_0)``.
    """

    name: ClassVar[str] = "decay"
    net: MLPSpec

    def init_meta_params(self, key):
        return {"a": jnp.asarray(0.1, jnp.float32)}

    def init_state(self, meta_params, params, *, key):
        return {"n": jnp.zeros((), jnp.int32)}

    def step(self, meta_params, params, state, x, *, key):
        TRACES.append(1)  # Python side effect: counts traces, not executions
        a = meta_params["a"]
        params = tuple(p._replace(w=(1 - a) * p.w) for p in params)
        return params, {"n": state["n"] + 1}, {"x_mean": jnp.mean(x)}


def _batches(t, b=4, seed=0):
    return jax.random.uniform(jax.random.key(seed), (t, b, NET.n_in))


def test_unroll_jit_compiles_once_per_shape():
    rule = DecayRule(NET)
    mp = rule.init_meta_params(None)
    state = init_inner_state(rule, mp, key=jax.random.key(0))
    TRACES.clear()
    s1, _ = unroll_jit(rule, mp, state, _batches(5))
    assert len(TRACES) == 1  # scan traces its body once
    s2, _ = unroll_jit(rule, {"a": jnp.asarray(0.2, jnp.float32)}, s1, _batches(5, seed=1))
    s2, _ = unroll_jit(DecayRule(NET), mp, s2, _batches(5, seed=2))  # equal rule: cache hit
    assert len(TRACES) == 1
    unroll_jit(rule, mp, s2, _batches(7))  # new length: one new trace
    assert len(TRACES) == 2
    assert int(s2.step) == 15 and int(s2.rule_state["n"]) == 15


def test_unroll_gradient_wrt_meta_params_matches_closed_form():
    rule = DecayRule(NET)
    state = init_inner_state(rule, rule.init_meta_params(None), key=jax.random.key(0))
    t, a = 6, 0.1

    def loss(mp):
        final, _ = unroll(rule, mp, state, _batches(t))
        return sum(jnp.sum(p.w) for p in final.params)

    grad = jax.jit(jax.grad(loss))({"a": jnp.asarray(a, jnp.float32)})["a"]
    w0 = sum(float(jnp.sum(p.w)) for p in state.params)
    np.testing.assert_allclose(float(grad), -t * (1 - a) ** (t - 1) * w0, rtol=1e-5)


def test_hand_rules_have_empty_meta_gradients():
    rule = make_rule("sanger", NET)
    mp = rule.init_meta_params(jax.random.key(0))
    state = init_inner_state(rule, mp, key=jax.random.key(1))
    g = jax.grad(lambda m: jnp.sum(unroll(rule, m, state, _batches(2))[0].params[0].w))(mp)
    assert g == {}


# --------------------------------------------------------------------------
# train(): streaming minibatches.
# --------------------------------------------------------------------------

DATA = np.random.default_rng(0).uniform(size=(40, NET.n_in)).astype(np.float32)


def test_batch_indices_are_shuffled_epochs():
    it = batch_indices(10, 3, seed=0)
    epoch = np.concatenate([next(it) for _ in range(3)])  # 3 full batches per epoch
    assert len(set(epoch.tolist())) == 9  # no repeat within an epoch
    again = batch_indices(10, 3, seed=0)
    np.testing.assert_array_equal(next(again), epoch[:3])


@pytest.mark.parametrize("steps,every,chunk", [(10, None, 4), (10, 3, 50), (7, 10, 2)])
def test_segments_cover_steps_and_stop_at_probes(steps, every, chunk):
    segs = list(segments(steps, every, chunk))
    assert sum(n for n, _ in segs) == steps
    assert all(0 < n <= chunk for n, _ in segs)
    ends = np.cumsum([n for n, _ in segs])[[p for _, p in segs]]
    expected = sorted({*range(every, steps, every), steps}) if every else []
    assert ends.tolist() == expected
    assert len({n for n, _ in segs}) <= 3


def test_train_is_reproducible_chunk_invariant_and_records_a_curve():
    rule = make_rule("oja", NET, lr=0.05)
    key = jax.random.key(3)

    def probe(params):
        return float(jnp.sum(params[0].w))

    a = train(rule, {}, DATA, steps=12, batch_size=8, key=key, chunk=5, curve_every=5,
              probe_fn=probe, progress=True)
    b = train(rule, {}, DATA, steps=12, batch_size=8, key=key, chunk=12)
    assert a.curve_steps == [0, 5, 10, 12]
    assert len(a.curve) == 4 and a.curve[-1] == pytest.approx(probe(a.params))
    assert int(a.inner_state.step) == 12
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-6, atol=1e-7)
    assert set(a.metrics) == {"update_rms"}
    # The same as unrolling by hand over the same minibatches.
    it = batch_indices(len(DATA), 8, int(jax.random.randint(jax.random.split(key)[1], (), 0,
                                                             np.iinfo(np.int32).max)))
    state = init_inner_state(rule, {}, key=jax.random.split(key)[0])
    manual, _ = unroll_jit(rule, {}, state, DATA[np.stack([next(it) for _ in range(12)])])
    chex.assert_trees_all_close(manual.params, a.params, rtol=1e-6, atol=1e-7)
    # Another key, another run.
    c = train(rule, {}, DATA, steps=12, batch_size=8, key=jax.random.key(4), chunk=12)
    assert not np.allclose(c.params[0].w, a.params[0].w)


def test_train_rejects_bad_input():
    rule = make_rule("oja", NET)
    with pytest.raises(UserError, match="features"):
        train(rule, {}, DATA[:, :4], steps=2, batch_size=4, key=jax.random.key(0))
    with pytest.raises(UserError, match="batch_size"):
        train(rule, {}, DATA, steps=2, batch_size=41, key=jax.random.key(0))
    with pytest.raises(UserError, match="probe_fn"):
        train(rule, {}, DATA, steps=2, batch_size=4, key=jax.random.key(0), curve_every=1)
    with pytest.raises(UserError, match="steps"):
        train(rule, {}, DATA, steps=0, batch_size=4, key=jax.random.key(0))
    bad = DATA.copy()
    bad[0, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        train(rule, {}, bad, steps=2, batch_size=4, key=jax.random.key(0))
