"""Numbers of the few-shot probes and their statistics (metaunsup.eval)."""
import math
import types

import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.eval import (
    ProbeConfig,
    evaluate,
    evaluate_features,
    few_shot_indices,
    logreg_probe,
    mean_ci95,
    register_method,
    ridge_probe,
    t_quantile_975,
)
from metaunsup.baselines import registry as methods_module
from metaunsup.models import MLPSpec


def _blobs(n_per_class, num_classes=4, dim=6, spread=0.3, seed=0):
    """Gaussian blobs around well-separated class centres."""
    rng = np.random.default_rng(seed)
    centres = 5.0 * rng.normal(size=(num_classes, dim))
    y = np.repeat(np.arange(num_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(y.size, dim))
    perm = rng.permutation(y.size)
    return x[perm].astype(np.float32), y[perm].astype(np.int32)


def _noisy(seed=0):
    x, y = _blobs(260, spread=6.0, seed=seed)  # overlapping classes; split 240 / 800
    return x[:240], y[:240], x[240:], y[240:]


# ----------------------------------------------------------------------------- sampling

def test_few_shot_indices_take_exactly_k_distinct_per_class():
    _, y = _blobs(20, num_classes=5)
    idx = few_shot_indices(y, 7, seed=3)
    assert idx.size == len(set(idx.tolist())) == 35
    assert np.bincount(y[idx], minlength=5).tolist() == [7] * 5


def test_few_shot_indices_are_seeded():
    _, y = _blobs(20)
    np.testing.assert_array_equal(few_shot_indices(y, 5, seed=1), few_shot_indices(y, 5, seed=1))
    assert not np.array_equal(few_shot_indices(y, 5, seed=1), few_shot_indices(y, 5, seed=2))


def test_shots_larger_than_a_class_is_a_user_error():
    y = np.array([0] * 10 + [1] * 3)
    with pytest.raises(UserError, match="class 1 has only 3"):
        few_shot_indices(y, 4, seed=0)
    with pytest.raises(UserError, match="shots must be a positive integer"):
        few_shot_indices(y, 0, seed=0)
    with pytest.raises(UserError, match="at least 2 classes"):
        few_shot_indices(np.zeros(5, int), 1, seed=0)


# ----------------------------------------------------------------------------- probes

@pytest.mark.parametrize("probe", [logreg_probe, ridge_probe])
def test_probe_is_near_perfect_on_separable_data(probe):
    xtr, ytr = _blobs(30)
    xte, yte = _blobs(100, seed=0)  # same centres (same seed), fresh noise below
    xte = xte + np.random.default_rng(9).normal(scale=0.3, size=xte.shape).astype(np.float32)
    acc = probe(xtr, ytr, xte, yte, shots=5, seed=0, config=ProbeConfig(max_test=None))
    assert acc >= 0.99


@pytest.mark.parametrize("probe", [logreg_probe, ridge_probe])
def test_probe_is_deterministic_under_a_seed_and_varies_across_seeds(probe):
    xtr, ytr, xte, yte = _noisy()
    runs = {s: probe(xtr, ytr, xte, yte, shots=3, seed=s) for s in range(4)}
    assert probe(xtr, ytr, xte, yte, shots=3, seed=2) == runs[2]
    assert len(set(runs.values())) > 1
    want = {"logreg_probe": [0.60875, 0.54375, 0.37625, 0.60375],  # seeded 3-shot probes
            "ridge_probe": [0.50375, 0.46375, 0.35875, 0.505]}[probe.__name__]
    assert [runs[s] for s in range(4)] == pytest.approx(want, abs=1e-9)


def test_logreg_probe_is_invariant_to_per_feature_affine_maps():
    # Features are standardised with support statistics, so a f + c (a > 0) changes nothing.
    xtr, ytr, xte, yte = _noisy(seed=1)
    scale = np.linspace(0.1, 50.0, xtr.shape[1])
    shift = np.linspace(-3.0, 7.0, xtr.shape[1])
    base = logreg_probe(xtr, ytr, xte, yte, shots=4, seed=5)
    moved = logreg_probe(xtr * scale + shift, ytr, xte * scale + shift, yte, shots=4, seed=5)
    assert moved == base


def test_unstandardised_logreg_probe_is_plain_sklearn_on_the_support_set():
    from sklearn.linear_model import LogisticRegression

    xtr, ytr, xte, yte = _noisy(seed=2)
    idx = few_shot_indices(ytr, 4, seed=6)
    clf = LogisticRegression(C=0.5, max_iter=1000).fit(xtr[idx].astype(np.float64), ytr[idx])
    expect = np.mean(clf.predict(xte.astype(np.float64)) == yte)
    config = ProbeConfig(C=0.5, standardize=False, max_test=None)
    assert logreg_probe(xtr, ytr, xte, yte, shots=4, seed=6, config=config) == expect


def test_max_test_scores_a_seeded_subset():
    xtr, ytr, xte, yte = _noisy()
    acc = logreg_probe(xtr, ytr, xte, yte, shots=3, seed=0, config=ProbeConfig(max_test=7))
    assert round(acc * 7) == pytest.approx(acc * 7, abs=1e-9)  # a multiple of 1/7
    full = ProbeConfig(max_test=None)
    big = ProbeConfig(max_test=10_000)  # larger than the split: the whole split
    assert logreg_probe(xtr, ytr, xte, yte, shots=3, seed=0, config=full) == \
        logreg_probe(xtr, ytr, xte, yte, shots=3, seed=0, config=big)


def test_constant_features_do_not_blow_up():
    xtr, ytr, xte, yte = _noisy()
    xtr = np.hstack([xtr, np.zeros((xtr.shape[0], 1), np.float32)])  # dead unit
    xte = np.hstack([xte, np.ones((xte.shape[0], 1), np.float32)])
    assert 0.25 < logreg_probe(xtr, ytr, xte, yte, shots=3, seed=0) <= 1.0


def test_probe_rejects_nan_features_and_bad_config():
    xtr, ytr, xte, yte = _noisy()
    xtr[0, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        logreg_probe(xtr, ytr, xte, yte, shots=3, seed=0)
    with pytest.raises(UserError):
        ProbeConfig(max_test=0)
    with pytest.raises(UserError):
        ProbeConfig(C=0.0)


# ----------------------------------------------------------------------------- statistics

def test_t_interval_by_hand():
    # values 1..5: mean 3, sample sd sqrt(2.5), t_{0.975, 4} = 2.776445105...
    mean, h = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert h == pytest.approx(2.7764451052 * math.sqrt(2.5) / math.sqrt(5.0), rel=1e-9)
    assert h == pytest.approx(1.963243, abs=1e-6)


def test_t_interval_edge_cases():
    assert math.isnan(mean_ci95([42.0])[1])
    assert mean_ci95([2.0, 2.0, 2.0]) == (2.0, 0.0)
    with pytest.raises(UserError):
        mean_ci95([])


@pytest.mark.parametrize("df,table", [(1, 12.7062), (2, 4.3027), (9, 2.2622), (30, 2.0423),
                                      (10_000, 1.9602)])
def test_t_quantile_matches_the_printed_tables(df, table):
    assert t_quantile_975(df) == pytest.approx(table, abs=1e-4)


# ----------------------------------------------------------------------------- evaluate

def test_evaluate_features_calls_the_factory_once_per_seed():
    xtr, ytr, xte, yte = _noisy()
    calls = []

    def make(seed):
        calls.append(seed)
        return xtr, xte

    res = evaluate_features(make, ytr, yte, shots=3, seeds=[4, 7, 9])
    assert calls == [4, 7, 9]
    assert res.seeds == (4, 7, 9)
    assert len(res.accuracies) == 3
    fixed = evaluate_features((xtr, xte), ytr, yte, shots=3, seeds=[4, 7, 9])
    assert fixed.accuracies == res.accuracies  # percentages, same seeds, same features
    assert fixed.mean == pytest.approx(np.mean(res.accuracies))
    assert fixed.ci95 == pytest.approx(mean_ci95(res.accuracies)[1])
    assert list(res.accuracies) == pytest.approx(
        [100 * logreg_probe(xtr, ytr, xte, yte, shots=3, seed=s) for s in (4, 7, 9)], abs=1e-9)
    assert fixed.to_dict()["seeds"] == [4, 7, 9]


def test_evaluate_features_rejects_repeated_seeds():
    xtr, ytr, xte, yte = _noisy()
    with pytest.raises(UserError, match="distinct"):
        evaluate_features((xtr, xte), ytr, yte, shots=3, seeds=[1, 1])


@pytest.mark.parametrize("stochastic", [True, False])
def test_evaluate_runs_stochastic_methods_once_per_seed(stochastic):
    xtr, ytr, xte, yte = _noisy()
    dataset = types.SimpleNamespace(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    seen = []

    def method(ds, *, spec, seed, options):
        seen.append((seed, options["steps"], spec.widths))
        return ds.x_train, ds.x_test

    register_method("_test_counting", method, stochastic=stochastic)
    try:
        res = evaluate("_test_counting", dataset, spec=MLPSpec(n_in=6, widths=(4, 2)), shots=3,
                       seeds=[3, 5], options={"steps": 11})
    finally:
        methods_module._METHODS.pop("_test_counting")
    expected = [(3, 11, (4, 2)), (5, 11, (4, 2))] if stochastic else [(3, 11, (4, 2))]
    assert seen == expected
    assert res.seeds == (3, 5)


def test_evaluate_checks_shots_before_running_the_method():
    xtr, ytr, xte, yte = _noisy()
    dataset = types.SimpleNamespace(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)

    def method(ds, *, spec, seed, options):
        raise AssertionError("must not run")

    register_method("_test_never", method)
    try:
        with pytest.raises(UserError, match="shots=1000"):
            evaluate("_test_never", dataset, spec=MLPSpec(n_in=6, widths=(2,)), shots=1000,
                     seeds=[0])
    finally:
        methods_module._METHODS.pop("_test_never")
