"""tasks/: augmentation geometry, the device pool's sampling, and RuleTask's reset
and support/query contract, tested directly (not only through meta-training)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule
from metaunsup.tasks.augment import AugmentConfig, _warp_one, augment
from metaunsup.tasks.distribution import TaskDistConfig
from metaunsup.tasks.pool import build_pool, sample_classes, sample_episode, sample_unlabeled
from metaunsup.tasks.rule_task import RuleTask


RES = 6


def test_warp_shifts_by_whole_pixels_and_rotates_by_quarter_turns():
    img = jnp.asarray(np.random.default_rng(0).random((RES, RES)), jnp.float32)
    shift = AugmentConfig(max_shift=1.0, max_rotation=0.0)
    # dx = +1 pixel: content moves one column right, zero fill on the left.
    moved = np.asarray(_warp_one(img, jnp.array([1.0, 0.0, 0.0, 0.0]), shift))
    np.testing.assert_allclose(moved[:, 1:], np.asarray(img)[:, :-1], atol=1e-6)
    np.testing.assert_array_equal(moved[:, 0], 0.0)
    # A quarter turn about the centre is np.rot90 (in some direction) on a square grid.
    turn = AugmentConfig(max_shift=0.0, max_rotation=math.pi / 2)
    rot = np.asarray(_warp_one(img, jnp.array([0.0, 0.0, 1.0, 0.0]), turn))
    assert min(np.abs(rot - np.rot90(np.asarray(img), k)).max() for k in (1, 3)) < 1e-5
    # No ranges: the identity, and the targets stay in their documented ranges.
    x = jnp.asarray(np.random.default_rng(1).random((5, RES * RES)), jnp.float32)
    same, params = augment(jax.random.PRNGKey(0), x, (RES, RES),
                           AugmentConfig(max_shift=0, max_rotation=0, max_noise=0))
    np.testing.assert_allclose(same, x, atol=1e-6)
    assert params.shape == (5, 4) and float(jnp.abs(params[:, :3]).max()) <= 1.0
    assert 0.0 <= float(params[:, 3].min()) and float(params[:, 3].max()) <= 1.0


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    # dataset 0: 3 classes of 7 examples; dataset 1: 4 classes of 5; values tag the class
    a = [(np.full((7, RES * RES), c, np.float32), np.full(7, c)) for c in range(3)]
    b = [(np.full((5, RES * RES), 10 + c, np.float32), np.full(5, c)) for c in range(4)]
    def stack(parts):
        x, y = map(np.concatenate, zip(*parts))
        order = rng.permutation(len(y))
        return x[order] + rng.random(x.shape, dtype=np.float32) * 0.01, y[order]
    return build_pool([stack(a), stack(b)], max_per_class=6)


def test_pool_tables_and_sampling_respect_datasets_and_classes(pool):
    assert pool.num_datasets == 2 and pool.dim == RES * RES
    np.testing.assert_array_equal(pool.class_count, [6, 6, 6, 5, 5, 5, 5])  # capped at 6
    np.testing.assert_array_equal(pool.class_dataset, [0, 0, 0, 1, 1, 1, 1])
    tag = lambda rows: np.floor(np.asarray(rows)[:, 0])  # noqa: E731 - the class tag
    for ds in (0, 1):
        classes = sample_classes(jax.random.PRNGKey(ds), pool, jnp.int32(ds), 3)
        assert len(set(np.asarray(classes).tolist())) == 3
        assert set(np.asarray(pool.class_dataset[classes]).tolist()) == {ds}
        x = sample_unlabeled(jax.random.PRNGKey(5), pool, jnp.int32(ds), 64)
        assert set(tag(x).tolist()) <= ({0, 1, 2} if ds == 0 else {10, 11, 12, 13})
    classes = jnp.array([3, 5], jnp.int32)
    x, labels = sample_episode(jax.random.PRNGKey(1), pool, classes, 5)
    np.testing.assert_array_equal(labels, np.repeat([0, 1], 5))
    np.testing.assert_array_equal(tag(x), np.repeat([10, 12], 5))
    for c in range(2):  # without replacement: 5 distinct of the class's 5 examples
        assert len({tuple(r) for r in np.asarray(x[5 * c:5 * c + 5]).round(6)}) == 5


def test_rule_task_continues_then_resets_at_its_length(pool):
    dist = TaskDistConfig(datasets=("digits",), resolution=RES, length_range=(6, 6),
                          batch_size=8, n_way=2, shots=2)
    task = RuleTask(make_rule("oja", MLPSpec(n_in=RES * RES, widths=(8, 4))), dist, pool)
    state = task.init({}, jax.random.PRNGKey(0))
    assert int(state.length) == 6 and int(state.inner.step) == 0
    assert set(np.asarray(pool.class_dataset[state.classes]).tolist()) == {int(state.dataset_id)}
    unroll = jax.jit(task.unroll, static_argnums=3)
    s1, loss1, m1 = unroll({}, state, jax.random.PRNGKey(1), 3)
    assert float(m1["reset"]) == 0.0 and int(s1.inner.step) == 3
    # the truncation's loss is the mean of its steps' losses, step by step
    _, k_steps = jax.random.split(jax.random.PRNGKey(1))
    s, losses, step_loss = state, [], jax.jit(task.step_loss)
    for k in jax.random.split(k_steps, 3):
        s, loss, _ = step_loss({}, s, k)
        losses.append(float(loss))
    assert float(loss1) == pytest.approx(np.mean(losses), rel=1e-6)
    s2, _, m2 = unroll({}, s1, jax.random.PRNGKey(2), 3)
    assert float(m2["reset"]) == 0.0 and int(s2.inner.step) == 6
    np.testing.assert_array_equal(s2.perm, state.perm)  # the task is the same task
    s3, _, m3 = unroll({}, s2, jax.random.PRNGKey(3), 3)  # reached its length: a new task
    assert float(m3["reset"]) == 1.0 and int(s3.inner.step) == 3
    fresh = task.init({}, jax.random.split(jax.random.PRNGKey(3))[0])
    np.testing.assert_array_equal(s3.perm, fresh.perm)
    np.testing.assert_array_equal(s3.classes, fresh.classes)
