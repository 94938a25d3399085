"""One regression test per class of bad input or fault (issue 13): a one-line error
with exit status 2, never a traceback, a crash, a silent acceptance or a write before
the input is validated. Class 1 (Ctrl-C) is tests/test_interrupt.py."""
import json
from pathlib import Path

import jax
import numpy as np
import pytest

import metaunsup
from metaunsup.cli import main
from metaunsup.errors import UserError
from metaunsup.run import Workdir

A_FILE = Path(__file__)  # an existing regular file: nothing can be created under it


def _one_line_error(capsys, argv, needle):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metaunsup: error:"), err
    assert needle in lines[0], lines[0]
    return out


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.random((40, 8, 8), dtype=np.float32), y_train=np.arange(40) % 3,
                  x_test=rng.random((30, 8, 8), dtype=np.float32), y_test=np.arange(30) % 3)
    return tmp_path_factory.mktemp("data"), arrays


def _save(folder, arrays, **changes):
    path = folder / "case.npz"
    np.savez(path, **{**arrays, **changes})
    return str(path)


# ----------------------------------------------------------------------------- 2. failed start

def test_a_failed_start_writes_nothing_and_a_config_change_is_explicit(tmp_path, capsys):
    wd = tmp_path / "wd"
    _one_line_error(capsys, ["meta-train", "--config", "smoke", "--workdir", str(wd),
                             "--set", 'tasks.datasets=["nope"]'], "unknown dataset 'nope'")
    assert not wd.exists()  # so the corrected command is not refused
    run = Workdir(wd)
    run.write_config({"seed": 0, "outer_steps": 10})
    with pytest.raises(UserError, match="--allow-config-change"):
        run.write_config({"seed": 0, "outer_steps": 20})
    run.write_config({"seed": 0, "outer_steps": 20}, allow_change=True)
    assert json.loads((wd / "config.json").read_text())["outer_steps"] == 20
    assert json.loads((wd / "config.previous-1.json").read_text())["outer_steps"] == 10


# ----------------------------------------------------------------------------- 3. missing history

def test_resume_without_metrics_history_is_refused(tmp_path, capsys):
    from metaunsup.outer import trainer as tr
    from metaunsup.outer.config import config_from_dict, config_to_dict
    from metaunsup.tasks.distribution import load_pools

    config = config_from_dict({
        "name": "tiny", "seed": 3, "truncation": 3, "meta_batch": 2, "outer_steps": 8,
        "arch_every": 100, "eval_every": 0, "checkpoint_every": 2, "rule_config": "mix_only",
        "tasks": {"datasets": ["digits"], "resolution": 8, "depth_range": [2, 2],
                  "width_range": [8, 8], "width_multiple": 8, "top_width": 8,
                  "length_range": [4, 7], "batch_size": 16, "n_way": 3, "shots": 3,
                  "max_per_class": 30}})
    pool, _ = load_pools(config.tasks, seed=config.seed)
    rule = tr.build_rule(config, tr.architecture(config, 0, pool.dim))
    template = jax.eval_shape(lambda: tr.init_trainer(config, rule, pool))
    zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template)
    zeros = zeros._replace(step=np.asarray(2, zeros.step.dtype))
    run = Workdir(tmp_path)
    run.write_config(config_to_dict(config))
    run.checkpoints.save(2, zeros)  # a checkpoint, but metrics.jsonl was deleted
    with pytest.raises(UserError, match=r"no record of step\(s\) 1-2 .* not resumed"):
        tr.meta_train(config, str(tmp_path), progress=False)
    assert not run.metrics_path.exists()  # nothing was rewritten
    _one_line_error(capsys, ["export-rule", "--workdir", str(tmp_path), "--out",
                             str(tmp_path / "r.safetensors")], "metrics.jsonl")


# ----------------------------------------------------------------------------- 4. rule tensors

def test_rule_file_tensors_are_checked_against_its_config(tmp_path, capsys):
    from metaunsup.run.rulefile import save_rule

    good = metaunsup.load_rule("random-init")
    meta = jax.tree_util.tree_map(np.asarray, good.meta_params)

    def write(tree):
        path = tmp_path / "bad.safetensors"
        save_rule(path, tree, rule_name="learned", rule_config=good.config, provenance={})
        return path  # a valid checksum: only the tensors are wrong

    wrong_shape = {**meta, "bias": {**meta["bias"], "b": np.zeros(3, np.float32)}}
    missing = {**meta, "bias": {}}
    wrong_dtype = {**meta, "bias": {**meta["bias"], "b": np.zeros((), np.int32)}}
    extra = {**meta, "extra": np.zeros(2, np.float32)}
    for tree, needle in ((wrong_shape, "'bias/b' has shape (3,)"), (missing, "lacks tensor"),
                         (wrong_dtype, "dtype int32"), (extra, "has tensor 'extra'")):
        with pytest.raises(UserError, match="bad.safetensors") as e:
            metaunsup.load_rule(write(tree))
        assert needle in str(e.value) and "\n" not in str(e.value)
    # 8. and the command line says so before printing the table's header
    out = _one_line_error(capsys, ["evaluate", "--method", "raw,rule", "--rule",
                                   str(write(wrong_shape)), "--dataset", "digits"], "bias/b")
    assert out == ""


# ----------------------------------------------------------------------------- 5. paths

@pytest.mark.parametrize("argv,needle", [
    (["meta-train", "--config", "smoke", "--workdir", str(A_FILE / "wd")], "is a file"),
    (["meta-train", "--config", "smoke", "--workdir", str(A_FILE)], "not a directory"),
    (["export-rule", "--workdir", str(A_FILE.parent / "no_such_run"), "--out", "x"],
     "no such run directory"),
    (["export-rule", "--workdir", str(A_FILE.parent), "--out", str(A_FILE / "r")], "is a file"),
    (["demo", "--datasets", "digits", "--methods", "raw", "--report", str(A_FILE / "r")],
     "is a file"),
    (["meta-train", "--config", "smoke", "--workdir", "/proc/metaunsup-wd"], "cannot write"),
])
def test_unwritable_paths_are_one_line_errors(capsys, argv, needle):
    _one_line_error(capsys, argv, needle)


def test_writing_under_a_file_or_a_pseudo_file_system_is_one_line():
    from metaunsup.run.checkpoint import atomic_write_bytes

    for path, needle in ((A_FILE / "x.bin", "exists and is not a directory"),
                         (Path("/proc/metaunsup-x.bin"), "cannot write")):
        with pytest.raises(UserError, match=needle) as e:
            atomic_write_bytes(path, b"data")
        assert "\n" not in str(e.value)
    net = metaunsup.init_network(4, (3,), key=jax.random.PRNGKey(0))
    with pytest.raises(UserError, match="not a directory"):
        metaunsup.save_network(A_FILE / "net.safetensors", net)


# ----------------------------------------------------------------------------- 6. numbers, lists

@pytest.mark.parametrize("extra,needle", [
    (["--widths", "16,,8"], "none empty"),
    (["--max-test", "0"], "--max-test"),
    (["--method", "pca", "--option", "bogus=1"], "--option bogus: not read by method pca"),
    (["--method", "pca", "--option", "whiten=maybe"], "expected true or false"),
    (["--method", "pca", "--option", "components=-3"], "must be > 0"),
    (["--first-seed", "-1"], "--first-seed must be >= 0"),
    (["--rule", "random-init"], "--rule applies to the method 'rule'"),
])
def test_cli_values_are_validated_where_parsed(npz, capsys, extra, needle):
    folder, arrays = npz
    argv = ["evaluate", "--method", "raw", "--data", _save(folder, arrays)] + extra
    _one_line_error(capsys, argv, needle)


def test_one_seed_prints_no_nan_interval(npz, capsys):
    folder, arrays = npz
    assert main(["evaluate", "--method", "raw", "--data", _save(folder, arrays),
                 "--shots", "2", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "(1 seed)" in out and "nan" not in out


# ----------------------------------------------------------------------------- 7. data

def test_bad_data_is_refused_at_the_boundary(npz, capsys):
    folder, arrays = npz
    for changes, needle in ((dict(x_train=np.zeros((0, 8, 8))), "x_train: the array is empty"),
                            (dict(x_test=np.zeros((0, 64))), "x_test: the array is empty"),
                            (dict(y_test=np.arange(30) % 5), "label(s) [3, 4] that y_train")):
        _one_line_error(capsys, ["evaluate", "--method", "raw", "--data",
                                 _save(folder, arrays, **changes)], needle)
    x = arrays["x_train"].reshape(40, 64)
    net = metaunsup.train("oja", x, widths=(8, 4), steps=2, batch_size=8, progress=False)
    for call, needle in (
            (lambda: metaunsup.features(net, x[:, :10]), "x has 10 features"),
            (lambda: metaunsup.features("net", x), "must be a metaunsup Network"),
            (lambda: metaunsup.train(42, x), "a rule is a file path"),
            (lambda: metaunsup.train("oja", "x.npy"), "x: expected a rank-2"),
            (lambda: metaunsup.train("oja", x, widths=16), "widths must be a sequence"),
            (lambda: metaunsup.train("oja", np.zeros((0, 64))), "empty"),
            (lambda: metaunsup.load_rule(3.5), "a rule is a file path")):
        with pytest.raises(UserError, match=needle):
            call()


def test_uint8_inputs_are_scaled_like_the_command_line():
    from metaunsup.eval.userdata import as_inputs

    rng = np.random.default_rng(1)
    x8 = rng.integers(0, 256, (64, 12), dtype=np.uint8)
    xf = x8.astype(np.float32) / 255.0
    np.testing.assert_array_equal(as_inputs(x8), xf)
    a = metaunsup.train("oja", x8, widths=(6,), steps=3, batch_size=16, progress=False)
    b = metaunsup.train("oja", xf, widths=(6,), steps=3, batch_size=16, progress=False)
    np.testing.assert_allclose(metaunsup.features(a, x8), metaunsup.features(b, xf),
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- 8. header order

def test_demo_checks_its_rule_before_printing_anything(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    out = _one_line_error(capsys, ["demo", "--datasets", "digits", "--resolution", "8",
                                   "--methods", "raw,rule", "--rule", str(junk),
                                   "--report", str(tmp_path / "rep")], "junk.safetensors")
    assert out == "" and not (tmp_path / "rep").exists()
