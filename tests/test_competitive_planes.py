"""The competition planes of the learned rule (rules/planes.py, last five planes).

Checked against NumPy transcriptions, against SoftHebb's and Krotov-Hopfield's
update directions (with suitable mixing weights, per-unit nets off), for
permutation equivariance over hidden units, invariance to the order of
examples, and for finite, correct meta-gradients through the temperature.
"""
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule
from metaunsup.rules.learned import CONFIGS, rule_config
from metaunsup.rules.plane_mix import mixed_update
from metaunsup.rules.planes import (
    CLASSIC_PLANES,
    COMPETITIVE_PLANES,
    PLANES,
    mix_planes,
    plane_labels,
    weight_planes,
)
from metaunsup.types import LayerParams

FAST_COMPILE = {"xla_backend_optimization_level": 0}
TAU, K, DELTA = 0.7, 3, 0.4


def _np_softmax(s, tau):
    z = np.exp((s - s.max(1, keepdims=True)) / tau)
    return z / z.sum(1, keepdims=True)


def _np_rank(s, k, delta):
    g = np.zeros_like(s)
    order = np.argsort(-s, axis=1)
    g[np.arange(len(s)), order[:, 0]] = 1.0
    g[np.arange(len(s)), order[:, k - 1]] -= delta
    return g


def _layer(seed, b=9, n_in=6, n_out=5):
    rng = np.random.default_rng(seed)
    # non-negative inputs (pixels, ReLU outputs): the case that needs centring
    return rng.normal(size=(n_in, n_out)) / math.sqrt(n_in), rng.uniform(size=(b, n_in))


@functools.lru_cache(maxsize=None)
def _planes_fn(planes):
    fn = functools.partial(weight_planes, planes=planes, eps=1e-12, var_eps=1e-5,
                           comp_k=K, comp_delta=DELTA)
    return jax.jit(lambda w, a_in, tau: fn(w, a_in[None], a_in[None] @ w, a_in, a_in @ w,
                                           tau=tau), compiler_options=FAST_COMPILE)


def _planes(planes, w, a_in, tau=TAU):
    with jax.enable_x64(True):
        return np.asarray(_planes_fn(planes)(jnp.asarray(w), jnp.asarray(a_in), tau))


def test_plane_names_and_default_configs():
    assert PLANES == CLASSIC_PLANES + COMPETITIVE_PLANES  # appended: old mix vectors keep meaning
    assert COMPETITIVE_PLANES == ("soft_hebb", "soft_decay", "soft_count", "rank_hebb",
                                  "rank_decay")
    for name in ("small", "paper", "mix_only"):
        assert CONFIGS[name].planes == CLASSIC_PLANES
    assert plane_labels(PLANES, 2)[-5:] == COMPETITIVE_PLANES
    net = MLPSpec(4, (3,))
    # the temperature is a meta-parameter only when a softmax plane is built
    for planes, has_tau in [(CLASSIC_PLANES, False), (("rank_hebb", "decay"), False),
                            (("soft_count",), True)]:
        rule = make_rule("learned", net, config="mix_only", planes=planes, comp_tau=0.5)
        meta = jax.eval_shape(rule.init_meta_params, jax.random.key(0))
        assert ("log_tau" in meta["mix"]) == has_tau
    meta = {"mix": {"log_tau": np.log(np.float32(0.5))}}
    assert float(rule.temperature(meta)) == pytest.approx(0.5)
    for bad in [dict(comp_k=0), dict(comp_delta=-0.1), dict(comp_tau=0.0),
                dict(comp_tau=1e4)]:
        with pytest.raises(UserError):
            rule_config("small", **bad)


def test_competition_planes_match_numpy():
    w, a_in = _layer(0)
    b = len(a_in)
    got = _planes(COMPETITIVE_PLANES, w, a_in)
    x = a_in - a_in.mean(0)
    s = x @ w
    y, g = _np_softmax(s, TAU), _np_rank(s, K, DELTA)
    want = [x.T @ y / b, w * (y * s).sum(0) / b, w * y.sum(0) / b,
            x.T @ g / b, w * (g * s).sum(0) / b]
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-10, atol=1e-12)
    # k larger than the layer is clipped to its width; one unit keeps only the +1
    got1 = _planes(("rank_hebb",), w[:, :1], a_in)[0]
    np.testing.assert_allclose(got1, x.T @ np.ones((b, 1)) / b, atol=1e-12)


def _cosine(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


def _softhebb_dw(w, a_in, tau):
    """SoftHebb (Journe et al. 2023, eq. for W): dW = x^T y - W diag(sum_b y u), x centred."""
    x = a_in - a_in.mean(0)
    u = x @ w
    y = _np_softmax(u, tau)
    return x.T @ y - w * (y * u).sum(0)


def _krotov_hopfield_dw(w, a_in, k, delta):
    """Krotov & Hopfield (PNAS 2019), p = 2: g rank-coded, dW = x^T g - W diag(sum_b g u),
    divided by max |dW| (their normalisation)."""
    x = a_in - a_in.mean(0)
    u = x @ w  # <W_mu, x>_p with p = 2 is the plain dot product
    g = _np_rank(u, k, delta)
    dw = x.T @ g - w * (g * u).sum(0)
    return dw / np.max(np.abs(dw))


def test_mixed_planes_give_softhebb_and_krotov_hopfield_directions():
    """mix_planes normalises each plane by its RMS, so mixing weights (-rms(hebb), +rms(decay))
    give back ``decay - hebb``; the step ``W - lr dW`` then follows SoftHebb / Krotov-Hopfield."""
    for seed in range(3):
        w, a_in = _layer(seed, b=32, n_in=7, n_out=6)
        for names, want in [(("soft_hebb", "soft_decay"), _softhebb_dw(w, a_in, TAU)),
                            (("rank_hebb", "rank_decay"), _krotov_hopfield_dw(w, a_in, K, DELTA))]:
            planes = _planes(names, w, a_in)
            mix = np.array([-_rms(planes[0]), _rms(planes[1])])
            with jax.enable_x64(True):
                dw = np.asarray(mix_planes(jnp.asarray(planes), jnp.asarray(mix), 1e-30))
            assert _cosine(-dw, want) == pytest.approx(1.0, abs=1e-5)


def _one_layer_rule(planes, lr=0.05):
    return make_rule("learned", MLPSpec(7, (6,)), config="mix_only", planes=planes,
                     per_kind_mix=False, lr=lr, comp_tau=TAU, comp_k=K, comp_delta=DELTA)


def test_learned_rule_step_follows_softhebb():
    """Through ``LearnedRule.step`` (use_unit_net=False, learned_readouts=False)."""
    lr = 0.05
    rule = _one_layer_rule(("soft_hebb", "soft_decay"), lr)
    w, a_in = _layer(5, b=32, n_in=7, n_out=6)
    planes = _planes(("soft_hebb", "soft_decay"), w, a_in)
    meta = rule.init_meta_params(jax.random.key(0))
    meta["mix"]["w"] = jnp.asarray([-_rms(planes[0]), _rms(planes[1])], jnp.float32)
    params = (LayerParams(w=jnp.asarray(w, jnp.float32), b=jnp.zeros(6), v=jnp.zeros((7, 6))),)
    step = jax.jit(lambda m, p, x: rule.step(m, p, (), x, key=None)[0],
                   compiler_options=FAST_COMPILE)
    new = step(meta, params, jnp.asarray(a_in, jnp.float32))
    dw = ((1 - lr) * w - np.asarray(new[0].w, np.float64)) / lr
    assert _cosine(-dw, _softhebb_dw(w, a_in, TAU)) == pytest.approx(1.0, abs=1e-5)
    assert _rms(dw) == pytest.approx(1.0, rel=1e-3)  # the bounded step


def _permute_layer(params, layer, perm):
    out = list(params)
    p, q = out[layer], out[layer + 1]
    out[layer] = LayerParams(w=p.w[:, perm], b=p.b[perm], v=p.v[:, perm])
    out[layer + 1] = LayerParams(w=q.w[perm], b=q.b, v=q.v[perm])
    return tuple(out)


def test_equivariant_to_hidden_permutations_and_invariant_to_example_order():
    net = MLPSpec(6, (8, 5))
    # per-unit nets off (their equivariance is tested in test_rule_learned): every plane
    rule = make_rule("learned", net, config="mix_only", planes=PLANES, lr=0.1, comp_k=K,
                     per_kind_mix=False)
    rng = np.random.default_rng(3)
    meta = rule.init_meta_params(jax.random.key(1))
    meta["mix"]["w"] = jnp.asarray(rng.normal(size=meta["mix"]["w"].shape), jnp.float32)
    # numpy on the host around the compiled step (eager JAX ops compile per shape)
    params = tuple(LayerParams(w=(rng.normal(size=s) / math.sqrt(s[0])).astype(np.float32),
                               b=(0.3 * rng.normal(size=s[1])).astype(np.float32),
                               v=(rng.normal(size=s) / math.sqrt(s[0])).astype(np.float32))
                   for s in net.layer_shapes)
    x = rng.uniform(size=(16, 6)).astype(np.float32)
    jitted = jax.jit(lambda m, p, x: rule.step(m, p, rule.init_state(m, p, key=None), x,
                                               key=None)[0], compiler_options=FAST_COMPILE)

    def step(m, p, x):
        return jax.tree.map(np.asarray, jitted(m, p, x))

    new = step(meta, params, x)
    perm = rng.permutation(8)
    new_p = step(meta, _permute_layer(params, 0, perm), x)
    for a, b, old in zip(jax.tree.leaves(new_p), jax.tree.leaves(_permute_layer(new, 0, perm)),
                         jax.tree.leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    new_o = step(meta, params, x[rng.permutation(16)])
    for a, b in zip(jax.tree.leaves(new_o), jax.tree.leaves(new)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    moved = max(float(np.max(np.abs(a - b))) for a, b in
                zip(jax.tree.leaves(new), jax.tree.leaves(params)))
    assert moved > 1e-3  # the update is not trivial


def test_meta_gradient_through_the_temperature_is_finite_and_correct():
    """d/d log_tau of a loss after 3 steps, against a central difference, in float64."""
    rule = dataclasses.replace(_one_layer_rule(COMPETITIVE_PLANES, lr=0.1),
                               net=MLPSpec(7, (6, 4), activation="tanh"))
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        meta = jax.tree.map(lambda a: np.asarray(a, np.float64),
                            rule.init_meta_params(jax.random.key(0)))
        meta["mix"]["w"] = rng.normal(size=meta["mix"]["w"].shape)
        params = tuple(LayerParams(w=rng.normal(size=s) / math.sqrt(s[0]), b=np.zeros(s[1]),
                                   v=rng.normal(size=s) / math.sqrt(s[0]))
                       for s in rule.net.layer_shapes)
        xs = jnp.asarray(rng.uniform(size=(3, 16, 7)))
        probe = rng.normal(size=(4,))

        def loss(log_tau):
            m = {**meta, "mix": {**meta["mix"], "log_tau": log_tau}}
            p = params
            for x in xs:
                p = rule.step(m, p, rule.init_state(m, p, key=None), x, key=None)[0]
            return jnp.sum(jnp.tanh(xs[0] @ p[0].w) @ p[1].w @ probe)

        vg = jax.jit(jax.value_and_grad(loss), compiler_options=FAST_COMPILE)
        t0 = math.log(TAU)
        _, g = vg(t0)
        h = 1e-6
        fd = (vg(t0 + h)[0] - vg(t0 - h)[0]) / (2 * h)
    assert np.isfinite(g) and abs(float(fd)) > 1e-4
    assert float(g) == pytest.approx(float(fd), rel=1e-5)


@pytest.mark.parametrize("rank,planes", [(1, PLANES), (3, PLANES), (1, ("hebb", "oja_subspace")),
                                         (2, ("outer_w", "oja", "rank_decay", "decay")),
                                         (0, PLANES), (0, ("decorr", "soft_count")),
                                         (0, ("gram_post", "hebb", "rank_hebb"))])
def test_mixed_update_equals_mix_of_stacked_planes(rank, planes):
    """The fused mixed_update (column-scaling planes folded into one vector, no stack)
    gives mix_planes(weight_planes(...)) to float64 rounding, for any mixing weights."""
    rng = np.random.default_rng(rank)
    b, n_in, n_out = 11, 7, 6
    w = rng.normal(size=(n_in, n_out)) / math.sqrt(n_in)
    a_in = rng.uniform(size=(b, n_in))
    a_out = np.maximum(a_in @ w, 0.0)
    # rank 0: the read-outs are the activations (c = e = None, the shared-product path)
    c, e = ((a_in[None], a_out[None]) if rank == 0 else
            (rng.normal(size=(rank, b, n_in)), rng.normal(size=(rank, b, n_out))))
    mix = rng.normal(size=(len(plane_labels(planes, max(rank, 1))),))
    kw = dict(planes=planes, eps=1e-12, var_eps=1e-5, tau=TAU, comp_k=K, comp_delta=DELTA)
    with jax.enable_x64(True):
        args = [jnp.asarray(v) for v in (w, c, e, a_in, a_out)]
        stacked = mix_planes(weight_planes(*args, **kw), jnp.asarray(mix), 1e-12)
        if rank == 0:
            args[1] = args[2] = None
        fused = mixed_update(*args, jnp.asarray(mix), **kw)
        np.testing.assert_allclose(np.asarray(fused), np.asarray(stacked), rtol=1e-10, atol=1e-12)
