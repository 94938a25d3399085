"""Numbers and invariances of the learned neuron-local rule (rules/learned.py).

Tiny networks throughout; tests that share a rule and shapes share one
compilation through ``_step`` (the rule is a static, hashable argument).
"""
import dataclasses
import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.inner import InnerState, inner_step, unroll_jit
from metaunsup.models import MLPSpec, features, init_params
from metaunsup.objectives.ridge import ridge_meta_loss
from metaunsup.rules import make_rule
from metaunsup.rules.learned import (
    CONFIGS,
    LearnedRule,
    LearnedRuleConfig,
    num_meta_params,
    rule_config,
)
from metaunsup.rules.planes import CLASSIC_PLANES as PLANES, mix_planes, plane_labels, weight_planes
from metaunsup.rules.unit_nets import pass_down
from metaunsup.types import LayerParams

NET = MLPSpec(10, (12, 9, 7))  # depth 3: layer 1 is a middle layer
BATCH = 16


# Tiny networks: XLA's backend optimisations cost more compile time than they save.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _step(rule, meta_params, params, state, x):
    return rule.step(meta_params, params, state, x, key=jax.random.key(0))


_step = jax.jit(_step, static_argnums=0, compiler_options=FAST_COMPILE)


def _x(seed, batch=BATCH, n_in=NET.n_in):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(batch, n_in)), jnp.float32)


def _random_meta(rule, seed, mix_std=1.0, scale=1.0):
    """Random meta-params (numpy, so nothing compiles): weights N(0, scale^2 / fan_in),
    mixing weights N(0, mix_std^2) so that every plane matters."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(rule.init_meta_params, jax.random.key(0))

    def draw(path, s):
        name = jax.tree_util.keystr(path)
        if "log_lr" in name:
            return jnp.asarray(math.log(rule.config.lr), jnp.float32)
        fan_in = s.shape[0] if s.shape else 1
        std = mix_std if "'mix'" in name and "'w'" in name else scale / math.sqrt(fan_in)
        return jnp.asarray(std * rng.normal(size=s.shape), jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def _random_params(net, seed):
    """Base-network params like ``init_params`` but with non-zero biases (numpy)."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in net.layer_shapes:
        w, v = (rng.normal(size=(2, n_in, n_out)) / math.sqrt(n_in)).astype(np.float32)
        layers.append(LayerParams(w=jnp.asarray(w), b=jnp.asarray(0.3 * rng.normal(size=n_out),
                                                                   jnp.float32), v=jnp.asarray(v)))
    return tuple(layers)


@functools.lru_cache(maxsize=None)
def _init_state(rule):
    return jax.jit(lambda meta, params: rule.init_state(meta, params, key=None),
                   compiler_options=FAST_COMPILE)


def _setup(rule, seed=0):
    """Random meta-params, params with non-zero biases, and the rule state."""
    meta = _random_meta(rule, seed)
    params = _random_params(rule.net, seed + 1)
    return meta, params, _init_state(rule)(meta, params)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(np.asarray(x, np.float64)))))


def _signature(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


# --- configuration and registry ---------------------------------------------

def test_configs_validate_and_registry_builds_rules():
    for bad in [dict(planes=("outer", "nope")), dict(mixing="attention"), dict(lr=1.5),
                dict(conv_width=4), dict(v_update="transpose"), dict(hidden_channels=0),
                dict(init_mix=(("nope", 1.0),)), dict(learn_lr=True, lr=1.0)]:
        with pytest.raises(UserError):
            rule_config("small", **bad)
    with pytest.raises(UserError):
        rule_config("small", not_a_field=1)
    with pytest.raises(UserError):
        rule_config("huge")
    rule = make_rule("learned", NET, config="paper", lr=1e-3)
    assert isinstance(rule, LearnedRule) and rule.name == "learned"
    assert rule.config == dataclasses.replace(CONFIGS["paper"], lr=1e-3)
    assert (rule.config.hidden_channels, rule.config.signal_channels,
            rule.config.readout_rank) == (64, 32, 4)
    assert hash(rule) == hash(make_rule("learned", NET, config="paper", lr=1e-3))
    # lists from a command line become tuples; the config stays hashable
    assert rule_config("small", planes=["hebb", "decay"]).planes == ("hebb", "decay")
    # a config survives a JSON round trip (how rule files store it)
    for cfg in CONFIGS.values():
        assert LearnedRuleConfig(**json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg
    # meta-parameters do not depend on the network: same tree for a very different one
    other = dataclasses.replace(rule, net=MLPSpec(3, (1024, 5, 5, 5, 2)))
    shapes = jax.eval_shape(rule.init_meta_params, jax.random.key(0))
    assert shapes == jax.eval_shape(other.init_meta_params, jax.random.key(0))
    assert rule.num_meta_params() == num_meta_params(shapes) > 20_000
    # "mix_only" learns just the plane mix (+ kind offsets) and a 2-input bias read-out
    mix_only = make_rule("learned", NET, config="mix_only")
    n_planes = len(plane_labels(PLANES, 1))
    assert mix_only.num_meta_params() == n_planes * 4 + 2 + 1


# --- planes, mixing, signal propagation against closed forms ----------------------

def test_planes_match_numpy_formulas():
    rng = np.random.default_rng(0)
    b, n_in, n_out, r = 7, 5, 4, 3
    w = rng.normal(size=(n_in, n_out))
    c, e = rng.normal(size=(r, b, n_in)), rng.normal(size=(r, b, n_out))
    a_in, a_out = rng.uniform(size=(b, n_in)), np.maximum(rng.normal(size=(b, n_out)), 0)
    eps, var_eps = 1e-8, 1e-5
    with jax.enable_x64(True):
        fn = functools.partial(weight_planes, planes=PLANES, eps=eps, var_eps=var_eps)
        got = np.asarray(jax.jit(fn, compiler_options=FAST_COMPILE)(
            *map(jnp.asarray, (w, c, e, a_in, a_out))))

    def std(a):
        return (a - a.mean(0)) / np.sqrt(a.var(0) + var_eps)

    wt = w / np.sqrt(np.mean(w ** 2) + eps)
    outer = [c[k].T @ e[k] / b for k in range(r)]
    want = (outer + [o * wt for o in outer] + [o * np.exp(-wt ** 2) for o in outer]
            + [w @ sum(e[k].T @ e[k] for k in range(r)) / b,
               sum(c[k].T @ c[k] for k in range(r)) / b @ w,
               w @ (std(a_out).T @ std(a_out) / b),
               std(a_in).T @ std(a_out) / b,
               w * np.mean(a_out ** 2, 0),
               w @ (a_out.T @ a_out) / b,
               w])
    assert got.shape == (len(plane_labels(PLANES, r)), n_in, n_out) == (len(want), n_in, n_out)
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-10, atol=1e-12)


def test_mix_planes_has_unit_rms_and_ignores_plane_scales():
    rng = np.random.default_rng(1)
    planes = jnp.asarray(rng.normal(size=(6, 5, 4)), jnp.float32)
    mix = jnp.asarray(rng.normal(size=6), jnp.float32)
    mix_fn = jax.jit(functools.partial(mix_planes, eps=1e-8), compiler_options=FAST_COMPILE)
    dw = mix_fn(planes, mix)
    assert 1 - 1e-5 < _rms(dw) < 1.0 + 1e-7
    # each plane is normalised first: rescaling one plane changes nothing
    scaled = planes * jnp.asarray([1, 1, 37, 1, 1, 1], jnp.float32)[:, None, None]
    np.testing.assert_allclose(mix_fn(scaled, mix), dw, rtol=1e-5, atol=1e-6)
    # ... and the mix only matters up to a positive factor
    np.testing.assert_allclose(mix_fn(planes, 5.0 * mix), dw, rtol=1e-5, atol=1e-6)


def test_pass_down_is_delta_times_v_transposed_then_unit_rms():
    rng = np.random.default_rng(2)
    delta, v = rng.normal(size=(3, 6, 4)), rng.normal(size=(5, 4))  # [C, B, n_out], [n_in, n_out]
    with jax.enable_x64(True):
        fn = jax.jit(functools.partial(pass_down, eps=1e-12), compiler_options=FAST_COMPILE)
        got = np.asarray(fn(jnp.asarray(delta), jnp.asarray(v)))
    want = np.stack([delta[k] @ v.T for k in range(3)])  # [C, B, n_in]
    want /= np.sqrt(np.mean(want ** 2, axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(got, want, rtol=1e-9)


# --- the step against closed forms ------------------------------------------------

def test_decay_only_step_is_closed_form():
    """planes=("decay",), mix=1, bias read-out = constant 2: every update is explicit."""
    lr, eps = 0.01, 1e-8
    rule = make_rule("learned", NET, config="mix_only", planes=("decay",), per_kind_mix=False,
                     lr=lr)
    _, params, state = _setup(rule)
    meta = {"mix": {"w": jnp.ones((1,))},
            "bias": {"w": jnp.zeros((2,)), "b": jnp.asarray(2.0, jnp.float32)}}
    assert jax.eval_shape(rule.init_meta_params, jax.random.key(0)) == jax.eval_shape(lambda: meta)
    new, _, metrics = _step(rule, meta, params, state, _x(1))
    for old, upd in zip(params, new):
        w = np.asarray(old.w, np.float64)
        dw = w / np.sqrt(np.mean(w ** 2) + eps)  # the normalised decay plane
        np.testing.assert_allclose(upd.w, (1 - lr) * w - lr * dw, rtol=1e-5, atol=1e-7)
        # V receives W's update (v_update="same"), not its own decay
        np.testing.assert_allclose(upd.v, (1 - lr) * np.asarray(old.v) - lr * dw,
                                   rtol=1e-5, atol=1e-7)
        # db = mean_b(2) renormalised over units = 2 / sqrt(4 + eps) for every unit
        np.testing.assert_allclose(upd.b, (1 - lr) * np.asarray(old.b) - lr * 2 / np.sqrt(4 + eps),
                                   rtol=1e-5, atol=1e-7)
    assert float(metrics["lr"]) == pytest.approx(lr)


VARIANT = make_rule("learned", NET, config="small", normalize_columns=True, learn_lr=True,
                    scale_by_fan_in=True, v_update="none", lr=0.05, lr_max=0.2)


def test_normalize_columns_fixed_v_and_learned_lr():
    rule = VARIANT
    meta, params, state = _setup(rule, 3)
    assert float(rule.learning_rate(meta)) == pytest.approx(0.05, rel=1e-6)
    p = params
    for t in range(3):
        p, state, metrics = _step(rule, meta, p, state, _x(t))
    for old, upd in zip(params, p):
        np.testing.assert_allclose(np.sqrt(np.mean(np.square(upd.w), 0)),
                                   np.sqrt(np.mean(np.square(old.w), 0)), rtol=1e-5)
        assert np.max(np.abs(upd.w - old.w)) > 1e-3  # the columns did rotate
        np.testing.assert_array_equal(upd.v, old.v)  # v_update="none"
    assert float(metrics["lr"]) == pytest.approx(0.05, rel=1e-6)
    # the learned lr is clipped to [lr_min, lr_max]; no gradient flows outside
    high = dict(meta, log_lr=jnp.asarray(5.0))
    assert float(rule.learning_rate(high)) == pytest.approx(0.2)
    assert float(jax.grad(rule.learning_rate)(high)["log_lr"]) == 0.0
    assert float(jax.grad(rule.learning_rate)(meta)["log_lr"]) == pytest.approx(0.05, rel=1e-6)


# --- invariances ---------------------------------------------------------------------

def _permute_layer(params, layer, perm):
    """Permutes the output units of ``layer`` (and the inputs of ``layer + 1``)."""
    out = list(jax.tree.map(np.asarray, params))
    p, q = out[layer], out[layer + 1]
    out[layer] = LayerParams(w=p.w[:, perm], b=p.b[perm], v=p.v[:, perm])
    out[layer + 1] = LayerParams(w=q.w[perm], b=q.b, v=q.v[perm])
    return tuple(out)


RULE = make_rule("learned", NET, config="small", lr=0.1)  # shared: one compilation


def test_permuting_hidden_units_permutes_the_update():
    meta, params, state = _setup(RULE)
    x = _x(1)
    perm = np.random.default_rng(0).permutation(NET.widths[1])
    new, _, _ = _step(RULE, meta, params, state, x)
    pparams = _permute_layer(params, 1, perm)
    new_p, _, _ = _step(RULE, meta, pparams, _init_state(RULE)(meta, pparams), x)
    want = _permute_layer(new, 1, perm)
    for a, b, old in zip(jax.tree.leaves(new_p), jax.tree.leaves(want), jax.tree.leaves(pparams)):
        assert np.max(np.abs(b - old)) > 1e-3  # the update is not trivial
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


def test_batch_stats_is_order_invariant_and_conv_is_not():
    x = _x(2)
    order = np.random.default_rng(1).permutation(BATCH)
    deltas = {}
    for rule in [RULE, dataclasses.replace(RULE, config=rule_config(RULE.config, mixing="conv"))]:
        meta, params, state = _setup(rule)
        for name, xb in [("orig", x), ("perm", np.asarray(x)[order])]:
            new, _, _ = _step(rule, meta, params, state, xb)
            deltas[rule.config.mixing, name] = np.concatenate(
                [np.ravel(a - b) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(params))])
    scale = np.max(np.abs(deltas["batch_stats", "orig"]))
    assert scale > 1e-2
    np.testing.assert_allclose(deltas["batch_stats", "perm"], deltas["batch_stats", "orig"],
                               atol=1e-5 * scale)
    # the paper's convolution along the batch axis sees the order of the examples
    diff = np.max(np.abs(deltas["conv", "perm"] - deltas["conv", "orig"]))
    assert diff > 1e-2 * np.max(np.abs(deltas["conv", "orig"]))


def test_one_meta_params_runs_on_any_width_and_depth():
    """Shapes for depths 2..6 (traced only); numbers on a depth-6 net with all three widths."""
    meta = _random_meta(RULE, 4)  # one theta, drawn for NET
    for depth in range(2, 7):
        widths = (16, 128, 1024, 16, 128)[: depth - 1] + (8,)
        rule = dataclasses.replace(RULE, net=MLPSpec(5, widths))
        params = jax.eval_shape(functools.partial(init_params, spec=rule.net), jax.random.key(0))
        state = jax.eval_shape(functools.partial(rule.init_state, key=None), meta, params)
        out = jax.eval_shape(functools.partial(rule.step, key=None), meta, params, state,
                             _x(0, 4, 5))
        assert _signature(out[:2]) == _signature((params, state)), widths
    # every option combination traces too (shapes only): the meta-params change, the net not
    for options in [dict(unit_index_encoding=True, mixing="conv"), dict(use_unit_net=False),
                    dict(learned_readouts=False), dict(top_unit_context=False, per_kind_mix=False)]:
        rule = dataclasses.replace(RULE, config=rule_config(RULE.config, **options))
        meta_o = jax.eval_shape(rule.init_meta_params, jax.random.key(0))
        params = jax.eval_shape(functools.partial(init_params, spec=rule.net), jax.random.key(0))
        state = jax.eval_shape(functools.partial(rule.init_state, key=None), meta_o, params)
        out = jax.eval_shape(functools.partial(rule.step, key=None), meta_o, params, state, _x(0))
        assert _signature(out[:2]) == _signature((params, state)), options
    for widths in [(1024, 16, 128, 16, 16, 8)]:  # numbers: all three widths, depth 6
        rule = dataclasses.replace(RULE, net=MLPSpec(8, widths))
        params = _random_params(rule.net, 5)
        state = _init_state(rule)(meta, params)
        new, _, metrics = _step(rule, meta, params, state, _x(3, batch=8, n_in=8))
        assert _signature(new) == _signature(params)
        for leaf in jax.tree.leaves((new, metrics)):
            assert np.all(np.isfinite(leaf))
        for old, upd in zip(params, new):  # every layer moved, by at most lr (rms W + 1)
            assert 0 < _rms(upd.w - old.w) <= 0.1 * (_rms(old.w) + 1) + 1e-6


# --- stability, differentiability, contracts -------------------------------------------

@pytest.mark.slow  # 1000 inner steps
def test_random_rule_stays_bounded_for_1000_steps():
    """rms(dW) < 1 and rms is a norm, so rms(W_t) <= (1-lr) rms(W_{t-1}) + lr * 1.

    By induction rms(W_t) <= max(rms(W_0), 1) for every t; the same for V (it
    gets W's update) and for b (rms(b_0) = 0, rms(db) < 1). We use a large
    lr = 0.05 (500x the paper's) so that the weights really move.
    """
    net = MLPSpec(64, (32, 32, 32))
    rule = make_rule("learned", net, config="small", lr=0.05)
    meta = _random_meta(rule, 7, mix_std=2.0, scale=2.0)
    params = _random_params(net, 8)
    state0 = InnerState(params, _init_state(rule)(meta, params), jnp.zeros((), jnp.int32),
                        jax.random.key(8))
    batches = jnp.asarray(np.random.default_rng(9).uniform(size=(1000, 32, 64)), jnp.float32)
    final, metrics = unroll_jit(rule, meta, state0, batches)  # 1000 steps: optimise
    for leaf in jax.tree.leaves((final.params, metrics)):
        assert np.all(np.isfinite(leaf))
    for old, new in zip(state0.params, final.params):
        assert _rms(new.w) <= max(_rms(old.w), 1.0) * (1 + 1e-5)
        assert _rms(new.v) <= max(_rms(old.v), 1.0) * (1 + 1e-5)
        assert _rms(new.b) <= 1.0 + 1e-5
        assert _rms(new.w - old.w) > _rms(old.w)  # far from the initial weights
    assert np.all(np.asarray(metrics["top_std"]) > 0)


def test_meta_gradient_matches_central_differences():
    """d/d(theta) of the ridge meta-loss summed over 3 inner steps, in float64.

    Checked along a random direction u: grad . u vs (L(t + h u) - L(t - h u)) / 2h
    with h = 1e-6 and relative tolerance 1e-5. Smooth activations (swish in the
    rule, tanh in the net): with ReLUs a step of h may cross a kink, and the
    central difference is then off although the gradient is right. Measured:
    the relative error is 3e-5 at h = 1e-5 and 3e-7 at h = 1e-6 (O(h^2)
    truncation); float64 round-off, ~1e-16 / h relative to the loss, is smaller.
    """
    net = MLPSpec(8, (6,), activation="tanh")  # depth 1 keeps compilation short
    rule = make_rule("learned", net, config="small", lr=0.05, activation="swish")
    with jax.enable_x64(True):
        # numpy on the host for everything around the compiled function: eager
        # JAX ops would each compile for every new shape.
        f64 = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)  # noqa: E731
        rng = np.random.default_rng(11)
        meta = f64(_random_meta(rule, 11))
        params = f64(_random_params(net, 12))
        inner0 = InnerState(params, f64(_init_state(rule)(meta, params)),
                            jnp.zeros((), jnp.int32), jax.random.key(12))
        xs = jnp.asarray(rng.uniform(size=(3, 8, 8)))
        labels = np.arange(20) % 2
        labelled = jnp.asarray(rng.uniform(size=(20, 8)) + 0.5 * labels[:, None]
                               * np.linspace(-1, 1, 8))  # classes are separable
        y = np.eye(2)[labels] - 0.5  # = objectives.centred_one_hot(labels, 2)

        def meta_loss(m):
            def body(state, x):
                state, _ = inner_step(rule, m, state, x)
                f = features(state.params, labelled, net)
                return state, ridge_meta_loss(f[:10], y[:10], f[10:], y[10:])[0]
            return jnp.sum(jax.lax.scan(body, inner0, xs)[1])

        value_and_grad = jax.jit(jax.value_and_grad(meta_loss), compiler_options=FAST_COMPILE)
        _, grad = value_and_grad(meta)
        u = jax.tree.map(lambda a: rng.normal(size=a.shape), meta)
        h = 1e-6
        shift = lambda s: jax.tree.map(lambda a, b: a + s * h * b, meta, u)  # noqa: E731
        fd = (value_and_grad(shift(1.0))[0] - value_and_grad(shift(-1.0))[0]) / (2 * h)
        analytic = sum(np.vdot(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(u)))
        assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))
        assert abs(float(fd)) > 1e-4
        assert float(analytic) == pytest.approx(float(fd), rel=1e-5)


def test_step_keeps_structure_shapes_and_dtypes():
    for rule in [RULE, VARIANT]:
        meta, params, state = _setup(rule)
        new, new_state, metrics = _step(rule, meta, params, state, _x(4))
        assert _signature(new) == _signature(params)
        assert _signature(new_state) == _signature(state)
        assert all(m.shape == () and m.dtype == jnp.float32 for m in metrics.values())
        assert {f"dw_abs/{i}" for i in range(NET.depth)} <= set(metrics)
        assert _signature(jax.eval_shape(rule.init_meta_params, jax.random.key(1))) == \
            _signature(meta)


def test_config_docs_every_field():
    doc = LearnedRuleConfig.__doc__
    for f in dataclasses.fields(LearnedRuleConfig):
        assert f"{f.name}:" in doc, f.name
    assert math.isclose(CONFIGS["small"].lr, 1e-4)
