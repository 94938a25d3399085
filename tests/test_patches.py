"""Natural-image and texture patches (data/patches.py): splits, determinism, and that
neither the mean grey level nor the contrast of a patch gives its class away."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from metaunsup.data import load, patches
from metaunsup.tasks.augment import AugmentConfig, augment

pytestmark = pytest.mark.skipif(not patches.available(), reason="scikit-image not installed")


@pytest.fixture(scope="module", params=["natural", "textures"])
def family(request):
    return request.param, load(request.param, resolution=14)


def test_shapes_balance_range_and_contrast_normalisation(family):
    name, ds = family
    classes = len(patches.NATURAL_IMAGES) if name == "natural" else 15
    assert ds.num_classes == classes and ds.x_train.shape == (500 * classes, 196)
    assert np.bincount(ds.y_test).tolist() == [100] * classes
    for x in (ds.x_train, ds.x_test):
        assert x.min() > 0.0 and x.max() < 1.0
        # ranks (k - 0.5) / 196: every patch's mean is exactly 0.5; without ties the std is
        # that of the uniform grid, sqrt((n^2 - 1) / 12) / n = 0.2887 for n = 196
        np.testing.assert_allclose(x.mean(axis=1), 0.5, atol=1e-5)
        assert np.median(x.std(axis=1)) == pytest.approx(np.sqrt((196**2 - 1) / 12) / 196,
                                                         abs=1e-4)


def test_generation_is_deterministic_and_the_splits_are_disjoint(family):
    name, ds = family
    read = patches.read_natural if name == "natural" else patches.read_textures
    again = read(resolution=14, train_per_class=500, test_per_class=100)
    np.testing.assert_array_equal(again[2].reshape(len(again[2]), -1), ds.x_test)
    train = {row.tobytes() for row in ds.x_train}
    assert not any(row.tobytes() in train for row in ds.x_test)


def _ten_shot(features, y, seed):
    rng = np.random.default_rng(seed)
    classes = rng.choice(np.unique(y), 10, replace=False)
    sup = np.concatenate([rng.choice(np.flatnonzero(y == c), 10, replace=False) for c in classes])
    qry = np.setdiff1d(np.flatnonzero(np.isin(y, classes)), sup)
    clf = LogisticRegression(max_iter=2000).fit(features[sup], y[sup])
    return clf.score(features[qry], y[qry])


def test_mean_intensity_alone_is_near_chance_but_pixels_are_not(family):
    _, ds = family
    mean_only = np.mean([_ten_shot(ds.x_test.mean(1, keepdims=True), ds.y_test, s)
                         for s in range(5)])
    raw = np.mean([_ten_shot(ds.x_test, ds.y_test, s) for s in range(5)])
    # 10-way: chance is 0.1; equalised patches all have mean 0.5, so the mean-only
    # probe is at chance, and raw pixels above it
    assert mean_only < 0.13 < raw


def test_non_image_data_get_no_warp_only_noise():
    x = np.random.default_rng(0).random((5, 16), dtype=np.float32)
    import jax

    quiet = AugmentConfig(max_noise=0.0)
    out, targets = augment(jax.random.key(0), x, (4, 4), quiet, geometric=0.0)
    np.testing.assert_array_equal(np.asarray(out), x)  # an exact identity warp
    assert np.all(np.asarray(targets)[:, :3] == 0.0)
    warped, _ = augment(jax.random.key(0), x, (4, 4), quiet, geometric=1.0)
    assert not np.allclose(np.asarray(warped), x)
