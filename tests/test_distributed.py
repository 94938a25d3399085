"""Multi-process meta-training (outer.distributed): settings, and two real processes.

The end-to-end test starts two ``metaunsup meta-train --distributed`` processes on
127.0.0.1 (one CPU device each, Gloo collectives over loopback) and checks that
they write what a single process with two devices writes: the same metrics
lines and the same checkpoint, that only process 0 writes its run directory,
and that a resumed two-process run (from process 0's checkpoint, sent to
process 1) continues exactly.
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from metaunsup.cli import main
from metaunsup.errors import UserError
from metaunsup.outer import distributed as dist
from metaunsup.outer import trainer as tr
from metaunsup.outer.config import config_from_dict
from metaunsup.run import load_checkpoint

TINY = {
    "name": "tiny", "seed": 3, "truncation": 3, "meta_batch": 2, "outer_steps": 4,
    # No validation: what is checked here is the outer step across processes.
    "learning_rate": 1e-3, "arch_every": 4, "eval_every": 0, "eval_steps": 4, "eval_tasks": 2,
    "checkpoint_every": 2, "keep": 2, "rule_config": "mix_only",
    "tasks": {"datasets": ["digits"], "resolution": 8, "depth_range": [2, 2],
              "width_range": [8, 16], "width_multiple": 8, "top_width": 8,
              "length_range": [4, 7], "batch_size": 16, "n_way": 3, "shots": 3,
              "max_per_class": 30},
}
WALL = set(tr.WALL_CLOCK_FIELDS)


def test_settings_come_from_flags_then_environment():
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4",
           "JAX_PROCESS_ID": "3"}
    assert dist.resolve_spec(environ=env) == dist.DistributedSpec("10.0.0.1:1234", 4, 3)
    assert dist.resolve_spec("h:99", 2, 0, environ=env) == dist.DistributedSpec("h:99", 2, 0)
    # Nothing given: left to JAX's cluster detection (Slurm, Open MPI, ...).
    assert dist.resolve_spec(environ={}) == dist.DistributedSpec(None, None, None)


@pytest.mark.parametrize("kwargs, needle", [
    ({"coordinator": "nohost", "num_processes": 2, "process_id": 0}, "HOST:PORT"),
    ({"coordinator": "h:0", "num_processes": 2, "process_id": 0}, "HOST:PORT"),
    ({"coordinator": "h:1", "num_processes": 2, "process_id": 2}, "out of range"),
    ({"coordinator": "h:1", "num_processes": "two", "process_id": 0}, "integer"),
    ({"coordinator": "h:1", "num_processes": 0, "process_id": 0}, ">= 1"),
    ({"num_processes": 2, "process_id": 1}, "--coordinator"),
    ({"coordinator": "h:1", "num_processes": 2}, "--process-id"),
])
def test_bad_settings_are_one_line_user_errors(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        dist.resolve_spec(environ={}, **kwargs)


def test_cli_refuses_cluster_flags_without_distributed(tmp_path, capsys):
    rc = main(["meta-train", "--config", "smoke", "--workdir", str(tmp_path / "w"),
               "--coordinator", "127.0.0.1:1"])
    assert rc == 2 and "needs --distributed" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_single_process_helpers_are_identities():
    dist.initialize(dist.DistributedSpec(num_processes=1, process_id=0))  # nothing to join
    assert jax.process_count() == 1
    tree = {"a": np.arange(3, dtype=np.float32), "b": np.int32(7)}
    assert dist.is_writer()
    for out in (dist.broadcast(tree), dist.to_host(tree)):
        np.testing.assert_array_equal(out["a"], tree["a"])
        assert out["b"] == 7
    assert dist.on_writer(lambda: 5) == 5
    assert dist.restore_everywhere(tree, 3, lambda step: None) is tree


def _toml(d, prefix=""):
    flat = [f"{k} = {json.dumps(v)}" for k, v in d.items() if not isinstance(v, dict)]
    out = "\n".join(flat) + "\n"
    for k, v in d.items():
        if isinstance(v, dict):
            out += f"[{prefix}{k}]\n" + _toml(v, prefix=f"{prefix}{k}.")
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(workdir):
    lines = Path(workdir, "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(l).items() if k not in WALL} for l in lines]


def _launch(config_path, workdirs, timeout=240):
    """Two meta-train processes on loopback; returns once both have exited."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1 "
               "--xla_backend_optimization_level=0")
    procs = [subprocess.Popen(
        [sys.executable, "-m", "metaunsup", "meta-train", "--config", str(config_path),
         "--workdir", str(wd), "--no-progress", "--distributed",
         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i, wd in enumerate(workdirs)]
    deadline = time.time() + timeout
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=max(1.0, deadline - time.time()))[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()  # SIGKILL: JAX's preemption notifier swallows SIGTERM
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


@pytest.mark.slow  # ~1-2 minutes on 2 cores: two fresh processes compile the meta-step
def test_two_processes_match_one_process_and_resume(tmp_path):
    if len(jax.devices()) != 2:
        pytest.skip("the single-process reference needs 2 host devices (tests/conftest.py)")
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(_toml(TINY))
    # Process 1 gets its own directory, as on a host without a shared file system.
    wd0, wd1 = tmp_path / "p0", tmp_path / "p1"
    outs = _launch(cfg, [wd0, wd1])
    ref = tmp_path / "ref"
    last = tr.meta_train(config_from_dict(TINY), str(ref), progress=False)

    assert not wd1.exists(), "only process 0 writes the run directory"
    assert _records(wd0) == _records(ref)
    # Both processes end on the same record (metrics are replicated, not per process).
    finals = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    assert {k: v for k, v in finals[1].items() if k not in WALL} == \
        {k: v for k, v in last.items() if k not in WALL}
    a, b = (load_checkpoint(Path(w, "checkpoints", "ckpt_0000000004.safetensors"))[0]
            for w in (wd0, ref))
    chex.assert_trees_all_equal(a, b)

    # Resume: drop the newest checkpoint; process 0 restores step 2 and sends it.
    Path(wd0, "checkpoints", "ckpt_0000000004.safetensors").unlink()
    _launch(cfg, [wd0, wd1])
    assert not wd1.exists()
    assert _records(wd0) == _records(ref)
