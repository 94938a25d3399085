"""Hand-designed rules against closed forms: PCA fixed points and finite differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.inner import init_inner_state, unroll_jit
from metaunsup.models import MLPSpec, init_params
from metaunsup.rules import make_rule
from metaunsup.rules.hand import AutoencoderRule, hebbian_delta, reconstruction_loss

N_IN, K = 20, 3
EIGVALS = np.array([4.0, 3.0, 2.0] + list(np.linspace(0.6, 0.1, N_IN - K)))


def _gaussian_batches(steps: int, batch: int, seed: int = 0):
    """Batches of x ~ N(0, Q diag(EIGVALS) Q^T) with a random orthogonal Q."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(N_IN, N_IN)))
    g = rng.normal(size=(steps, batch, N_IN))
    x = (g * np.sqrt(EIGVALS)) @ q.T
    return jnp.asarray(x, jnp.float32), q


def _train_linear(name: str, steps: int = 1500):
    """Runs ``name`` on a single linear layer 20 -> 3 (no bias update, no V update)."""
    net = MLPSpec(N_IN, (K,), activation="identity")
    rule = make_rule(name, net, lr=0.02, max_delta=0.05)
    state = init_inner_state(rule, {}, key=jax.random.key(0))
    batches, q = _gaussian_batches(steps, 64)
    final, metrics = unroll_jit(rule, {}, state, batches)
    assert np.all(np.isfinite(metrics["update_rms"]))
    return np.asarray(final.params[0].w, np.float64), q, state, final


def _subspace_alignment(w, u):
    """Mean squared cosine of the principal angles between span(w) and span(u)."""
    basis, _ = np.linalg.qr(w)
    return float(np.sum(np.square(u.T @ basis)) / w.shape[1])


def test_sanger_converges_to_ordered_principal_components():
    w, q, start, final = _train_linear("sanger")
    top = q[:, :K]
    assert _subspace_alignment(w, top) > 0.95
    # Each column is the matching eigenvector (up to sign) with unit norm.
    cosines = np.abs(np.sum(w * top, axis=0)) / np.linalg.norm(w, axis=0)
    assert np.all(cosines > 0.95), cosines
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), 1.0, atol=0.05)
    # Bias and backward weights untouched.
    np.testing.assert_array_equal(final.params[0].b, start.params[0].b)
    np.testing.assert_array_equal(final.params[0].v, start.params[0].v)


def test_oja_subspace_rule_finds_principal_subspace():
    w, q, _, _ = _train_linear("oja")
    assert _subspace_alignment(w, q[:, :K]) > 0.95
    # Orthonormal columns at the fixed point: W^T W = I.
    np.testing.assert_allclose(w.T @ w, np.eye(K), atol=0.05)


def test_hebbian_delta_matches_per_example_sum():
    """Vectorised step == the textbook per-example Sanger sum, column by column."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 4)) / 3
    x = rng.normal(size=(5, 6))
    xc = x - x.mean(0)
    expected = np.zeros_like(w)
    for xb in xc:
        y = xb @ w
        for i in range(4):  # dw_i = y_i (x - sum_{j <= i} y_j w_j)
            expected[:, i] += y[i] * (xb - w[:, :i + 1] @ y[:i + 1])
    expected *= 0.1 / len(x)
    got = hebbian_delta(jnp.asarray(w, jnp.float32), jnp.asarray(x, jnp.float32),
                        lr=0.1, triangular=True, center=True)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------
# Autoencoder by backprop.
# --------------------------------------------------------------------------

AE_NET = MLPSpec(N_IN, (16, 8))


def _np_loss(ws, bs, dec_w, dec_b, x, eps):
    """The squared reconstruction error per example, in float64 numpy (batch-stat BN, ReLU)."""
    h = x
    for w, b in zip(ws, bs):
        a = h @ w
        m = a.mean(0)
        var = np.square(a - m).mean(0)
        h = np.maximum((a - m) / np.sqrt(var + eps) + b, 0.0)
    return np.sum(np.square(h @ dec_w + dec_b - x)) / len(x)


def _ae_setup(**options):
    rule = make_rule("ae_sgd", AE_NET, **options)
    assert isinstance(rule, AutoencoderRule)
    params = init_params(jax.random.key(3), AE_NET)
    # Non-zero biases, so their gradient is not trivially structured.
    params = tuple(p._replace(b=0.1 * jnp.arange(p.b.shape[0], dtype=jnp.float32) - 0.3)
                   for p in params)
    state = rule.init_state({}, params, key=jax.random.key(4))
    x = jax.random.uniform(jax.random.key(5), (16, N_IN))
    return rule, params, state, x


def _flat64(params, state):
    leaves = [p.w for p in params] + [p.b for p in params] + [state.decoder_w, state.decoder_b]
    return [np.asarray(a, np.float64) for a in leaves]


def _fd_grad(leaves, x, eps_fd=1e-6):
    """Central finite differences of the float64 loss wrt every parameter."""
    depth = AE_NET.depth

    def loss(ls):
        return _np_loss(ls[:depth], ls[depth:2 * depth], ls[-2], ls[-1], x, AE_NET.bn_eps)

    grads = []
    for i, leaf in enumerate(leaves):
        g = np.zeros_like(leaf)
        for idx in np.ndindex(leaf.shape):
            plus = [a.copy() for a in leaves]
            minus = [a.copy() for a in leaves]
            plus[i][idx] += eps_fd
            minus[i][idx] -= eps_fd
            g[idx] = (loss(plus) - loss(minus)) / (2 * eps_fd)
        grads.append(g)
    return grads, loss(leaves)


def test_ae_sgd_step_is_minus_lr_times_finite_difference_gradient():
    lr = 0.1  # large, so (old - new) / lr loses little float32 precision
    rule, params, state, x = _ae_setup(lr=lr)
    new_params, new_state, metrics = jax.jit(rule.step)({}, params, state, x,
                                                        key=jax.random.key(0))
    before = _flat64(params, state)
    after = _flat64(new_params, new_state)
    fd, loss0 = _fd_grad(before, np.asarray(x, np.float64))
    np.testing.assert_allclose(float(metrics["recon_mse"]), loss0 / N_IN, rtol=1e-5)
    for b, a, g in zip(before, after, fd):
        implied = (b - a) / lr
        np.testing.assert_allclose(implied, g, rtol=1e-3, atol=1e-5 * np.abs(g).max())
    # V untouched.
    for p, q in zip(params, new_params):
        np.testing.assert_array_equal(p.v, q.v)


def test_ae_adam_first_step_is_minus_lr_times_sign_of_gradient():
    """Adam's first step is ``-lr * g / (|g| + eps)`` (bias-corrected moments)."""
    lr = 1e-3
    rule, params, state, x = _ae_setup(lr=lr, optimizer="adam")
    new_params, new_state, _ = jax.jit(rule.step)({}, params, state, x, key=jax.random.key(0))
    trainable = (tuple((p.w, p.b) for p in params), (state.decoder_w, state.decoder_b))
    v = tuple(p.v for p in params)
    grads = jax.jit(jax.grad(reconstruction_loss), static_argnums=3)(trainable, v, x, AE_NET)
    grads = grads[0][0][0]
    step = np.asarray(new_params[0].w - params[0].w)
    g = np.asarray(grads)
    np.testing.assert_allclose(step, -lr * g / (np.abs(g) + rule.config.eps), rtol=1e-3,
                               atol=1e-8)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_options_are_validated():
    with pytest.raises(UserError, match="no option"):
        make_rule("sanger", AE_NET, learning_rate=0.1)
    with pytest.raises(UserError, match="lr"):
        make_rule("oja", AE_NET, lr=5.0)
    with pytest.raises(UserError, match="optimizer"):
        make_rule("ae_sgd", AE_NET, optimizer="lbfgs")
