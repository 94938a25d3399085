"""Ctrl-C during meta-training: a real SIGINT to the command at three points.

Each case checks exit status 130, a one-line message that names the newest
checkpoint truthfully (the files are read back), and a run directory that a
re-run of the same command resumes to the end.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from metaunsup.run.checkpoint import CheckpointManager

# The trainer tests' tiny recipe (cheapest learned rule, 8x8 digits), one architecture
# and no validation, so that few programs are compiled.
TINY_TOML = textwrap.dedent("""\
    name = "tiny"
    seed = 3
    truncation = 3
    meta_batch = 2
    outer_steps = 6
    learning_rate = 1e-3
    arch_every = 100
    eval_every = 0
    checkpoint_every = 2
    keep = 2
    rule_config = "mix_only"
    [tasks]
    datasets = ["digits"]
    resolution = 8
    depth_range = [2, 2]
    width_range = [8, 8]
    width_multiple = 8
    top_width = 8
    length_range = [4, 7]
    batch_size = 16
    n_way = 3
    shots = 3
    max_per_class = 30
    """)
STEPS = 6

# Runs the CLI; with a MARKER file given, every checkpoint write first creates the
# marker and then takes SLOW seconds, so that a SIGINT lands inside the write.
LAUNCH = textwrap.dedent("""\
    import os, sys, time
    marker, slow = os.environ.get("MARKER"), float(os.environ.get("SLOW", "0"))
    if marker:
        from metaunsup.run import checkpoint
        real = checkpoint.atomic_write_bytes
        def slow_write(path, data):
            if "ckpt_" in str(path) and "ckpt_0000000000." not in str(path):  # not step 0
                open(marker, "a").write(str(path) + "\\n")
                time.sleep(slow)
            real(path, data)
        checkpoint.atomic_write_bytes = slow_write
    from metaunsup.cli import main
    sys.exit(main(sys.argv[1:]))
    """)


def _start(tmp_path, name, env=None):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML)
    wd = tmp_path / name
    cmd = [sys.executable, "-c", LAUNCH, "meta-train", "--config", str(cfg), "--workdir",
           str(wd), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    return proc, wd, cmd


def _wait_for(proc, condition, what, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"finished before {what}: {proc.communicate()}"
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _interrupt(proc):
    assert proc.poll() is None, "the process must still be running when interrupted"
    proc.send_signal(signal.SIGINT)
    t0 = time.time()
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err, time.time() - t0


def _metric_steps(wd):
    path = wd / "metrics.jsonl"
    if not path.exists():
        return []
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]
    return [s for s in steps if s > 0]  # (a step-0 validation record may precede them)


def _check_message(err, wd):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("metaunsup: interrupted;"), err
    assert "Traceback" not in err and "Segmentation" not in err
    steps = CheckpointManager(wd / "checkpoints").all_steps()
    if steps:
        assert f"newest checkpoint is step {steps[-1]} of {STEPS}" in lines[0], (lines[0], steps)
        CheckpointManager(wd / "checkpoints").restore(steps[-1])  # complete and readable
    else:
        assert "no checkpoint written yet" in lines[0], lines[0]
    return steps


def _resume_to_end(cmd, wd):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert _metric_steps(wd) == list(range(1, STEPS + 1))


@pytest.mark.slow  # a subprocess
def test_sigint_while_starting_or_compiling_exits_130_with_nothing_saved(tmp_path):
    proc, wd, _ = _start(tmp_path, "early")
    _wait_for(proc, lambda: (wd / "config.json").exists(), "config.json")
    code, _, err, seconds = _interrupt(proc)
    assert code == 130, err
    assert seconds < 10  # does not wait for the compilation to finish
    assert _check_message(err, wd) in ([], [0])  # (the untrained rule may be saved as step 0)


@pytest.mark.slow  # three processes, ~25 s of CPU
def test_sigint_during_a_checkpoint_write_then_between_steps_then_resume(tmp_path):
    # 1. Interrupted inside the first checkpoint write: the write finishes first.
    marker = tmp_path / "marker.txt"
    proc, wd, cmd = _start(tmp_path, "run", env={"MARKER": str(marker), "SLOW": "1.5"})
    _wait_for(proc, marker.exists, "a checkpoint write")
    code, _, err, seconds = _interrupt(proc)
    assert code == 130, err
    assert seconds > 1.0  # it waited for the write in progress
    being_written = Path(marker.read_text().split()[0]).name
    steps = _check_message(err, wd)
    assert CheckpointManager(wd / "checkpoints").path_for(steps[-1]).name == being_written
    assert _metric_steps(wd)[-1] == steps[-1]  # the metrics line went with it
    # 2. The same command resumes; interrupted again between steps.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(proc, lambda: len(_metric_steps(wd)) >= 4, "four metrics lines")
    code, _, err, _ = _interrupt(proc)
    assert code == 130, err
    assert _check_message(err, wd)[-1] >= 4
    # 3. And a third run finishes it, with one metrics line per step.
    _resume_to_end(cmd, wd)


MECHANISM = textwrap.dedent("""\
    import sys, time
    from metaunsup.run.interrupt import WRITE_LOCK, exit_on_sigint
    with exit_on_sigint(lambda: "metaunsup: interrupted; described"):
        with WRITE_LOCK:
            print("writing", flush=True)
            time.sleep(float(sys.argv[1]))  # a write in progress
            print("write done", flush=True)
        print("long call", flush=True)
        time.sleep(30)  # a long call that returns to Python only at its end
    """)


@pytest.mark.slow  # real signals and sleeps
@pytest.mark.parametrize("during", ["writing", "long call"])
def test_exit_on_sigint_waits_for_a_write_but_not_for_a_long_call(during):
    proc = subprocess.Popen([sys.executable, "-c", MECHANISM, "1.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.stdout.readline().strip() != during:
        assert proc.poll() is None
    code, out, err, seconds = _interrupt(proc)
    assert code == 130 and err == "metaunsup: interrupted; described\n"
    if during == "writing":
        assert out.startswith("write done\n")  # the write in progress was finished first
    else:
        assert out == "" and seconds < 10  # but the 30 s call was not waited for
