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


@pytest.mark.parametrize("n,d", [(40, 6), (10, 10), (7, 25)],
                         ids=["primal n>f", "primal n=f", "dual n<f"])
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


# Every configuration of the loss whose gradients must be right: each feature
# normalisation on the primal branch (n > f) and l2 on the dual branch (n < f).
GRAD_CASES = (("l2", 12, 4), ("standardize", 12, 4), ("none", 12, 4), ("l2", 6, 9))


def test_meta_loss_gradients_match_finite_differences():
    # One jitted function sums the cases, each with its own support/query inputs, so a
    # single check_grads call (a few compilations instead of a few per case) checks the
    # derivatives with respect to every input of every case, in both modes.
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        targets = {n: centred_one_hot(jnp.asarray(np.arange(n) % 3), 3) for n in (12, 6, 8)}
        args = []
        for _, n, d in GRAD_CASES:
            args += [jnp.asarray(rng.normal(size=(n, d))), jnp.asarray(rng.normal(size=(8, d)))]

        @jax.jit
        def total(*feats):
            out = 0.0
            for i, (norm, n, _) in enumerate(GRAD_CASES):
                config = RidgeConfig(lam=0.1, feature_norm=norm)
                loss, _ = ridge_meta_loss(feats[2 * i], targets[n], feats[2 * i + 1],
                                          targets[8], config)
                out = out + (i + 1.0) * loss
            return out

        check_grads(total, tuple(args), order=1, modes=("fwd", "rev"), eps=1e-5, atol=1e-6,
                    rtol=1e-6)


def test_meta_loss_hessian_vector_products_match_finite_differences():
    # Meta-gradients differentiate through the probe, so its curvature must be right
    # too: d/de grad(f)(x + e v) at e = 0 equals the forward-over-reverse H v.
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        fq = jnp.asarray(rng.normal(size=(8, 4)))
        ys = centred_one_hot(jnp.asarray(np.arange(12) % 3), 3)
        yq = centred_one_hot(jnp.asarray(np.arange(8) % 3), 3)

        def loss(f_support):
            return ridge_meta_loss(f_support, ys, fq, yq)[0]

        grad = jax.jit(jax.grad(loss))
        hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(loss), (x,), (v,))[1])
        x = jnp.asarray(rng.normal(size=(12, 4)))
        for _ in range(2):
            v = jnp.asarray(rng.normal(size=(12, 4)))
            eps = 1e-5
            fd = (grad(x + eps * v) - grad(x - eps * v)) / (2 * eps)
            np.testing.assert_allclose(hvp(x, v), fd, rtol=1e-6, atol=1e-7)


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
