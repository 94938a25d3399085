"""The command line, in process: exit codes, one-line errors, JSON output."""
import json

import numpy as np
import pytest
from scipy import stats

from metaunsup.cli import main
from metaunsup.eval import logreg_probe


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """A small 3-class problem saved as a user .npz: 8x8 images, 40 train / 30 test."""
    rng = np.random.default_rng(0)
    centres = rng.uniform(size=(3, 8, 8))
    def draw(n):
        y = np.arange(n) % 3
        x = np.clip(centres[y] + 0.2 * rng.normal(size=(n, 8, 8)), 0, 1)
        return x.astype(np.float32), y.astype(np.int32)
    x_train, y_train = draw(40)
    x_test, y_test = draw(30)
    path = tmp_path_factory.mktemp("data") / "mine.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path, dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _save(tmp_path, arrays, **changes):
    arrays = {**arrays, **changes}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _assert_user_error(capsys, argv, needle):
    code, out, err = _run(capsys, argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("metaunsup: error:")
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


def test_json_run_on_user_data(npz, capsys):
    path, arrays = npz
    code, out, err = _run(capsys, ["evaluate", "--method", "raw,pca", "--data", str(path),
                                   "--shots", "3", "--seeds", "2", "--widths", "16,4",
                                   "--json"])
    assert code == 0, err
    recs = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["method"] for r in recs] == ["raw", "pca"]
    for r in recs:
        for key in ("method", "dataset", "resolution", "shots", "seeds", "mean", "ci95",
                    "accuracies", "widths", "probe", "seconds"):
            assert key in r
        assert r["dataset"] == "mine" and r["resolution"] == 8 and r["shots"] == 3
        assert r["seeds"] == [0, 1] and r["widths"] == [16, 4] and r["probe"] == "logreg"
        assert r["mean"] == pytest.approx(np.mean(r["accuracies"]))
        sd = np.std(r["accuracies"], ddof=1)  # t-interval, 1 degree of freedom
        assert r["ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * sd / np.sqrt(2))
    # raw: the probe of the flattened pixels themselves, seed by seed
    flat = {k: arrays[k].reshape(len(arrays[k]), -1) for k in ("x_train", "x_test")}
    want = [100 * logreg_probe(flat["x_train"], arrays["y_train"], flat["x_test"],
                               arrays["y_test"], shots=3, seed=s) for s in (0, 1)]
    assert recs[0]["accuracies"] == pytest.approx(want, abs=1e-9)


def test_table_output_and_options(npz, capsys):
    path, _ = npz
    code, out, err = _run(capsys, ["evaluate", "--method", "pca", "--data", str(path),
                                   "--shots", "2", "--seeds", "1", "--widths", "5",
                                   "--probe", "ridge", "--option", "whiten=true",
                                   "--no-standardize",
                                   "--max-test", "all", "--steps", "3"])
    assert code == 0, err
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["method", "dataset", "res"]
    assert row.split()[:5] == ["pca", "mine", "8", "2", "1"]


@pytest.mark.parametrize("argv,needle", [
    (["--method", "nope"], "unknown method 'nope'"),
    (["--method", "raw,nope"], "unknown method 'nope'"),
    (["--method", "raw", "--shots", "50"], "shots=50"),
    (["--method", "raw", "--shots", "0"], "--shots must be a positive integer"),
    (["--method", "raw", "--seeds", "0"], "--seeds must be a positive integer"),
    (["--method", "raw", "--widths", "16,0"], "widths must be positive integers"),
    (["--method", "raw", "--widths", "16,-4"], "widths must be positive integers"),
    (["--method", "raw", "--widths", "a"], "comma-separated integers"),
    (["--method", "raw", "--activation", "gelu6"], "unknown activation"),
    (["--method", "raw", "--resolution", "8"], "--resolution applies to --dataset only"),
    (["--method", "raw", "--max-test", "-1"], "--max-test"),
    (["--method", "raw", "--probe", "svm"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(npz, capsys, argv, needle):
    path, _ = npz
    _assert_user_error(capsys, ["evaluate", "--data", str(path)] + argv, needle)


def test_bad_user_arrays_exit_2_with_one_line(npz, tmp_path, capsys):
    _, arrays = npz
    nan = arrays["x_train"].copy()
    nan[3, 2, 1] = np.nan
    inf = arrays["x_test"].copy()
    inf[0, 0, 0] = np.inf
    cases = [
        (dict(x_train=nan), "x_train: contains 1 NaN or Inf"),
        (dict(x_test=inf), "x_test: contains 1 NaN or Inf"),
        (dict(x_train=arrays["x_train"][..., None]), "x_train: expected a rank-2"),
        (dict(x_test=arrays["x_test"][:, 0, 0]), "x_test: expected a rank-2"),
        (dict(y_train=arrays["y_train"][:, None]), "y_train: expected a rank-1"),
        (dict(y_test=arrays["y_test"][:5]), "test split: 30 inputs but 5 labels"),
        (dict(x_test=arrays["x_test"][:, :4]), "differ in input size"),
    ]
    for changes, needle in cases:
        path = _save(tmp_path, arrays, **changes)
        _assert_user_error(capsys, ["evaluate", "--method", "raw", "--data", path], needle)


def test_missing_or_unreadable_files(npz, tmp_path, capsys):
    _, arrays = npz
    _assert_user_error(capsys, ["evaluate", "--method", "raw", "--data",
                                str(tmp_path / "absent.npz")], "no such file")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    _assert_user_error(capsys, ["evaluate", "--method", "raw", "--data", str(junk)],
                       "not a .npy or .npz array file")
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=arrays["x_train"], y_train=arrays["y_train"])
    _assert_user_error(capsys, ["evaluate", "--method", "raw", "--data", str(partial)],
                       "missing arrays x_test, y_test")


def test_argument_syntax_errors_exit_2(capsys):
    _assert_user_error(capsys, [], "command")
    _assert_user_error(capsys, ["evaluate", "--method", "raw"], "--dataset")
    _assert_user_error(capsys, ["frobnicate"], "invalid choice")


# ----------------------------------------------------------------------------- registered datasets

def test_json_run_on_digits(capsys):
    code, out, err = _run(capsys, ["evaluate", "--method", "raw,random", "--dataset", "digits",
                                   "--shots", "5", "--seeds", "2", "--widths", "32,16",
                                   "--json"])
    assert code == 0, err
    recs = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["method"] for r in recs] == ["raw", "random"]
    for r in recs:
        assert r["dataset"] == "digits" and r["shots"] == 5 and r["seeds"] == [0, 1]
        assert r["widths"] == [32, 16] and len(r["accuracies"]) == 2
    # Seeded: these numbers are the probe's (5-shot logistic regression, 2000 test digits).
    assert recs[0]["accuracies"] == pytest.approx([83.0, 85.75], abs=1e-6)
    assert recs[1]["accuracies"] == pytest.approx([54.0, 45.5], abs=1e-6)


def test_points_dataset_has_no_resolution(capsys):
    code, out, err = _run(capsys, ["evaluate", "--method", "raw", "--dataset", "moons",
                                   "--shots", "5", "--seeds", "1", "--json"])
    assert code == 0, err
    rec = json.loads(out)
    assert rec["resolution"] is None and rec["ci95"] is None  # one seed: no interval
    assert rec["mean"] == pytest.approx(86.0, abs=1e-6)  # seeded 5-shot probe of raw points


@pytest.mark.parametrize("argv,needle", [
    (["--dataset", "no_such_data"], "no_such_data"),
    (["--dataset", "digits", "--resolution", "0"], "resolution must be an integer in"),
    (["--dataset", "digits", "--resolution", "100000"], "resolution must be an integer in"),
    (["--dataset", "moons", "--resolution", "8"], "not an image set"),
    (["--dataset", "digits", "--shots", "100000"], "shots=100000"),
])
def test_bad_dataset_arguments_exit_2(capsys, argv, needle):
    _assert_user_error(capsys, ["evaluate", "--method", "raw"] + argv, needle)


def test_datasets_lists_every_registered_dataset(capsys):
    from metaunsup.data import list_datasets

    code, out, err = _run(capsys, ["datasets"])
    assert code == 0, err
    lines = out.strip().splitlines()[1:]
    listed = {line.split()[0] for line in lines[0::2]}
    assert {d.name for d in list_datasets()} == listed
    assert "digits" in listed and "moons" in listed
    # each row is followed by its source; the sample-image families name package and licence
    described = dict(zip([line.split()[0] for line in lines[0::2]], lines[1::2]))
    assert "scikit-image" in described["natural"] and "CC0" in described["natural"]
    assert "scikit-image" in described["textures"] and "CC0" in described["textures"]


def test_curve_for_any_trainable_method_and_refused_for_flat_ones(npz, capsys):
    path = str(npz[0])
    code, out, err = _run(capsys, ["evaluate", "--method", "autoencoder,supervised", "--data",
                                   path, "--shots", "3", "--seeds", "2", "--widths", "8,4",
                                   "--steps", "6", "--curve", "3", "--json"])
    assert code == 0, err
    recs = [json.loads(line) for line in out.strip().splitlines()]
    assert [(r["method"], r["step"]) for r in recs] == [
        ("autoencoder", 0), ("autoencoder", 3), ("autoencoder", 6),
        ("supervised", 0), ("supervised", 3), ("supervised", 6)]
    assert recs[0]["accuracies"] == recs[3]["accuracies"]  # same starting network
    _assert_user_error(capsys, ["evaluate", "--method", "vae,pca", "--data", path,
                                "--curve", "2"], "pca")


@pytest.mark.slow  # end to end: the demo
def test_demo_writes_a_report_whose_table_matches_its_curves(tmp_path, capsys):
    report = tmp_path / "rep"
    code, out, err = _run(capsys, ["demo", "--datasets", "digits", "--resolution", "8",
                                   "--widths", "16,8", "--steps", "8", "--curve-every", "4",
                                   "--seeds", "2", "--shots", "3", "--report", str(report),
                                   "--methods", "rule,autoencoder,vae,supervised,raw,random",
                                   "--json"])
    assert code == 0, err
    recs = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["method"] for r in recs] == ["rule", "autoencoder", "vae", "supervised", "raw",
                                           "random"]
    saved = json.loads((report / "results.json").read_text())
    curves = saved["curves"]["digits"]
    assert set(curves) == {"rule", "autoencoder", "vae", "supervised"}
    for r in recs:
        if r["method"] in curves:
            assert curves[r["method"]]["steps"] == [0, 4, 8]
            assert curves[r["method"]]["mean"][-1] == pytest.approx(r["mean"])
    assert set(saved["flat"]["digits"]) == {"raw", "random"}
    for name in ("curves.png", "filters_digits_rule.png", "filters_digits_autoencoder.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (report / "README.md").read_text()
    assert "| supervised |" in table and "metaunsup demo --datasets digits" in table


@pytest.mark.parametrize("argv,needle", [
    (["--datasets", "digits", "--methods", "nope"], "nope"),
    (["--datasets", "digits", "--steps", "0"], "--steps"),
    (["--datasets", "digits", "--rule", "/no/such/rule.safetensors"], "no such rule file"),
    (["--datasets", "", "--methods", "raw"], "at least one"),
])
def test_bad_demo_arguments_exit_2(capsys, argv, needle):
    _assert_user_error(capsys, ["demo"] + argv, needle)
