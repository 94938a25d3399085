"""Numbers of the baseline methods (metaunsup.baselines) and the network feature map."""
import types

import jax
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.eval import compute_features, get_method, method_names
from metaunsup.models.featurize import (FeatureConfig, map_features, network_features,
                                       reference_batch)
from metaunsup.inner.unroll import initial_params
from metaunsup.models import MLPSpec, bn_stats, features, init_params
from metaunsup.streams import method_keys


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
    params = initial_params(method_keys(seed)[0], SPEC)  # the trained methods' start
    ref = reference_batch(ds.x_train, seed=seed, size=64)
    assert ref.shape == (64, 12)
    stats = bn_stats(params, ref, SPEC)
    np.testing.assert_allclose(tr, features(params, ds.x_train, SPEC, stats), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(te, features(params, ds.x_test, SPEC, stats), rtol=1e-5,
                               atol=1e-5)


def test_random_is_the_network_every_trained_method_starts_from():
    """Paired: the rule method with the rule that never learns gives random's features."""
    ds = _dataset()
    for seed in (0, 5):
        rand = compute_features("random", ds, spec=SPEC, seed=seed)
        none = compute_features("rule", ds, spec=SPEC, seed=seed,
                                options={"rule": "none", "steps": 3, "batch_size": 16})
        np.testing.assert_array_equal(rand[0], none[0])
        np.testing.assert_array_equal(rand[1], none[1])


def test_reference_batch_covering_the_split_gives_batch_mode_features():
    ds = _dataset(n_train=100)
    params = init_params(jax.random.PRNGKey(0), SPEC)
    tr, _ = network_features(params, SPEC, ds.x_train, ds.x_test, seed=0,
                             config=FeatureConfig(reference_size=500))
    np.testing.assert_allclose(tr, features(params, ds.x_train, SPEC), rtol=1e-5, atol=1e-5)


def test_chunking_does_not_change_features():
    ds = _dataset()
    params = init_params(jax.random.PRNGKey(0), SPEC)
    stats = bn_stats(params, ds.x_train[:128], SPEC)
    whole = map_features(params, ds.x_train, SPEC, stats, chunk_size=4096)
    chunked = map_features(params, ds.x_train, SPEC, stats, chunk_size=64)  # 300 = 4*64 + 44
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- trainable methods

def _labelled(n_train=400, n_test=120, dim=16, classes=4, seed=1):
    """Class-dependent Gaussian blobs in [0, 1]-ish range, so learning has something to find."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, size=(classes, dim))

    def draw(n):
        y = rng.integers(0, classes, n).astype(np.int32)
        return (centres[y] + 0.1 * rng.normal(size=(n, dim))).astype(np.float32), y

    (x_train, y_train), (x_test, y_test) = draw(n_train), draw(n_test)
    return types.SimpleNamespace(x_train=x_train, y_train=y_train, x_test=x_test,
                                 y_test=y_test, num_classes=classes, name="blobs")


TRAINABLE = ("rule", "autoencoder", "vae", "supervised")
NET = MLPSpec(n_in=16, widths=(24, 8))


def test_trainable_methods_are_registered_with_a_train_function():
    for name in TRAINABLE:
        assert get_method(name).stochastic and get_method(name).train is not None
    for name in ("raw", "pca", "random"):
        assert get_method(name).train is None


@pytest.mark.slow  # trains every method (test_random_is_the_network_... pins the pairing in the default suite)
def test_every_trainable_method_starts_from_the_same_network():
    """Step 0 of each method's curve probes one and the same seeded network."""
    from metaunsup.eval import ProbeConfig
    from metaunsup.eval.compare import method_curve

    ds = _labelled()
    starts, ends = {}, {}
    for name in TRAINABLE:
        curve = method_curve(name, ds, spec=NET, shots=5, seeds=[3], every=10,
                             config=ProbeConfig(max_test=None), options={"steps": 20})
        assert curve.steps == [0, 10, 20]
        starts[name], ends[name] = curve.accuracies[0][0], curve.accuracies[0][-1]
    assert len(set(starts.values())) == 1, starts
    assert len(set(ends.values())) > 1, ends  # and training changes them differently


def test_curve_end_equals_evaluate():
    """The demo's curves and the evaluate command report the same number."""
    from metaunsup.eval import ProbeConfig, evaluate
    from metaunsup.eval.compare import method_curve

    ds = _labelled()
    for name in ("vae", "supervised"):
        curve = method_curve(name, ds, spec=NET, shots=5, seeds=[0, 1], every=15,
                             config=ProbeConfig(max_test=50), options={"steps": 30})
        res = evaluate(name, ds, spec=NET, shots=5, seeds=[0, 1],
                       config=ProbeConfig(max_test=50), options={"steps": 30})
        np.testing.assert_allclose([a[-1] for a in curve.accuracies], res.accuracies)


def test_supervised_trains_on_the_probe_support_set_only():
    """Changing every training example outside the probe's support set changes nothing."""
    from metaunsup.baselines.supervised import train_supervised
    from metaunsup.eval.probes import few_shot_indices

    ds = _labelled()
    idx = few_shot_indices(ds.y_train, 5, 2)
    x2 = np.random.default_rng(0).uniform(size=ds.x_train.shape).astype(np.float32)
    x2[idx] = ds.x_train[idx]
    ds2 = types.SimpleNamespace(**{**vars(ds), "x_train": x2})
    opts = {"steps": 15, "shots": 5}
    a = train_supervised(ds, spec=NET, seed=2, options=opts).params
    b = train_supervised(ds2, spec=NET, seed=2, options=opts).params
    for la, lb in zip(a, b):
        np.testing.assert_array_equal(la.w, lb.w)
    with pytest.raises(UserError, match="shots"):
        compute_features("supervised", ds, spec=NET, seed=2, options={"steps": 5})


def test_supervised_fits_its_support_set():
    from metaunsup.baselines.supervised import train_supervised

    ds = _labelled()
    res = train_supervised(ds, spec=NET, seed=0, options={"steps": 300, "shots": 5,
                                                          "lr": 1e-2})
    assert res.loss < 0.05


def test_negative_elbo_matches_a_numpy_reference_and_kl_closed_form():
    import jax.numpy as jnp

    from metaunsup.rules.vae import negative_elbo

    rng = np.random.default_rng(0)
    net = MLPSpec(n_in=5, widths=(3,))
    params = init_params(jax.random.key(0), net)
    x = rng.uniform(size=(7, 5)).astype(np.float32)
    noise = rng.normal(size=(7, 3)).astype(np.float32)
    heads = tuple(jnp.asarray(rng.normal(size=s) * 0.3, jnp.float32)
                  for s in ((3, 3), (3,), (3, 3), (3,)))
    dec = (jnp.asarray(rng.normal(size=(3, 5)), jnp.float32), jnp.zeros(5, jnp.float32))
    log_sigma = jnp.float32(-0.4)
    trainable = (tuple((p.w, p.b) for p in params), heads, dec, log_sigma)
    loss, kl = negative_elbo(trainable, tuple(p.v for p in params), jnp.asarray(x),
                             jnp.asarray(noise), net)
    f = np.asarray(features(params, jnp.asarray(x), net), np.float64)
    w_mu, b_mu, w_s, b_s = (np.asarray(h, np.float64) for h in heads)
    mu, lv = f @ w_mu + b_mu, f @ w_s + b_s
    z = mu + np.exp(lv / 2) * noise
    x_hat = z @ np.asarray(dec[0], np.float64)
    sigma2 = np.exp(2 * -0.4)
    nll = 0.5 * ((x - x_hat) ** 2).sum(1) / sigma2 + 5 * -0.4
    kl_ref = 0.5 * (mu ** 2 + np.exp(lv) - 1 - lv).sum(1)
    np.testing.assert_allclose(float(kl), kl_ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(loss), (nll + kl_ref).mean(), rtol=1e-5)


def test_vae_training_lowers_the_negative_elbo():
    from metaunsup.inner.train import train
    from metaunsup.rules import make_rule

    ds = _labelled()
    rule = make_rule("vae", NET, lr=3e-3)
    first = train(rule, {}, ds.x_train, steps=10, batch_size=64, key=jax.random.key(0))
    later = train(rule, {}, ds.x_train, steps=10, batch_size=64, key=jax.random.key(0),
                  inner_state=train(rule, {}, ds.x_train, steps=300, batch_size=64,
                                    key=jax.random.key(0)).inner_state)
    assert later.metrics["neg_elbo"] < first.metrics["neg_elbo"] - 1.0
    assert np.isfinite(later.metrics["kl"]) and later.metrics["kl"] >= 0
