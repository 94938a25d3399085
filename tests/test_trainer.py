"""Meta-training driver: determinism, resume after interruption, corrupt
checkpoints, sharding over devices, and config validation."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.outer import export
from metaunsup.outer import trainer as tr
from metaunsup.outer.config import config_from_dict, config_to_dict, load_config
from metaunsup.tasks.distribution import load_pools
from metaunsup.tasks.pool import build_pool

TINY = {
    "name": "tiny", "seed": 3, "truncation": 3, "meta_batch": 2, "outer_steps": 8,
    "learning_rate": 1e-3, "arch_every": 4, "eval_every": 4, "eval_steps": 4, "eval_tasks": 2,
    "eval_groups": ["tiny"],
    "checkpoint_every": 2, "keep": 2,
    # The cheapest learned rule (learned mix of planes): the driver's behaviour does
    # not depend on the rule, and compiling the full rule's meta-gradient is slow.
    "rule_config": "mix_only",
    "tasks": {"datasets": ["digits"], "resolution": 8, "depth_range": [2, 2],
              "width_range": [8, 16], "width_multiple": 8, "top_width": 8,
              "length_range": [4, 7], "batch_size": 16, "n_way": 3, "shots": 3,
              "max_per_class": 30},
}
WALL = set(tr.WALL_CLOCK_FIELDS)


def _records(workdir):
    lines = Path(workdir, "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(l).items() if k not in WALL} for l in lines]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the tiny config."""
    wd = tmp_path_factory.mktemp("ref")
    tr.meta_train(config_from_dict(TINY), str(wd), progress=False)
    return wd


@pytest.mark.slow  # end to end: meta-training
def test_reference_run_is_sane(reference):
    recs = _records(reference)
    # Step 0 is the untrained rule's validation record.
    assert [r["step"] for r in recs] == list(range(0, 9))
    assert set(recs[0]) >= {"val_accuracy", "val_accuracy_short", "val_ridge_loss"}
    recs = recs[1:]
    # step 1 records what one outer step of the recipe computes from its seeded start
    config = config_from_dict(TINY)
    pool, _ = load_pools(config.tasks, seed=config.seed)
    rule = tr.build_rule(config, tr.architecture(config, 0, pool.dim))
    _, m = tr._meta_step_jit(config, rule, tr._init_trainer_jit(config, rule, pool), pool)
    assert recs[0]["meta_loss"] == pytest.approx(float(m["meta_loss"]), rel=1e-6)
    assert recs[0]["grad_norm"] == pytest.approx(float(m["grad_norm"]), rel=1e-5)
    assert all(r["skipped"] == 0 for r in recs)
    # The architecture is re-sampled every arch_every=4 outer steps, deterministically.
    assert recs[0]["arch"] == recs[3]["arch"]
    assert "val_accuracy" in recs[3] and "val_accuracy" in recs[7]
    assert Path(reference, "rule.safetensors").is_file()


@pytest.mark.slow  # end to end: meta-training
def test_resume_after_interruption_is_bit_exact(reference, tmp_path):
    config = config_from_dict(TINY)
    tr.meta_train(config, str(tmp_path), progress=False, stop_after=5)
    assert len(_records(tmp_path)) == 6  # step 0 and steps 1-5
    tr.meta_train(config, str(tmp_path), progress=False)
    assert _records(tmp_path) == _records(reference)


@pytest.mark.slow  # end to end: meta-training
def test_corrupt_checkpoint_falls_back_to_previous(reference, tmp_path, capsys):
    config = config_from_dict(TINY)
    tr.meta_train(config, str(tmp_path), progress=False, stop_after=6)
    newest = sorted(Path(tmp_path, "checkpoints").iterdir())[-1]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # a torn write
    tr.meta_train(config, str(tmp_path), progress=False)
    err = capsys.readouterr().err
    assert newest.name in err and "older checkpoint" in err
    assert newest.exists()  # never deleted
    assert _records(tmp_path) == _records(reference)


@pytest.mark.slow  # end to end: meta-training
def test_kill_9_then_resume_matches_uninterrupted(reference, tmp_path):
    """A real SIGKILL of the CLI mid-run, then a resumed run in this process."""
    cfg_path = tmp_path / "tiny.toml"
    cfg_path.write_text(_toml(TINY))
    wd = tmp_path / "wd"
    cmd = [sys.executable, "-m", "metaunsup", "meta-train", "--config", str(cfg_path),
           "--workdir", str(wd), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ckpts = wd / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        if ckpts.is_dir() and len(list(ckpts.glob("*.safetensors"))) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished (or failed) before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # it was killed, not finished
    tr.meta_train(load_config(str(cfg_path)), str(wd), progress=False)
    assert _records(wd) == _records(reference)


def _toml(d, prefix=""):
    flat, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            flat.append(f"{k} = {json.dumps(v)}")
    out = "\n".join(flat) + "\n"
    for k, v in tables:
        out += f"[{prefix}{k}]\n" + _toml(v, prefix=f"{prefix}{k}.")
    return out


@pytest.mark.slow  # end to end: meta-training
def test_sharded_meta_batch_matches_single_device():
    if len(jax.devices()) < 2:
        pytest.skip("needs 2 host devices (tests/conftest.py forces them)")
    config = config_from_dict(TINY)
    rng = np.random.default_rng(0)
    pool = build_pool([(rng.random((300, 64), dtype=np.float32), rng.integers(0, 5, 300))])
    rule = tr.build_rule(config, tr.architecture(config, 0, pool.dim))
    state = tr.init_trainer(config, rule, pool)
    single = jax.device_put(state, jax.devices()[0])
    sharded = tr._place(state, config.meta_batch)
    assert len(jax.tree_util.tree_leaves(sharded.tasks)[0].sharding.device_set) == 2
    out1, m1 = tr._meta_step_jit(config, rule, single, pool)
    out2, m2 = tr._meta_step_jit(config, rule, sharded, pool)
    np.testing.assert_allclose(m1["grad_norm"], m2["grad_norm"], rtol=1e-4)
    chex.assert_trees_all_close(out1.meta_params, out2.meta_params, rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # end to end: meta-training
def test_nonfinite_meta_gradient_is_skipped():
    config = config_from_dict(TINY)
    rng = np.random.default_rng(0)
    pool = build_pool([(rng.random((300, 64), dtype=np.float32), rng.integers(0, 5, 300))])
    rule = tr.build_rule(config, tr.architecture(config, 0, pool.dim))
    state = tr.init_trainer(config, rule, pool)
    # A NaN meta-parameter gives a NaN meta-gradient: the step is skipped and counted.
    state = state._replace(meta_params={**state.meta_params,
                                        "bias": {**state.meta_params["bias"], "b": jnp.nan}})
    assert "unit" not in state.meta_params  # mix_only: read-outs are the activations
    new, metrics = tr._meta_step_jit(config, rule, tr._place(state, config.meta_batch), pool)
    assert int(new.skipped) == 1
    np.testing.assert_array_equal(np.asarray(new.meta_params["mix"]["w"]),
                                  np.asarray(state.meta_params["mix"]["w"]))


@pytest.mark.parametrize("override, needle", [
    ({"estimator": "sgd"}, "estimator"),
    ({"tasks": {"datasets": ["mnist"]}}, "held out"),
    ({"truncation": 0}, "truncation"),
    ({"bogus": 1}, "unknown config key"),
])
def test_bad_config_is_one_line_error(override, needle):
    data = {**TINY, **override}
    if "tasks" in override:
        data["tasks"] = {**TINY["tasks"], **override["tasks"]}
    with pytest.raises(UserError, match=needle) as e:
        config_from_dict(data)
    assert "\n" not in str(e.value)


def test_shipped_configs_parse():
    from metaunsup.outer.config import available_configs

    assert {"smoke", "recipe_small", "recipe_small_v2", "recipe_paper"} <= set(available_configs())
    for name in available_configs():
        config = load_config(name, ["outer_steps=3", "tasks.batch_size=8"])
        assert config.outer_steps == 3 and config.tasks.batch_size == 8
    with pytest.raises(UserError, match="unknown config"):
        load_config("no_such_recipe")


@pytest.mark.slow  # end to end: meta-training
def test_export_rule_selects_by_validation_among_kept_checkpoints(reference, tmp_path, capsys):
    from metaunsup.cli import main
    from metaunsup.run.rulefile import load_rule_file

    # keep=2, checkpoints every 2 steps, validation every 4: kept 6 and 8, validated 4 and 8.
    out = tmp_path / "best.safetensors"
    info = export.export_rule(str(reference), str(out))
    assert info["step"] == 8 and info["val_accuracy"] is not None
    best, header = load_rule_file(out)
    final, _ = load_rule_file(Path(reference, "rule.safetensors"))  # written at step 8
    chex.assert_trees_all_equal(best, final)
    assert header["provenance"]["selected_by"] == "val_accuracy"
    assert header["provenance"]["meta_steps"] == 8
    assert export.export_rule(str(reference), str(out), step=6)["val_accuracy"] is None
    assert main(["export-rule", "--workdir", str(reference), "--out", str(out), "--step", "5",
                 "--force"]) == 2  # (out exists: replacing it takes --force)
    assert "no checkpoint at step 5" in capsys.readouterr().err


@pytest.mark.slow  # end to end: meta-training
def test_warm_start_seeds_step_zero_from_a_rule_file(reference, tmp_path):
    """``warm_start``: step 0 holds the source's shared meta-parameters (rules.warm_start)."""
    from metaunsup.rules.loading import load_rule
    from metaunsup.rules.warm_start import SHARED_PLANES

    source = load_rule(str(Path(reference, "rule.safetensors")))
    config = config_from_dict({**TINY, "seed": 7,
                               "warm_start": str(Path(reference, "rule.safetensors"))})
    tr.meta_train(config, str(tmp_path), progress=False, stop_after=2)
    _, rule, meta, step, _ = export.checkpoint_rule(str(tmp_path), step=0)
    labels = rule.config.plane_labels
    shared = np.array([lab in SHARED_PLANES for lab in labels])
    assert shared.any() and not shared.all()
    src_w = np.asarray(source.meta_params["mix"]["w"])
    np.testing.assert_array_equal(np.asarray(meta["mix"]["w"])[shared], src_w[shared])
    np.testing.assert_array_equal(np.asarray(meta["mix"]["w"])[~shared], 0.0)
    # (init_meta_params adds N(0, 0.01^2) noise to every mixing weight, so these
    # exact zeros and copies come from the warm start.)
    # 'init:FILE' rebuilds exactly this step 0 from the exported file's provenance
    # (seed and warm start), without the workdir.
    out = tmp_path / "step2.safetensors"
    export.export_rule(str(tmp_path), str(out), step=2)
    trained, start = load_rule(str(out)), load_rule(f"init:{out}")
    assert start.header["provenance"]["meta_steps"] == 0
    chex.assert_trees_all_equal(start.meta_params, meta)
    assert not all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(trained.meta_params), jax.tree.leaves(meta)))


@pytest.mark.slow  # end to end: meta-training
def test_init_key_picks_the_draw_of_the_meta_parameters_and_init_spec_follows_it():
    rng = np.random.default_rng(0)
    pool = build_pool([(rng.random((300, 64), dtype=np.float32), rng.integers(0, 5, 300))])
    from metaunsup.rules.loading import LoadedRule, initial_rule

    for init_key, expected in ((-1, jax.random.split(jax.random.PRNGKey(3), 3)[0]),
                               (5, jax.random.PRNGKey(5))):
        config = config_from_dict({**TINY, "rule_config": "small", "init_key": init_key})
        rule = tr.build_rule(config, tr.architecture(config, 0, pool.dim))
        got = tr.init_trainer(config, rule, pool).meta_params
        want = rule.init_meta_params(expected)
        rebuilt = initial_rule(LoadedRule("learned", dataclasses.asdict(rule.config), want, {
            "provenance": {"seed": config.seed, "config": config_to_dict(config)}})).meta_params
        for a, b, c in zip(jax.tree.leaves(got), jax.tree.leaves(want), jax.tree.leaves(rebuilt)):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
    # the two draws differ (the small configuration's initialisation is random)
    assert not all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(rule.init_meta_params(jax.random.PRNGKey(5))),
        jax.tree.leaves(rule.init_meta_params(jax.random.split(jax.random.PRNGKey(3), 3)[0]))))
    with pytest.raises(UserError, match="init_key"):
        config_from_dict({**TINY, "init_key": -2})


def test_bad_warm_start_file_fails_before_the_first_write(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a rule file")
    config = config_from_dict({**TINY, "warm_start": str(bad)})
    with pytest.raises(UserError, match="bad.safetensors"):
        tr.meta_train(config, str(tmp_path / "wd"), progress=False, stop_after=1)
    assert not (tmp_path / "wd").exists()
