"""Meta-gradient estimators against the exact gradient of a linear inner loop.

The task (metaunsup.inner.task.QuadraticTask) has x_{t+1} = x_t - alpha A (x_t - theta),
so x_t = theta + B^t (x_0 - theta) with B = I - alpha A, and the episode loss
sum_t |x_t - c|^2 has a closed-form gradient (computed here in float64 numpy).

Statistical tolerances (ES, PES): an estimator averaging N i.i.d. per-pair
estimates has error norm ~ sqrt(trace Cov / N). For antithetic ES on a loss
quadratic in theta, Cov = |g|^2 I + g g^T per pair (Isserlis), so the expected
relative error is sqrt((D + 1) / N) = 0.035 for D = 4, N = 4000; we allow four
times the expected error norm. For PES the per-pair covariance has no simple
closed form, so the standard error is measured from the per-pair samples.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.inner.task import QuadraticTask, TruncatedTask
from metaunsup.outer import es_full, pes, pes_accumulate, pes_init, tbptt, tbptt_init

EPS32 = float(np.finfo(np.float32).eps)
TASK = QuadraticTask(min_length=8, max_length=8)
META = {"theta": jnp.array([0.3, -0.2, 0.1], jnp.float32),
        "log_alpha": jnp.asarray(np.log(0.2), jnp.float32)}
SIGMA = 0.01
N_PAIRS = 4000

tbptt_jit = jax.jit(tbptt, static_argnames=("task", "num_steps", "remat"))


def flat(g):
    """Meta-gradient dict -> [..., 4] (theta then log_alpha)."""
    return np.concatenate([np.asarray(g["theta"]), np.asarray(g["log_alpha"])[..., None]], -1)


def closed_form_grad(x_start, num_steps, meta=META, task=TASK):
    """d/d(theta, log_alpha) of sum_{j=1..K} |x_{s+j} - c|^2 with x_s held fixed (float64).

    x_{s+j} = theta + B^j e, e = x_s - theta, so dx/dtheta = I - B^j and, A and B
    commuting, dx/dalpha = -j A B^{j-1} e; d/dlog_alpha = alpha d/dalpha.
    """
    a = np.asarray(task.a, np.float64)
    c = np.asarray(task.target, np.float64)
    theta = np.asarray(meta["theta"], np.float64)
    alpha = float(np.exp(np.float64(meta["log_alpha"])))
    b = np.eye(len(c)) - alpha * a
    e = np.asarray(x_start, np.float64) - theta
    g_theta, g_la = np.zeros_like(c), 0.0
    for j in range(1, num_steps + 1):
        bj = np.linalg.matrix_power(b, j)
        r = theta + bj @ e - c
        g_theta += 2 * (np.eye(len(c)) - bj).T @ r
        g_la += alpha * 2 * r @ (-j * a @ np.linalg.matrix_power(b, j - 1) @ e)
    return np.concatenate([g_theta, [g_la]])


def test_quadratic_task_implements_the_interface():
    assert isinstance(TASK, TruncatedTask)
    state = TASK.init(META, jax.random.key(0))
    assert int(state.step) == 0 and int(state.length) == 8


@pytest.mark.parametrize("remat", [False, True, "dots", "nested"])
def test_tbptt_over_a_whole_episode_is_the_exact_gradient(remat):
    state = tbptt_init(TASK, META, jax.random.key(0))

    def episode_loss(meta):  # the plain unrolled loop, differentiated by jax.grad
        x, total = state.x, 0.0
        for _ in range(8):
            x, loss = TASK.step(meta, x)
            total = total + loss
        return total

    exact = flat(jax.grad(episode_loss)(META))
    grad, new_state, loss, metrics = tbptt_jit(TASK, META, state, jax.random.key(1), 8,
                                               remat=remat)
    np.testing.assert_allclose(flat(grad), exact, rtol=4 * EPS32,
                               atol=4 * EPS32 * np.abs(exact).max())
    np.testing.assert_allclose(flat(grad), closed_form_grad(state.x, 8), rtol=1e-5)
    np.testing.assert_allclose(loss, episode_loss(META), rtol=4 * EPS32)
    assert int(new_state.step) == 8 and not bool(metrics["reset"])


def test_tbptt_over_two_truncations_drops_the_cross_term():
    s0 = tbptt_init(TASK, META, jax.random.key(0))
    g1, s1, _, _ = tbptt_jit(TASK, META, s0, jax.random.key(1), 4)
    g2, s2, _, _ = tbptt_jit(TASK, META, s1, jax.random.key(2), 4)
    full = closed_form_grad(s0.x, 8)
    # Each truncation is the exact gradient of its own losses with its start held fixed.
    np.testing.assert_allclose(flat(g1), closed_form_grad(s0.x, 4), rtol=1e-5)
    np.testing.assert_allclose(flat(g2), closed_form_grad(s1.x, 4), rtol=1e-5)
    # What TBPTT misses: the second truncation's losses through x_4, i.e.
    # sum_j 2 (dx_{4+j}/dx_4 . dx_4/dp)^T r_{4+j}, dx_{4+j}/dx_4 = B^j,
    # dx_4/dtheta = I - B^4, dx_4/dlog_alpha = -4 alpha A B^3 (x_0 - theta).
    a = np.asarray(TASK.a, np.float64)
    theta = np.asarray(META["theta"], np.float64)
    alpha = float(np.exp(np.float64(META["log_alpha"])))
    b = np.eye(3) - alpha * a
    dx4 = np.concatenate([np.eye(3) - np.linalg.matrix_power(b, 4),
                          (-4 * alpha * a @ np.linalg.matrix_power(b, 3)
                           @ (np.asarray(s0.x, np.float64) - theta))[:, None]], axis=1)
    x4 = np.asarray(s1.x, np.float64)
    cross = sum(2 * (np.linalg.matrix_power(b, j) @ dx4).T
                @ (theta + np.linalg.matrix_power(b, j) @ (x4 - theta) - np.asarray(TASK.target))
                for j in range(1, 5))
    assert np.linalg.norm(cross) > 0.1 * np.linalg.norm(full)  # the bias is not negligible
    np.testing.assert_allclose(full - flat(g1) - flat(g2), cross, atol=1e-5 * np.abs(full).max())


def _rel_err(estimate, exact):
    return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


def _cosine(u, v):
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def test_es_full_matches_the_episode_gradient():
    es = jax.jit(es_full, static_argnames=("task", "sigma", "num_pairs", "num_steps"))
    tol = 4 * np.sqrt((4 + 1) / N_PAIRS)
    # Fresh episodes: x_0 = 0 for every key, so the episode is known.
    task0 = QuadraticTask(init_scale=0.0)
    exact0 = closed_form_grad(np.zeros(3), 8, task=task0)
    grad, loss, _ = es(task0, META, jax.random.key(3), sigma=SIGMA, num_pairs=N_PAIRS,
                       num_steps=8)
    assert _rel_err(flat(grad), exact0) < tol and _cosine(flat(grad), exact0) > 0.95


def test_es_from_a_given_state_and_its_per_pair_variance():
    # Truncated ES of the whole episode from a given state, one pair per key.
    # trace Cov[one pair] = (D + 1) |g|^2 for a loss quadratic in theta; log_alpha
    # enters non-quadratically but is linear to O(sigma^2). The sample trace of
    # 2000 heavy-tailed (u u^T g) draws has a relative s.e. of about 0.05.
    state = TASK.init(META, jax.random.key(0))
    exact = closed_form_grad(state.x, 8)
    one = jax.jit(jax.vmap(lambda k: es_full(TASK, META, k, sigma=SIGMA, num_pairs=1,
                                             num_steps=8, task_state=state)[0]))
    samples = flat(one(jax.random.split(jax.random.key(5), 2000)))
    ratio = samples.var(axis=0).sum() / (5 * exact @ exact)
    assert abs(ratio - 1) < 0.2, ratio
    estimate = samples.mean(axis=0)
    assert _rel_err(estimate, exact) < 4 * np.sqrt(5 / len(samples))
    assert _cosine(estimate, exact) > 0.95


@pytest.fixture(scope="module")
def pes_episode():
    """4000 PES pairs, one episode of 4 truncations of 2 steps, per-pair sums."""
    run = jax.jit(jax.vmap(lambda s, k: pes(TASK, META, s, k, sigma=SIGMA, num_steps=2)))
    state0 = pes_init(TASK, META, jax.random.key(0))
    states = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (N_PAIRS,) + x.shape), state0)
    keys = jax.random.split(jax.random.key(6), (5, N_PAIRS))
    total = 0.0
    for k in range(4):
        grads, states, _, metrics = run(states, keys[k])
        assert not np.any(metrics["reset"])
        total = total + flat(grads)
    return state0, total, states, run, keys[4]


def test_pes_summed_over_an_episode_matches_the_gradient(pes_episode):
    state0, samples, _, _, _ = pes_episode
    exact = closed_form_grad(state0.pos.x, 8)
    estimate = samples.mean(axis=0)
    stderr = samples.std(axis=0) / np.sqrt(N_PAIRS)
    assert np.linalg.norm(estimate - exact) < 4 * np.linalg.norm(stderr)
    assert _rel_err(estimate, exact) < 0.1 and _cosine(estimate, exact) > 0.95
    # TBPTT over the same truncations is biased by much more than PES's noise.
    state, tbptt_sum = tbptt_init(TASK, META, jax.random.key(0)), 0.0
    for k in range(4):
        g, state, _, _ = tbptt_jit(TASK, META, state, jax.random.key(k), 2)
        tbptt_sum = tbptt_sum + flat(g)
    assert _rel_err(tbptt_sum, exact) > 5 * _rel_err(estimate, exact)


def test_pes_reset_restarts_the_accumulator(pes_episode):
    state0, _, done_states, run, key = pes_episode
    assert np.all(np.asarray(done_states.pos.step) == 8)  # the episode is over
    history = flat(done_states.accumulator)
    fresh = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (N_PAIRS,) + x.shape), state0)
    _, from_fresh, _, m_fresh = run(fresh, key)       # accumulator 0 + delta
    _, after_reset, _, m_reset = run(done_states, key)  # same key, same delta
    assert not np.any(m_fresh["reset"]) and np.all(m_reset["reset"])
    np.testing.assert_array_equal(flat(after_reset.accumulator), flat(from_fresh.accumulator))
    assert np.all(np.asarray(after_reset.pos.step) == 2)
    assert np.abs(history).max() > 0
    # The pure accumulator rule.
    acc, delta = {"w": jnp.ones(3)}, {"w": jnp.full(3, 0.5)}
    np.testing.assert_array_equal(pes_accumulate(acc, delta, jnp.bool_(True))["w"], 0.5)
    np.testing.assert_array_equal(pes_accumulate(acc, delta, jnp.bool_(False))["w"], 1.5)


def test_meta_batch_vmap_equals_per_task_calls():
    keys = jax.random.split(jax.random.key(7), 3)
    states = jax.vmap(lambda k: tbptt_init(TASK, META, k))(keys)
    batched = jax.jit(jax.vmap(lambda s, k: tbptt(TASK, META, s, k, 4)))(states, keys)
    for i in range(3):
        single = tbptt_jit(TASK, META, jax.tree_util.tree_map(lambda x: x[i], states), keys[i], 4)
        np.testing.assert_allclose(flat(batched[0])[i], flat(single[0]), rtol=1e-6)
        np.testing.assert_allclose(batched[2][i], single[2], rtol=1e-6)


def test_bad_sigma_is_a_user_error():
    with pytest.raises(UserError, match="sigma"):
        pes(TASK, META, pes_init(TASK, META, jax.random.key(0)), jax.random.key(1),
            sigma=0.0, num_steps=2)
