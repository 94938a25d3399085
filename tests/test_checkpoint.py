"""Checkpoints, rule files and the run directory: round trips, corruption, resume."""
import json
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.run import (
    CheckpointManager,
    CorruptFileError,
    Workdir,
    load_checkpoint,
    load_rule_file,
    make_provenance,
    save_checkpoint,
    save_rule,
)
from metaunsup.run.rulefile import RULE_FORMAT
from metaunsup.run.checkpoint import write_tree


class Pair(NamedTuple):
    w: np.ndarray
    b: np.ndarray


def make_tree(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "params": (Pair(rng.normal(size=(3, 2)).astype(np.float32),
                        np.zeros((2,), np.float32)),
                   Pair(rng.normal(size=(2, 1)).astype(np.float32), np.ones((1,), np.float32))),
        "opt": [np.int32(7), {"mu": rng.normal(size=(4,)).astype(np.float32)}],
        "counts": np.arange(5, dtype=np.uint32),
        "mask": np.array([[True, False]]),
        "step": np.asarray(seed, np.int32),
        "empty": np.zeros((0, 3), np.float32),
        "key": jax.random.key(seed),
    }


def assert_trees_equal(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        if jnp.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_round_trip_with_template(tmp_path):
    tree = make_tree()
    save_checkpoint(tmp_path / "c.safetensors", tree, {"step": 3, "loss": np.float32(0.5)})
    restored, meta = load_checkpoint(tmp_path / "c.safetensors", template=make_tree(seed=1))
    assert_trees_equal(restored, tree)
    assert isinstance(restored["params"][0], Pair)
    assert meta == {"step": 3, "loss": 0.5}
    # The key is a typed key again and still generates the same numbers.
    np.testing.assert_array_equal(jax.random.normal(restored["key"], (3,)),
                                  jax.random.normal(tree["key"], (3,)))
    # A jax.eval_shape template works too.
    abstract = jax.eval_shape(lambda: jax.tree_util.tree_map(jnp.asarray, tree))
    assert_trees_equal(load_checkpoint(tmp_path / "c.safetensors", abstract)[0], tree)


def test_round_trip_without_template_gives_nested_dicts(tmp_path):
    tree = make_tree()
    save_checkpoint(tmp_path / "c.safetensors", tree)
    restored, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert meta == {}
    np.testing.assert_array_equal(restored["params"]["1"]["w"], tree["params"][1].w)
    assert restored["opt"]["0"].dtype == np.int32 and restored["opt"]["0"].shape == ()
    assert restored["mask"].dtype == np.bool_
    assert restored["counts"].dtype == np.uint32
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]),
                                  jax.random.key_data(tree["key"]))


@pytest.mark.parametrize("edit, needles", [
    (lambda t: t["params"][0]._replace(w=np.zeros((4, 2), np.float32)),
     ["'params/0/w'", "(3, 2)", "(4, 2)"]),
    (lambda t: t["params"][0]._replace(w=np.zeros((3, 2), np.float64)),
     ["'params/0/w'", "float64"]),
])
def test_template_shape_or_dtype_mismatch_names_the_leaf(tmp_path, edit, needles):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, make_tree())
    template = make_tree()
    template["params"] = (edit(template), template["params"][1])
    with pytest.raises(UserError) as excinfo:
        load_checkpoint(path, template)
    one_line_error(excinfo, str(path), *needles)


def test_template_missing_or_extra_leaf(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"a": np.ones(2), "b": np.ones(3)})
    with pytest.raises(UserError) as excinfo:
        load_checkpoint(path, {"a": np.ones(2), "b": np.ones(3), "c": np.ones(1)})
    one_line_error(excinfo, "'c'", "missing")
    with pytest.raises(UserError) as excinfo:
        load_checkpoint(path, {"a": np.ones(2)})
    one_line_error(excinfo, "'b'")


def test_garbage_bitflip_and_wrong_kind_are_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CorruptFileError) as excinfo:
        load_checkpoint(garbage)
    one_line_error(excinfo, str(garbage))
    # Same size, one data byte flipped: only the checksum can tell.
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": np.arange(64, dtype=np.float32)})
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError) as excinfo:
        load_checkpoint(path)
    one_line_error(excinfo, str(path), "checksum")
    with pytest.raises(UserError) as excinfo:
        load_checkpoint(tmp_path / "missing.safetensors")
    one_line_error(excinfo, "missing.safetensors")


def test_manager_prunes_and_falls_back_past_a_truncated_checkpoint(tmp_path, capsys):
    mgr = CheckpointManager(tmp_path / "ckpts", keep=2)
    assert mgr.latest() is None and mgr.restore_latest() is None
    for step in (10, 20, 30, 40):
        mgr.save(step, make_tree(step), {"step": step})
    assert mgr.all_steps() == [30, 40]
    assert list((tmp_path / "ckpts").glob("*.tmp")) == []
    bad = mgr.path_for(40)
    bad.write_bytes(bad.read_bytes()[:-7])  # a crash mid-write without atomic rename
    restored = mgr.restore_latest(template=make_tree())
    assert restored.step == 30 and restored.meta == {"step": 30}
    assert_trees_equal(restored.tree, make_tree(30))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "warning" in err[0]
    assert bad.exists()  # never deleted
    # Resuming from 30 and saving 35 keeps the newer (bad) file and prunes older ones.
    mgr.save(35, make_tree(35))
    assert mgr.all_steps() == [30, 35, 40]
    mgr.path_for(35).write_bytes(b"")
    mgr.path_for(30).write_bytes(b"\x00" * 100)
    with pytest.raises(UserError) as excinfo:
        mgr.restore_latest()
    one_line_error(excinfo, "none of the 3")
    with pytest.raises(UserError):
        CheckpointManager(tmp_path, keep=0)


def test_template_mismatch_is_not_skipped_as_corruption(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=3)
    mgr.save(1, {"w": np.ones(2, np.float32)})
    mgr.save(2, {"w": np.ones(2, np.float32)})
    with pytest.raises(UserError) as excinfo:
        mgr.restore_latest(template={"w": np.ones(3, np.float32)})
    one_line_error(excinfo, "ckpt_0000000002", "'w'")


def test_rule_file_round_trip_and_header(tmp_path):
    path = tmp_path / "rule.safetensors"
    meta_params = {"top": {"w0": np.ones((4, 3), np.float32)}, "unit": {"b": np.zeros(3,
                                                                                    np.float32)}}
    prov = make_provenance(recipe="smoke", seed=0, meta_steps=5, wall_time_s=1.5)
    save_rule(path, meta_params, rule_name="metz", rule_config={"channels": 8, "widths": (1, 2)},
              provenance=prov)
    loaded, header = load_rule_file(path)
    assert_trees_equal(loaded, meta_params)
    assert header["format"] == RULE_FORMAT == "metaunsup-rule"
    assert header["format_version"] == 1 and header["rule"] == "metz"
    assert header["rule_config"] == {"channels": 8, "widths": [1, 2]}
    for field in ("recipe", "seed", "meta_steps", "wall_time_s", "commit", "date",
                  "jax_version"):
        assert field in header["provenance"]
    assert header["provenance"]["seed"] == 0
    loaded, _ = load_rule_file(path, template=meta_params)
    assert_trees_equal(loaded, meta_params)


def test_rule_file_refuses_bad_files(tmp_path):
    ckpt = tmp_path / "ckpt.safetensors"
    save_checkpoint(ckpt, {"w": np.ones(2)})
    newer = tmp_path / "newer.safetensors"
    write_tree(newer, {"w": np.ones(2)}, {"format": RULE_FORMAT, "format_version": 2,
                                          "rule": "x", "rule_config": {}, "provenance": {}})
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x08" + b"\x00" * 7 + b"{broken}")
    for path, needle in [(ckpt, "metaunsup-rule"), (newer, "newer"), (corrupt, "corrupt"),
                         (tmp_path / "none.safetensors", "no such")]:
        with pytest.raises(UserError) as excinfo:
            load_rule_file(path)
        one_line_error(excinfo, str(path), needle)


def run_steps(wd, steps, every=3):
    """A toy driver: metrics line of step s, then checkpoint s every ``every`` steps."""
    for s in steps:
        wd.append_metrics({"step": s, "loss": 1.0 / (s + 1), "vec": np.arange(2) * s})
        if s % every == 0:
            wd.checkpoints.save(s, {"theta": np.full(2, s, np.float32)})


def test_workdir_resume_rewrites_metrics_identically(tmp_path):
    clean = Workdir(tmp_path / "clean")
    run_steps(clean, range(10))
    crashed = Workdir(tmp_path / "crashed")
    run_steps(crashed, range(8))
    with open(crashed.metrics_path, "a") as f:
        f.write('{"step": 8, "lo')  # killed mid-line
    assert [r["step"] for r in crashed.read_metrics()] == list(range(8))  # tolerated
    resumed = Workdir(tmp_path / "crashed")
    restored = resumed.resume(template={"theta": np.zeros(2, np.float32)})
    assert restored.step == 6
    np.testing.assert_array_equal(restored.tree["theta"], [6, 6])
    assert [r["step"] for r in resumed.read_metrics()] == list(range(7))
    run_steps(resumed, range(7, 10))
    assert resumed.metrics_path.read_bytes() == clean.metrics_path.read_bytes()
    assert clean.read_metrics()[3] == {"step": 3, "loss": 0.25, "vec": [0, 3]}


def test_workdir_layout_config_and_no_checkpoint_resume(tmp_path):
    wd = Workdir(tmp_path / "run")
    for d in ("checkpoints", "eval", "report"):
        assert (tmp_path / "run" / d).is_dir()
    assert wd.rule_path == tmp_path / "run" / "rule.safetensors"
    wd.write_config({"lr": 1e-3, "widths": (64, 32), "est": {"kind": "pes"}})
    wd.write_config({"lr": 1e-3, "widths": [64, 32], "est": {"kind": "pes"}})  # same config
    with pytest.raises(UserError) as excinfo:
        wd.write_config({"lr": 3e-3, "widths": (64, 32), "est": {"kind": "tbptt"}})
    one_line_error(excinfo, "config.json", "est.kind", "lr")
    wd.write_config({"lr": 3e-3}, allow_change=True)
    assert json.loads(wd.config_path.read_text()) == {"lr": 3e-3}
    wd.append_metrics({"event": "start"})
    wd.append_metrics({"step": 0, "loss": 1.0})
    assert wd.resume() is None
    assert wd.read_metrics() == [{"event": "start"}]
    with pytest.raises(UserError):
        Workdir(tmp_path / "absent", create=False)
    with open(wd.metrics_path, "a") as f:
        f.write('{"step": 5, "lo')  # a crash mid-line, then a new process appends
    Workdir(tmp_path / "run", create=False).append_metrics({"step": 1})
    assert wd.read_metrics() == [{"event": "start"}, {"step": 1}]
    wd.metrics_path.write_text('{"step": 0}\nnot json\n{"step": 1}\n')
    with pytest.raises(UserError) as excinfo:
        wd.read_metrics()
    one_line_error(excinfo, "metrics.jsonl:2")


def test_no_pickle_in_these_modules():
    src = Path(__file__).resolve().parents[1] / "src" / "metaunsup"
    mine = ["run/__init__.py", "run/checkpoint.py", "run/rulefile.py", "run/workdir.py",
            "outer/__init__.py", "outer/estimators.py", "inner/task.py"]
    for name in mine:
        assert "pickle" not in (src / name).read_text(), name
