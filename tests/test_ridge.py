"""Numbers of the ridge meta-objective (metaunsup.objectives.ridge)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from metaunsup.objectives import (
    RidgeConfig,
    centred_one_hot,
    cosine_distance,
    ridge_fit,
    ridge_meta_loss,
    ridge_predict,
)


def _lstsq_ridge(f, y, lam):
    """Solves min |y - f w - 1 b|^2 + lam |w|^2 (b unpenalised) as one least-squares
    problem on the augmented system [[f, 1], [sqrt(lam) I, 0]] [w; b] = [y; 0]."""
    n, d = f.shape
    top = np.hstack([f, np.ones((n, 1))])
    bottom = np.hstack([np.sqrt(lam) * np.eye(d), np.zeros((d, 1))])
    a = np.vstack([top, bottom])
    rhs = np.vstack([y, np.zeros((d, y.shape[1]))])
    sol = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return sol[:d], sol[d]


@pytest.mark.parametrize("n,d", [(40, 6), (7, 25)], ids=["primal n>f", "dual n<f"])
@pytest.mark.parametrize("lam", [0.1, 3.0])
def test_ridge_fit_matches_lstsq(n, d, lam):
    rng = np.random.default_rng(0)
    f = rng.normal(size=(n, d)) + 0.5
    y = rng.normal(size=(n, 3))
    with jax.enable_x64(True):
        w, b = ridge_fit(jnp.asarray(f), jnp.asarray(y), lam)
        w, b = np.asarray(w), np.asarray(b)
    w_ref, b_ref = _lstsq_ridge(f, y, lam)
    np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(b, b_ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("n,d", [(30, 4), (5, 12)])
def test_bias_is_unpenalised(n, d):
    # Adding a constant c to every target row shifts b by c and leaves w unchanged.
    rng = np.random.default_rng(1)
    f, y = rng.normal(size=(n, d)), rng.normal(size=(n, 2))
    c = np.array([5.0, -2.0])
    with jax.enable_x64(True):
        w0, b0 = ridge_fit(jnp.asarray(f), jnp.asarray(y), 0.5)
        w1, b1 = ridge_fit(jnp.asarray(f), jnp.asarray(y + c), 0.5)
    np.testing.assert_allclose(w1, w0, atol=1e-12)
    np.testing.assert_allclose(b1, np.asarray(b0) + c, atol=1e-12)


def test_primal_and_dual_branches_agree():
    # Same data through both branches: n > f uses the f x f system, n < f the n x n one.
    rng = np.random.default_rng(2)
    f, y = rng.normal(size=(10, 10)), rng.normal(size=(10, 3))
    with jax.enable_x64(True):
        w_sq, b_sq = ridge_fit(jnp.asarray(f), jnp.asarray(y), 0.3)            # f <= n: primal
        w_du, b_du = ridge_fit(jnp.asarray(f[:, :9]), jnp.asarray(y), 0.3)     # primal
        w_wide, b_wide = ridge_fit(jnp.asarray(f[:9]), jnp.asarray(y[:9]), 0.3)  # dual
    for (w, b), (ff, yy) in [((w_sq, b_sq), (f, y)), ((w_du, b_du), (f[:, :9], y)),
                             ((w_wide, b_wide), (f[:9], y[:9]))]:
        w_ref, b_ref = _lstsq_ridge(ff, yy, 0.3)
        np.testing.assert_allclose(w, w_ref, atol=1e-10)
        np.testing.assert_allclose(b, b_ref, atol=1e-10)


@pytest.mark.parametrize("feature_norm,n,d", [("l2", 12, 4), ("l2", 6, 9),
                                              ("standardize", 6, 9), ("none", 12, 4)])
def test_meta_loss_gradients_match_finite_differences(feature_norm, n, d):
    rng = np.random.default_rng(3)
    config = RidgeConfig(lam=0.1, feature_norm=feature_norm)
    with jax.enable_x64(True):
        fs = jnp.asarray(rng.normal(size=(n, d)))
        fq = jnp.asarray(rng.normal(size=(8, d)))
        ys = centred_one_hot(jnp.asarray(np.arange(n) % 3), 3)
        yq = centred_one_hot(jnp.asarray(np.arange(8) % 3), 3)

        def loss(f_support, f_query):
            return ridge_meta_loss(f_support, ys, f_query, yq, config)[0]

        check_grads(loss, (fs, fq), order=1, modes=("fwd", "rev"), eps=1e-5, atol=1e-6,
                    rtol=1e-6)


def test_meta_loss_second_order_gradients():
    # Second order (reverse over reverse) on the dual branch with l2 features:
    # meta-gradients differentiate through the probe, curvature must be right too.
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        fs = jnp.asarray(rng.normal(size=(6, 9)))
        fq = jnp.asarray(rng.normal(size=(4, 9)))
        ys = centred_one_hot(jnp.asarray(np.arange(6) % 2), 2)
        yq = centred_one_hot(jnp.asarray(np.arange(4) % 2), 2)

        def loss(f_support):
            return ridge_meta_loss(f_support, ys, fq, yq)[0]

        check_grads(loss, (fs,), order=2, modes=("rev",), atol=1e-5, rtol=1e-5)


def test_cosine_distance_closed_forms():
    pred = jnp.array([[1.0, 0.0], [2.0, 0.0], [-3.0, 0.0], [1.0, 1.0]])
    target = jnp.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    # Per row: orthogonal -> 1, parallel -> 0, opposite -> 2, 45 degrees -> 1 - 1/sqrt(2).
    expect = np.mean([1.0, 0.0, 2.0, 1.0 - 1.0 / np.sqrt(2.0)])
    np.testing.assert_allclose(cosine_distance(pred, target, eps=0.0), expect, rtol=1e-6)
    # Scale invariance in each argument.
    np.testing.assert_allclose(cosine_distance(7.0 * pred, 0.5 * target, eps=0.0), expect,
                               rtol=1e-6)


def test_centred_one_hot():
    y = np.asarray(centred_one_hot(jnp.array([0, 2]), 4))
    np.testing.assert_allclose(y, [[0.75, -0.25, -0.25, -0.25], [-0.25, -0.25, 0.75, -0.25]])


def test_meta_loss_accuracy_is_argmax_of_prediction():
    rng = np.random.default_rng(4)
    fs, fq = jnp.asarray(rng.normal(size=(9, 5))), jnp.asarray(rng.normal(size=(20, 5)))
    ys_lab, yq_lab = np.arange(9) % 3, rng.integers(0, 3, size=20)
    ys, yq = centred_one_hot(jnp.asarray(ys_lab), 3), centred_one_hot(jnp.asarray(yq_lab), 3)
    loss, acc = ridge_meta_loss(fs, ys, fq, yq)
    pred = np.asarray(ridge_predict(fs, ys, fq))
    np.testing.assert_allclose(acc, np.mean(pred.argmax(-1) == yq_lab), atol=1e-7)
    np.testing.assert_allclose(loss, cosine_distance(jnp.asarray(pred), yq), rtol=1e-6)
