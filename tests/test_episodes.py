"""Few-shot sampling: determinism, per-class counts, disjointness, error messages."""
import numpy as np
import pytest

from metaunsup.data import Episode, sample_episode, sample_few_shot, stratified_split
from metaunsup.errors import UserError


def _toy(sizes=(30, 25, 40, 12)):
    """x row i is [i, i] so rows can be traced back to indices; y by class sizes."""
    y = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)]).astype(np.int32)
    y = np.random.default_rng(123).permutation(y)
    x = np.repeat(np.arange(len(y), dtype=np.float32)[:, None], 2, axis=1)
    return x, y


def _rows(x_part):
    return x_part[:, 0].astype(int)


def test_episode_counts_disjoint_and_consistent():
    x, y = _toy()
    ep = sample_episode(x, y, shots=5, query_shots=7, seed=0)
    assert isinstance(ep, Episode)
    assert ep.support_x.shape == (4 * 5, 2) and ep.query_x.shape == (4 * 7, 2)
    assert ep.support_y.dtype == np.int32 and ep.query_y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(ep.support_y), [5, 5, 5, 5])
    np.testing.assert_array_equal(np.bincount(ep.query_y), [7, 7, 7, 7])
    s, q = _rows(ep.support_x), _rows(ep.query_x)
    assert len(set(s)) == len(s) and len(set(q)) == len(q)
    assert not set(s) & set(q)
    # Labels match the rows they came from.
    np.testing.assert_array_equal(y[s], ep.support_y)
    np.testing.assert_array_equal(y[q], ep.query_y)


def test_episode_is_deterministic_per_seed():
    x, y = _toy()
    a = sample_episode(x, y, shots=3, query_shots=2, seed=11)
    b = sample_episode(x, y, shots=3, query_shots=2, seed=11)
    c = sample_episode(x, y, shots=3, query_shots=2, seed=12)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.support_x, c.support_x)


def test_episode_without_query_is_empty():
    x, y = _toy()
    ep = sample_episode(x, y, shots=2, seed=0)
    assert ep.query_x.shape == (0, 2) and ep.query_y.shape == (0,)
    assert ep.support_x.shape == (8, 2)


def test_episode_n_way_and_relabel():
    x, y = _toy()
    ep = sample_episode(x, y, shots=4, query_shots=1, seed=3, classes=2, relabel=True)
    assert sorted(set(ep.support_y.tolist())) == [0, 1]
    np.testing.assert_array_equal(np.bincount(ep.support_y), [4, 4])
    ep2 = sample_episode(x, y, shots=4, seed=3, classes=[1, 3])
    assert sorted(set(ep2.support_y.tolist())) == [1, 3]
    ep3 = sample_episode(x, y, shots=4, seed=3, classes=[1, 3], relabel=True)
    np.testing.assert_array_equal(ep3.support_y, np.searchsorted([1, 3], ep2.support_y))


def test_episode_shots_too_large_names_class_and_size():
    x, y = _toy()
    with pytest.raises(UserError, match=r"class 3 has only 12 examples.*shots \+ query_shots \(10 \+ 5\)"):
        sample_episode(x, y, shots=10, query_shots=5, seed=0)
    with pytest.raises(UserError, match="class 3 has only 12 examples but shots = 13"):
        sample_episode(x, y, shots=13, seed=0)
    # Exactly the class size is fine.
    ep = sample_episode(x, y, shots=12, seed=0)
    assert np.bincount(ep.support_y)[3] == 12


@pytest.mark.parametrize("kwargs,needle", [
    (dict(shots=0), "shots must be a positive integer"),
    (dict(shots=2.5), "shots must be a positive integer"),
    (dict(shots=2, query_shots=-1), "query_shots must be a non-negative integer"),
    (dict(shots=2, classes=[0, 9]), r"classes \[9\] do not occur"),
    (dict(shots=2, classes=5), "y has 4 classes"),
])
def test_episode_bad_arguments(kwargs, needle):
    x, y = _toy()
    with pytest.raises(UserError, match=needle):
        sample_episode(x, y, seed=0, **kwargs)


def test_episode_rejects_mismatched_or_float_labels():
    x, y = _toy()
    with pytest.raises(UserError, match="x has"):
        sample_episode(x[:-1], y, shots=1, seed=0)
    with pytest.raises(UserError, match="labels must be integers"):
        sample_episode(x, y.astype(np.float32), shots=1, seed=0)


def test_few_shot_indices_grouped_by_class_and_deterministic():
    _, y = _toy()
    idx = sample_few_shot(y, 6, 5)
    assert idx.dtype == np.int64 and idx.shape == (24,)
    np.testing.assert_array_equal(y[idx], np.repeat([0, 1, 2, 3], 6))
    assert len(set(idx.tolist())) == 24
    np.testing.assert_array_equal(idx, sample_few_shot(y, 6, 5))
    assert not np.array_equal(idx, sample_few_shot(y, 6, 6))


def test_few_shot_covers_class_uniformly():
    # Every member of a class is picked with probability shots / size (statistical,
    # seeded): with 400 draws of 3 out of 12, each count is Binomial(400, 0.25) ~ 100 +- 8.7.
    y = np.repeat([0, 1], [12, 50])
    counts = np.zeros(12)
    for s in range(400):
        idx = sample_few_shot(y, 3, s)
        counts[idx[:3]] += 1
    assert counts.sum() == 1200
    assert np.all(np.abs(counts - 100) < 5 * 8.7)


def test_few_shot_errors_name_the_class():
    y = np.repeat([0, 1, 2], [10, 3, 10])
    with pytest.raises(UserError, match="class 1 has only 3 examples but shots = 4; lower it to at most 3"):
        sample_few_shot(y, 4, 0)
    with pytest.raises(UserError, match="class 7 has only 0 examples"):
        sample_few_shot(y, 2, 0, classes=[0, 7])


@pytest.mark.parametrize("test_size,n_test", [(400, 400), (0.2, 300)])
def test_stratified_split_exact_size_and_proportions(test_size, n_test):
    y = np.repeat(np.arange(5), [100, 200, 300, 400, 500])
    tr, te = stratified_split(y, test_size=test_size, seed=0)
    assert len(te) == n_test and len(tr) == len(y) - n_test
    assert not set(tr.tolist()) & set(te.tolist())
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(y)))
    share = np.bincount(y[te], minlength=5) / n_test
    np.testing.assert_allclose(share, np.array([1, 2, 3, 4, 5]) / 15, atol=1.0 / n_test)
    tr2, te2 = stratified_split(y, test_size=test_size, seed=0)
    np.testing.assert_array_equal(te, te2)


def test_stratified_split_bad_size():
    y = np.repeat([0, 1], 5)
    with pytest.raises(UserError, match="fraction must be in"):
        stratified_split(y, test_size=1.5, seed=0)
    with pytest.raises(UserError, match="leaves no train"):
        stratified_split(y, test_size=10, seed=0)
