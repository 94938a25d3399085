"""Numbers of the baseline methods (metaunsup.baselines) and the network feature map."""
import types

import jax
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.eval import compute_features, get_method, method_names
from metaunsup.eval.features import map_features, network_features, reference_batch
from metaunsup.models import MLPSpec, bn_stats, features, init_params


def _dataset(n_train=300, n_test=50, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    # Low-rank structure plus noise, so PCA has clear directions.
    basis = rng.normal(size=(3, dim))
    def draw(n):
        return (rng.normal(size=(n, 3)) * [3.0, 2.0, 1.0]) @ basis + 0.1 * rng.normal(size=(n, dim))
    x_train, x_test = draw(n_train).astype(np.float32), draw(n_test).astype(np.float32)
    return types.SimpleNamespace(
        x_train=x_train, y_train=rng.integers(0, 3, n_train).astype(np.int32),
        x_test=x_test, y_test=rng.integers(0, 3, n_test).astype(np.int32), num_classes=3)


SPEC = MLPSpec(n_in=12, widths=(16, 8, 4))


def test_builtin_methods_are_registered_with_their_randomness():
    assert {"raw", "pca", "random"} <= set(method_names())
    assert not get_method("raw").stochastic
    assert not get_method("pca").stochastic
    assert get_method("random").stochastic
    with pytest.raises(UserError, match="unknown method 'nope'"):
        get_method("nope")


def test_raw_returns_the_inputs():
    ds = _dataset()
    tr, te = compute_features("raw", ds, spec=SPEC, seed=0)
    np.testing.assert_array_equal(tr, ds.x_train)
    np.testing.assert_array_equal(te, ds.x_test)


def test_pca_projects_on_top_principal_directions():
    ds = _dataset()
    tr, te = compute_features("pca", ds, spec=SPEC, seed=0)
    assert tr.shape == (300, 4) and te.shape == (50, 4)
    x = ds.x_train.astype(np.float64)
    mean = x.mean(0)
    _, sing, vt = np.linalg.svd(x - mean, full_matrices=False)
    ref_tr = (x - mean) @ vt[:4].T
    ref_te = (ds.x_test - mean) @ vt[:4].T
    signs = np.sign(np.sum(tr * ref_tr, axis=0))  # components are defined up to sign
    np.testing.assert_allclose(tr * signs, ref_tr, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(te * signs, ref_te, rtol=1e-3, atol=1e-3)
    # Component variances are the squared singular values / (n - 1), in decreasing order.
    np.testing.assert_allclose(tr.var(0, ddof=1), sing[:4] ** 2 / 299, rtol=1e-3)


def test_pca_whiten_and_component_cap():
    ds = _dataset()
    tr, _ = compute_features("pca", ds, spec=SPEC, seed=0, options={"whiten": True})
    np.testing.assert_allclose(tr.var(0, ddof=1), 1.0, rtol=1e-3)
    wide = MLPSpec(n_in=12, widths=(50,))  # more components than input dimensions
    tr, te = compute_features("pca", ds, spec=wide, seed=0)
    assert tr.shape == (300, 12) and te.shape == (50, 12)


def test_random_network_features_are_seeded():
    ds = _dataset()
    a = compute_features("random", ds, spec=SPEC, seed=1)
    b = compute_features("random", ds, spec=SPEC, seed=1)
    c = compute_features("random", ds, spec=SPEC, seed=2)
    assert a[0].shape == (300, 4) and a[1].shape == (50, 4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])


def test_random_features_equal_the_network_with_reference_stats():
    ds = _dataset()
    seed = 3
    tr, te = compute_features("random", ds, spec=SPEC, seed=seed,
                              options={"reference_size": 64})
    params = init_params(jax.random.PRNGKey(seed), SPEC)
    ref = reference_batch(ds.x_train, seed=seed, size=64)
    assert ref.shape == (64, 12)
    stats = bn_stats(params, ref, SPEC)
    np.testing.assert_allclose(tr, features(params, ds.x_train, SPEC, stats), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(te, features(params, ds.x_test, SPEC, stats), rtol=1e-5,
                               atol=1e-5)


def test_reference_batch_covering_the_split_gives_batch_mode_features():
    ds = _dataset(n_train=100)
    params = init_params(jax.random.PRNGKey(0), SPEC)
    tr, _ = network_features(params, SPEC, ds.x_train, ds.x_test, seed=0, reference_size=500)
    np.testing.assert_allclose(tr, features(params, ds.x_train, SPEC), rtol=1e-5, atol=1e-5)


def test_chunking_does_not_change_features():
    ds = _dataset()
    params = init_params(jax.random.PRNGKey(0), SPEC)
    stats = bn_stats(params, ds.x_train[:128], SPEC)
    whole = map_features(params, ds.x_train, SPEC, stats, chunk_size=4096)
    chunked = map_features(params, ds.x_train, SPEC, stats, chunk_size=64)  # 300 = 4*64 + 44
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)
