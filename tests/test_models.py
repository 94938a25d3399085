"""Numbers of the base network (metaunsup.models): batch norm, activations, shapes, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.models import (
    ACTIVATIONS,
    MLPSpec,
    bn_stats,
    features,
    forward,
    get_activation,
    init_params,
    parse_widths,
)
from metaunsup.types import LayerParams

# Jitted once per spec: much cheaper than eager op-by-op compilation for new shapes.
forward_jit = jax.jit(forward, static_argnames="spec")


def _net(widths=(16, 8, 4), n_in=10, activation="relu", bias=0.0):
    spec = MLPSpec(n_in=n_in, widths=widths, activation=activation)
    params = init_params(jax.random.PRNGKey(0), spec)
    if bias:
        params = tuple(p._replace(b=jnp.full_like(p.b, bias)
                              + jnp.arange(p.b.shape[0], dtype=jnp.float32) * 0.1)
                       for p in params)
    return spec, params


def _x(n=64, d=10, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(n, d)), jnp.float32)


def test_batch_norm_columns_have_zero_mean_unit_variance_before_bias():
    spec, params = _net(bias=0.7)
    acts = forward_jit(params, _x(), spec=spec)
    for layer, inp, pre in zip(params, acts.inputs, acts.pre):
        h = np.asarray(pre - layer.b, np.float64)  # BN(x @ W), bias removed
        np.testing.assert_allclose(h.mean(0), 0.0, atol=1e-5)
        # The normalised variance is var / (var + eps): 1 up to the epsilon.
        raw_var = np.var(np.asarray(inp, np.float64) @ np.asarray(layer.w, np.float64), axis=0)
        np.testing.assert_allclose(h.var(0), raw_var / (raw_var + spec.bn_eps), rtol=1e-4)
        np.testing.assert_allclose(h.var(0), 1.0, atol=1e-2)


def test_batch_norm_matches_numpy_formula():
    spec, params = _net(widths=(5,), bias=0.3)
    x = _x()
    h = np.asarray(x, np.float64) @ np.asarray(params[0].w, np.float64)
    ref = (h - h.mean(0)) / np.sqrt(h.var(0) + spec.bn_eps) + np.asarray(params[0].b)
    np.testing.assert_allclose(forward(params, x, spec).pre[0], ref, rtol=1e-4, atol=1e-5)


def test_fixed_stats_of_the_same_batch_equal_batch_mode():
    spec, params = _net(bias=0.2)
    x = _x()
    batch = forward(params, x, spec)
    fixed = forward(params, x, spec, stats=bn_stats(params, x, spec))
    for a, b in zip(batch.post + batch.pre, fixed.post + fixed.pre):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_fixed_stats_make_features_independent_of_batch_companions():
    spec, params = _net()
    x = _x()
    stats = bn_stats(params, x, spec)
    whole = features(params, x, spec, stats)
    part = features(params, x[:5], spec, stats)
    np.testing.assert_allclose(part, whole[:5], rtol=1e-6, atol=1e-6)


def test_batch_mode_is_permutation_equivariant_over_examples():
    spec, params = _net()
    x = _x()
    perm = np.random.default_rng(1).permutation(x.shape[0])
    np.testing.assert_allclose(features(params, x[perm], spec), features(params, x, spec)[perm],
                               rtol=1e-5, atol=1e-5)


POINTS = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)
EXPECTED = {
    "relu": [0.0, 0.0, 0.0, 0.5, 2.0],
    "leaky_relu": [-0.02, -0.005, 0.0, 0.5, 2.0],
    "step": [0.0, 0.0, 0.0, 1.0, 1.0],  # Heaviside with H(0) = 0
    "identity": list(POINTS),
    "tanh": list(np.tanh(POINTS)),
    "sigmoid": list(1 / (1 + np.exp(-POINTS))),
    "swish": list(POINTS / (1 + np.exp(-POINTS))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values(name):
    assert name in EXPECTED, f"add expected values for new activation {name!r}"
    got = np.asarray(get_activation(name)(jnp.asarray(POINTS)))
    np.testing.assert_allclose(got, EXPECTED[name], rtol=1e-6, atol=1e-7)


def test_unknown_activation_is_a_user_error():
    with pytest.raises(UserError, match="unknown activation"):
        get_activation("gelu6")
    with pytest.raises(UserError):
        MLPSpec(n_in=3, activation="nope")


@pytest.mark.parametrize("widths", [(1,), (3, 1), (7, 5, 2), (2, 9, 2, 9, 2, 9)])
def test_shapes_for_any_widths(widths):
    spec, params = _net(widths=widths, n_in=6)
    dims = (6,) + widths
    assert len(params) == len(widths)
    for l, p in enumerate(params):
        assert isinstance(p, LayerParams)
        assert p.w.shape == p.v.shape == (dims[l], dims[l + 1])
        assert p.b.shape == (dims[l + 1],)
        assert p.w.dtype == p.v.dtype == p.b.dtype == jnp.float32
    acts = forward_jit(params, _x(n=11, d=6), spec=spec)
    for l in range(len(widths)):
        assert acts.inputs[l].shape == (11, dims[l])
        assert acts.pre[l].shape == acts.post[l].shape == (11, dims[l + 1])
    assert acts.post[-1].shape == (11, widths[-1])
    assert spec.layer_shapes == tuple((dims[i], dims[i + 1]) for i in range(len(widths)))


def test_init_scale_and_independence_of_w_and_v():
    spec = MLPSpec(n_in=400, widths=(300,), init_scale=2.0)
    p = init_params(jax.random.PRNGKey(3), spec)[0]
    expected_std = 2.0 / np.sqrt(400)
    # 120k samples: the sample std is within 1% of the truth with overwhelming probability.
    np.testing.assert_allclose(np.std(p.w), expected_std, rtol=0.01)
    np.testing.assert_allclose(np.std(p.v), expected_std, rtol=0.01)
    assert abs(np.corrcoef(np.ravel(p.w), np.ravel(p.v))[0, 1]) < 0.02
    np.testing.assert_array_equal(p.b, 0.0)


@pytest.mark.parametrize("widths", [(), (0,), (4, -1), (2.5,), (True, 3)])
def test_bad_widths_raise_user_error(widths):
    with pytest.raises(UserError):
        MLPSpec(n_in=4, widths=widths)


@pytest.mark.parametrize("text", ["", "a,b", "128,0", "-3", "4,,x"])
def test_parse_widths_rejects_bad_text(text):
    with pytest.raises(UserError):
        parse_widths(text)


def test_parse_widths_accepts_spaces():
    assert parse_widths(" 128, 64 ,32") == (128, 64, 32)


@pytest.mark.parametrize("kwargs", [{"n_in": 0}, {"n_in": 3, "bn_eps": 0.0}])
def test_bad_spec_fields_raise_user_error(kwargs):
    with pytest.raises(UserError):
        MLPSpec(**kwargs)
