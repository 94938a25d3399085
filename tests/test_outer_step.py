"""The trainer's outer step with every estimator behind one interface, on the quadratic toy
task (closed-form optimum) and on the real rule task; evosax's OpenAI-ES (which replaced our
hand-written full-horizon ES) estimates the episode gradient."""
from functools import partial

import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.inner.task import QuadraticTask
from metaunsup.optim import adam
from metaunsup.outer import estimators as est
from metaunsup.outer.trainer import TrainerState, outer_step

TASK = QuadraticTask(min_length=8, max_length=8)
ESTIMATORS = {
    "tbptt": est.TBPTT(num_steps=8),
    "pes": est.PES(num_steps=4, sigma=0.05),
}


def _init(estimator, meta_batch=4):
    mp = TASK.init_meta_params()
    opt = adam(0.05)
    tasks = jax.vmap(lambda k: estimator.init(TASK, mp, k))(
        jax.random.split(jax.random.PRNGKey(1), meta_batch))
    zero = jnp.zeros((), jnp.int32)
    return opt, TrainerState(mp, opt.init(mp), tasks, jax.random.PRNGKey(2), zero, zero, zero)


def _inner_steps(estimator, metrics, meta_batch=4) -> float:
    """Inner steps of one outer step: TBPTT runs one truncation per task, PES two
    (antithetic)."""
    return estimator.num_steps * (2 if isinstance(estimator, est.PES) else 1) * meta_batch


def _final_loss(mp, steps=8):
    keys = jax.random.split(jax.random.PRNGKey(99), 64)
    return float(jnp.mean(jax.vmap(lambda k: TASK.episode_loss(mp, k, steps)[0])(keys)))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_estimator_meta_trains_the_quadratic(name):
    estimator = ESTIMATORS[name]
    opt, state = _init(estimator)
    step = jax.jit(partial(outer_step, TASK, estimator, opt))
    before = _final_loss(state.meta_params)
    for _ in range(150):
        state, metrics = step(state)
    after = _final_loss(state.meta_params)
    # theta -> target drives x_t -> target: the end-of-episode loss falls by a large factor.
    assert after < 0.1 * before, (name, before, after)
    assert int(state.step) == 150 and int(state.skipped) == 0
    assert np.isfinite(float(metrics["meta_loss"]))
    assert float(metrics["inner_steps"]) == pytest.approx(_inner_steps(estimator, metrics))


def test_open_es_estimates_the_episode_gradient_as_our_es_did():
    """evosax's OpenAI-ES, as outer.evolve uses it but with plain fitness and SGD at rate 1:
    one generation of 4096 antithetic members on one shared episode (common random
    numbers) moves the mean by minus the ES gradient estimate, whose cosine with the exact
    gradient of the episode's loss is ~ 1 (sigma small) -- the check our hand-written
    full-horizon ES passed before evosax replaced it."""
    import optax
    from evosax.algorithms import Open_ES
    from evosax.core.fitness_shaping import identity_fitness_shaping_fn

    mp = TASK.init_meta_params()
    flat, unravel = jax.flatten_util.ravel_pytree(mp)
    strategy = Open_ES(4096, flat, optimizer=optax.sgd(1.0),
                       std_schedule=optax.constant_schedule(0.01),
                       fitness_shaping_fn=identity_fitness_shaping_fn)
    params = strategy.default_params
    state = strategy.init(jax.random.PRNGKey(0), flat, params)
    pop, state = strategy.ask(jax.random.PRNGKey(1), state, params)
    k_task = jax.random.PRNGKey(5)
    fitness = jax.vmap(lambda x: TASK.episode_loss(unravel(x), k_task, 8)[0])(pop)
    state, _ = strategy.tell(jax.random.PRNGKey(2), pop, fitness, state, params)
    step = np.asarray(state.mean - flat)  # = -lr * estimate
    exact = np.asarray(jax.flatten_util.ravel_pytree(
        jax.grad(lambda p: TASK.episode_loss(p, k_task, 8)[0])(mp))[0])
    assert -step @ exact / np.linalg.norm(step) / np.linalg.norm(exact) > 0.97


def _tiny_rule_task(length: int):
    """(RuleTask, theta): the mix_only learned rule on a 16-8-4 net over a small synthetic
    pool, episodes of exactly ``length`` inner steps."""
    from metaunsup.models import MLPSpec
    from metaunsup.rules import make_rule
    from metaunsup.tasks.distribution import TaskDistConfig
    from metaunsup.tasks.pool import build_pool
    from metaunsup.tasks.rule_task import RuleTask

    rng = np.random.default_rng(0)
    x = (rng.random((200, 16)) < 0.3).astype(np.float32)
    pool = build_pool([(x, np.repeat(np.arange(4), 50))])
    dist = TaskDistConfig(datasets=("synthetic",), resolution=4, n_way=3, shots=2,
                          batch_size=8, length_range=(length, length))
    rule = make_rule("learned", MLPSpec(n_in=16, widths=(8, 4)), config="mix_only")
    return RuleTask(rule, dist, pool), rule.init_meta_params(jax.random.PRNGKey(0))


@pytest.mark.slow  # meta-gradients through the learned rule
def test_pes_passes_the_task_accuracy_through():
    """The trainer logs episode_accuracy from the task's metrics (PES used to drop it,
    so runs logged 0)."""
    task, mp = _tiny_rule_task(length=6)
    for estimator in (est.PES(num_steps=3, sigma=0.01),):
        opt = adam(1e-3)
        tasks = jax.vmap(lambda k: estimator.init(task, mp, k))(
            jax.random.split(jax.random.PRNGKey(1), 2))
        zero = jnp.zeros((), jnp.int32)
        state = TrainerState(mp, opt.init(mp), tasks, jax.random.PRNGKey(2), zero, zero, zero)
        _, metrics = jax.jit(partial(outer_step, task, estimator, opt))(state)
        # the mean over the meta-batch of what the task itself reports, for the same keys
        key, k_est, _ = jax.random.split(state.key, 3)
        keys = jax.random.split(k_est, 2)
        accs = [float(estimator.estimate(task, mp, jax.tree.map(lambda t: t[i], tasks),
                                         keys[i])[3]["accuracy"]) for i in range(2)]
        assert float(metrics["episode_accuracy"]) == pytest.approx(np.mean(accs), rel=1e-5)


def test_compact_family_is_small_and_its_untrained_rule_is_one_rule():
    from metaunsup.models import MLPSpec
    from metaunsup.rules import make_rule

    rule = make_rule("learned", MLPSpec(n_in=12, widths=(8, 4)), config="compact")
    assert rule.num_meta_params() <= 100
    a = rule.init_meta_params(jax.random.PRNGKey(0))
    b = rule.init_meta_params(jax.random.PRNGKey(1))
    chex.assert_trees_all_equal(a, b)  # no key dependence: "untrained" is well defined
    assert not np.any(np.asarray(a["bias"]["w"]))  # no bias drift before meta-training
    assert "log_tau" in a["mix"] and "log_lr" in a


def test_synthetic_data_sets_are_labelled_bounded_and_learnable_by_a_linear_probe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    from metaunsup.tasks.distribution import TaskDistConfig, load_pools
    from metaunsup.tasks.synthetic import SYNTHETIC, generate

    for name in SYNTHETIC:
        x, y = generate(name, dim=64, per_class=40, seed=0)
        assert x.shape == (400, 64) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0 and np.bincount(y).tolist() == [40] * 10
        again, _ = generate(name, dim=64, per_class=40, seed=0)
        np.testing.assert_array_equal(x, again)
        # the classes carry signal: a probe on half beats chance (10%) by far (a linear
        # one, except on the interleaved arcs, which are not linearly separable: nearest
        # neighbours there)
        idx = np.random.default_rng(0).permutation(400)
        clf = (KNeighborsClassifier(5) if name == "synthetic_arcs"
               else LogisticRegression(max_iter=500))
        clf.fit(x[idx[:200]], y[idx[:200]])
        assert clf.score(x[idx[200:]], y[idx[200:]]) > (0.35 if name == "synthetic_arcs" else 0.5), name
    train, valid = load_pools(TaskDistConfig(datasets=SYNTHETIC, resolution=8), seed=0)
    assert train.num_datasets == len(SYNTHETIC) == 5 and train.dim == 64
    assert float(np.asarray(train.dataset_image).max()) == 0.0  # no image warps on them
    assert not np.array_equal(np.asarray(train.x[:10]), np.asarray(valid.x[:10]))


@pytest.mark.slow  # meta-gradients through the learned rule
def test_nested_remat_gives_the_same_gradient_and_keeps_sqrt_t_states():
    """remat="nested" (inner.task.nested_scan) and "dots" change memory, never values:
    the meta-gradient equals the plain one, and the backward pass's stored residuals
    grow ~sqrt(T) (per-step remat: ~T)."""
    from metaunsup.outer.estimators import tbptt

    task, mp = _tiny_rule_task(length=200)
    state = task.init(mp, jax.random.PRNGKey(1))
    grads = [jax.jit(lambda m, r=r: tbptt(task, m, state, jax.random.PRNGKey(2), 6, remat=r)[0])(mp)
             for r in (False, "dots", "nested")]
    for g in grads[1:]:
        chex.assert_trees_all_close(grads[0], g, rtol=1e-5, atol=1e-7)

    def residual_bytes(T, remat):
        loss = lambda m: task.unroll(m, state, jax.random.PRNGKey(2), T, remat=remat)[1]  # noqa: E731
        vjp = jax.eval_shape(lambda m: jax.vjp(loss, m)[1], mp)
        return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(vjp))

    def growth(remat):  # of the T-dependent part (pool and theta are stored once)
        r16, r64, r256 = (residual_bytes(T, remat) for T in (16, 64, 256))
        return (r256 - r64) / (r64 - r16)

    per_step, nested = growth(True), growth("nested")  # x4 T: x4 vs x2 (sqrt)
    assert 3.5 < per_step < 4.5 and 1.5 < nested < 2.5, (per_step, nested)
