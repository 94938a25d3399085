"""The reliability table (issue 21): every command against bad input and faults.

One row per case: the command line, the exit status it must give, a fragment of the
one line it must print (on stderr for an error, stdout otherwise), the files that must
be unchanged afterwards and those that must not exist. For an error (status 2) the
message is exactly one line and nothing was printed before it. Every new command joins
the table. Cases that kill or interrupt a process run as subprocesses and are marked
``slow`` (``pytest -m slow tests/test_reliability_table.py``).

Fixtures are built, not computed: a study workdir and a meta-training workdir are
written by hand (with zero-valued checkpoints), so the table runs in seconds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np
import pytest

import metaunsup
from metaunsup.cli import main

TINY = {"name": "tiny", "seed": 3, "truncation": 3, "meta_batch": 2, "outer_steps": 8,
        "arch_every": 100, "eval_every": 2, "eval_steps": 4, "eval_tasks": 2,
        "eval_groups": ["tiny"], "checkpoint_every": 2, "rule_config": "mix_only",
        "tasks": {"datasets": ["digits"], "resolution": 8, "depth_range": [2, 2],
                  "width_range": [8, 8], "width_multiple": 8, "top_width": 8,
                  "length_range": [4, 7], "batch_size": 16, "n_way": 3, "shots": 3,
                  "max_per_class": 30}}


def _toml(d: dict, prefix: str = "") -> str:
    flat = [f"{k} = {json.dumps(v)}" for k, v in d.items() if not isinstance(v, dict)]
    out = "\n".join(flat) + "\n"
    for k, v in d.items():
        if isinstance(v, dict):
            out += f"[{prefix}{k}]\n" + _toml(v, f"{prefix}{k}.")
    return out


def _workdir(root: Path) -> Path:
    """A meta-training workdir of the TINY config: checkpoints 0 and 2 (zeros), 3 metrics lines."""
    from metaunsup.outer import trainer as tr
    from metaunsup.outer.config import config_from_dict, config_to_dict
    from metaunsup.run import Workdir
    from metaunsup.tasks.distribution import load_pools

    config = config_from_dict(TINY)
    pool, _ = load_pools(config.tasks, seed=config.seed)
    rule = tr.build_rule(config, tr.architecture(config, 0, pool.dim))
    template = jax.eval_shape(lambda: tr.init_trainer(config, rule, pool))
    zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template)
    run = Workdir(root / "wd")
    run.write_config(config_to_dict(config))
    for step, val in ((0, 0.30), (1, None), (2, 0.35)):
        run.append_metrics({"step": step, "meta_loss": 0.5} if val is None else
                           {"step": step, "val_accuracy": val})
        if val is not None:
            run.checkpoints.save(step, zeros._replace(step=np.asarray(step, zeros.step.dtype)))
    (root / "tiny.toml").write_text(_toml(TINY))
    return run.path


def _study(root: Path) -> Path:
    """A study workdir as ``metaunsup study`` writes it (of a study no longer registered)."""
    st = root / "study"
    st.mkdir()
    (st / "study.json").write_text(json.dumps({
        "format": 1, "study": "handmade", "title": "a handmade study", "settings": {"seeds": 2},
        "command": ["metaunsup", "study", "handmade"], "figures": ["fig.png"]}))
    rows = [{"key": {"method": m}, "method": m, "mean": 50.0 + i, "ci95": 1.0}
            for i, m in enumerate(("raw", "pca", "random"))]
    (st / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (st / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return st


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Path:
    """Shared inputs; cases copy what they change."""
    from metaunsup.run.rulefile import save_rule

    root = tmp_path_factory.mktemp("fx")
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.random((300, 16), dtype=np.float32))
    np.save(root / "x1.npy", rng.random((1, 16), dtype=np.float32))
    np.save(root / "x20.npy", rng.random((20, 16), dtype=np.float32))
    (root / "text.npy").write_text("not an array\n")
    (root / "text.npz").write_text("not an archive\n")
    (root / "datadir").mkdir()
    np.savez(root / "data.npz", x_train=rng.random((40, 8, 8), dtype=np.float32),
             y_train=np.arange(40) % 3, x_test=rng.random((30, 8, 8), dtype=np.float32),
             y_test=np.arange(30) % 3)
    good = metaunsup.load_rule("random-init")
    meta = jax.tree_util.tree_map(np.array, good.meta_params)
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        bad = jax.tree_util.tree_map(np.array, meta)
        bad["bias"]["b"] = np.full_like(bad["bias"]["b"], value)
        save_rule(root / f"{name}_rule.safetensors", bad, rule_name="learned",
                  rule_config=good.config, provenance={})
    shape = {**meta, "bias": {**meta["bias"], "b": np.zeros(3, np.float32)}}
    save_rule(root / "shape_rule.safetensors", shape, rule_name="learned",
              rule_config=good.config, provenance={})
    net = metaunsup.train("oja", np.load(root / "x.npy"), widths=(4,), steps=2,
                          batch_size=16, progress=False)
    metaunsup.save_network(root / "net.safetensors", net)
    _workdir(root)
    _study(root)
    return root


# ----------------------------------------------------------------------------- setups

def user_files(*names: str) -> Callable[[Path, Path], None]:
    """Files of the user's, under the case folder (e.g. ``out/index.html``)."""
    def setup(d: Path, fx: Path) -> None:
        for n in names:
            (d / n).parent.mkdir(parents=True, exist_ok=True)
            (d / n).write_text(f"the user's {n}\n")
    return setup


def copies(*names: str) -> Callable[[Path, Path], None]:
    def setup(d: Path, fx: Path) -> None:
        for n in names:
            src = fx / n
            (shutil.copytree if src.is_dir() else shutil.copy)(src, d / n)
    return setup


def then(*setups) -> Callable[[Path, Path], None]:
    def setup(d: Path, fx: Path) -> None:
        for s in setups:
            s(d, fx)
    return setup


def edit_line(name: str, number: int, text: str | None) -> Callable[[Path, Path], None]:
    """Replaces line ``number`` (1-based) of ``d/name`` by ``text``, or repeats it (None)."""
    def setup(d: Path, fx: Path) -> None:
        lines = (d / name).read_text().splitlines(keepends=True)
        lines[number - 1:number] = [lines[number - 1]] * 2 if text is None else [text + "\n"]
        (d / name).write_text("".join(lines))
    return setup


def append(name: str, text: str) -> Callable[[Path, Path], None]:
    def setup(d: Path, fx: Path) -> None:
        with open(d / name, "a") as f:
            f.write(text)
    return setup


def ran(*argv: str) -> Callable[[Path, Path], None]:
    """The command ran once already (e.g. an earlier report into the same folder)."""
    def setup(d: Path, fx: Path) -> None:
        assert main([a.format(d=d, fx=fx) for a in argv]) == 0
    return setup


# ----------------------------------------------------------------------------- the table

@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {d}: this case's folder, {fx}: the shared inputs
    code: int
    fragment: str
    unchanged: tuple[str, ...] = ()  # files or folders, compared byte for byte
    absent: tuple[str, ...] = ()  # must not exist afterwards
    setup: Callable[[Path, Path], None] | None = None


def C(id, argv, code, fragment, unchanged=(), absent=(), setup=None) -> Case:
    return Case(id, tuple(argv.split()), code, fragment, tuple(unchanged), tuple(absent), setup)


REPORT = "report {fx}/study --out {d}/out"
STUDY = "study text --quick --no-progress --set methods=raw"
SMOKE = "meta-train --config smoke --no-progress"
TRAIN = "train --rule oja --widths 4 --steps 2 --batch-size 16 --no-progress"
EXPORT = "export-rule --workdir {d}/wd --out {d}/r.safetensors"
VALIDATE = "validate --no-progress --tasks 1 --groups tiny"

CASES = [
    # 1. never delete or overwrite what the program did not write
    C("report-into-user-folder", REPORT, 2, "4 file(s) that metaunsup did not write",
      ["{d}/out"], setup=user_files("out/index.html", "out/README.md", "out/images/mine.png",
                                    "out/notes.txt")),
    C("report-force-beside-user-file", REPORT + " --force", 0, "wrote", ["{d}/out/notes.txt"],
      setup=user_files("out/notes.txt")),
    C("report-force-never-replaces", REPORT + " --force", 2,
      "index.html: exists and was not written by metaunsup; not replaced, even with --force",
      ["{d}/out"], setup=user_files("out/index.html")),
    C("report-rerun-replaces-its-own", REPORT, 0, "wrote", setup=ran(*REPORT.split())),
    C("report-own-file-edited-since", REPORT, 2, "did not write (README.md)",
      ["{d}/out"], setup=then(ran(*REPORT.split()), append("out/README.md", "my notes\n"))),
    C("demo-into-user-folder", "demo --datasets digits --methods raw --report {d}/rep", 2,
      "holds 1 file(s) that metaunsup did not write (README.md)", ["{d}/rep"],
      setup=user_files("rep/README.md")),
    C("study-into-user-folder", STUDY + " --workdir {d}/w", 2,
      "not a study workdir (no study.json; holds notes.txt)", ["{d}/w"],
      setup=user_files("w/notes.txt")),
    C("meta-train-into-user-folder", SMOKE + " --workdir {d}/w", 2,
      "not a meta-training workdir (no config.json", ["{d}/w"], setup=user_files("w/notes.txt")),
    C("export-over-user-file", EXPORT, 2, "r.safetensors: exists; pass --force to replace it",
      ["{d}/r.safetensors", "{d}/wd"], setup=then(copies("wd"), user_files("r.safetensors"))),
    C("export-force-over-user-file", EXPORT + " --force", 2,
      "exists and is not a metaunsup rule file", ["{d}/r.safetensors"],
      setup=then(copies("wd"), user_files("r.safetensors"))),
    C("export-force-over-own-kind", EXPORT + " --force", 0, '"step": 2',
      absent=["{d}/.r.safetensors.k2x9q1ab.tmp"],  # a stale temporary file is cleaned
      setup=then(copies("wd"), lambda d, fx: shutil.copy(fx / "nan_rule.safetensors",
                                                          d / "r.safetensors"),
                 user_files(".r.safetensors.k2x9q1ab.tmp"))),
    C("train-over-user-file", TRAIN + " --data {fx}/x.npy --out {d}/net", 2,
      "net: exists; pass --force", ["{d}/net"], setup=user_files("net")),
    C("train-force-over-own-kind", TRAIN + " --data {fx}/x.npy --out {d}/net.safetensors "
      "--force", 0, '"rule": "oja"', setup=copies("net.safetensors")),
    C("features-over-its-input", "features --network {fx}/net.safetensors --data {d}/x.npy "
      "--out {d}/x.npy --force", 2, "is also an input of this command", ["{d}/x.npy"],
      setup=copies("x.npy")),
    C("features-force-over-user-file", "features --network {fx}/net.safetensors --data "
      "{fx}/x.npy --out {d}/f.npy --force", 2, "exists and is not a .npy array file",
      ["{d}/f.npy"], setup=user_files("f.npy")),
    # 2. one path check for every output
    C("study-workdir-under-a-file", STUDY + " --workdir {fx}/x.npy/w", 2,
      "cannot be created because", ["{fx}/x.npy"]),
    C("study-workdir-read-only", STUDY + " --workdir /proc/metaunsup-w", 2, "cannot write"),
    C("report-out-is-a-file", "report {fx}/study --out {fx}/x.npy", 2,
      "exists and is not a directory", ["{fx}/x.npy"]),
    C("report-out-read-only", "report {fx}/study --out /proc/metaunsup-r", 2, "cannot write"),
    C("report-screenshot-under-a-file", REPORT + " --screenshot {fx}/x.npy/s.png", 2,
      "is a file", absent=["{d}/out"]),
    C("export-missing-parent", "export-rule --workdir {fx}/wd --out {d}/no/such/r.safetensors",
      2, "its folder", absent=["{d}/no"]),
    C("train-out-read-only", TRAIN + " --data {fx}/x.npy --out /proc/metaunsup-net", 2,
      "cannot write"),
    C("features-out-under-a-file", "features --network {fx}/net.safetensors --data {fx}/x.npy"
      " --out {fx}/x.npy/f.npy", 2, "is a file"),
    C("features-out-is-a-folder", "features --network {fx}/net.safetensors --data {fx}/x.npy"
      " --out {fx}/datadir", 2, "is a directory"),
    C("demo-report-read-only", "demo --datasets digits --methods raw --report /proc/m-r", 2,
      "cannot write"),
    C("meta-train-workdir-is-a-file", SMOKE + " --workdir {fx}/x.npy", 2,
      "exists and is not a directory"),
    # 3. one rule loader, one options parser, typed config values
    C("validate-hand-option-type", VALIDATE + " oja:lr=abc", 2,
      "rule 'oja': lr='abc': expected a number (float)"),
    C("train-hand-option-type", TRAIN + " --data {fx}/x.npy --out {d}/n --rule oja:lr=abc", 2,
      "lr='abc': expected a number (float)", absent=["{d}/n"]),
    C("train-hand-option-unknown", TRAIN + " --data {fx}/x.npy --out {d}/n --rule oja:rate=1",
      2, "rule 'oja' has no option 'rate'"),
    C("evaluate-method-option-type", "evaluate --method oja --data {fx}/data.npz --option "
      "batch_size=abc", 2, "--option batch_size='abc': expected an integer"),
    C("validate-nan-rule", VALIDATE + " {fx}/nan_rule.safetensors", 2,
      "tensor 'bias/b' holds 1 NaN or Inf"),
    C("evaluate-nan-rule", "evaluate --method raw,rule --rule {fx}/nan_rule.safetensors "
      "--data {fx}/data.npz", 2, "tensor 'bias/b' holds 1 NaN or Inf"),
    C("study-inf-rule", "study text --quick --no-progress --set methods=rule --rule "
      "{fx}/inf_rule.safetensors --workdir {d}/w", 2, "tensor 'bias/b' holds 1 NaN or Inf",
      absent=["{d}/w"]),
    C("train-nan-rule", TRAIN.replace("oja", "{fx}/nan_rule.safetensors") +
      " --data {fx}/x.npy --out {d}/n", 2, "tensor 'bias/b' holds 1 NaN or Inf",
      absent=["{d}/n"]),
    C("validate-misshaped-rule", VALIDATE + " {fx}/shape_rule.safetensors", 2,
      "tensor 'bias/b' has shape (3,)"),
    C("train-misshaped-rule", TRAIN.replace("oja", "{fx}/shape_rule.safetensors") +
      " --data {fx}/x.npy --out {d}/n", 2, "tensor 'bias/b' has shape (3,)"),
    C("config-float-as-text", SMOKE + " --workdir {d}/w --set learning_rate=fast", 2,
      "config learning_rate='fast': expected a number (float)", absent=["{d}/w"]),
    C("config-int-as-text", SMOKE + " --workdir {d}/w --set seed=x", 2,
      "config seed='x': expected an integer", absent=["{d}/w"]),
    C("config-fraction-as-int", SMOKE + " --workdir {d}/w --set tasks.batch_size=2.5", 2,
      "config tasks.batch_size=2.5: expected an integer"),
    C("config-number-as-list", SMOKE + " --workdir {d}/w --set eval_groups=3", 2,
      "config eval_groups=3: expected a comma-separated list of str"),
    C("study-setting-type", STUDY + " --set steps=abc --workdir {d}/w", 2,
      "setting steps='abc': expected an integer", absent=["{d}/w"]),
    # 4. values that contradict each other
    C("validate-short-above-steps", VALIDATE + " --steps 10 --short-steps 50 none", 2,
      "--short-steps 50 is larger than --steps 10"),
    C("validate-empty-groups", "validate --groups= none", 2, "--groups '': give one or more"),
    C("validate-empty-group-name", "validate --groups paper, none", 2, "give one or more"),
    C("evaluate-shots-above-class", "evaluate --method raw --data {fx}/data.npz --shots 20", 2,
      "shots=20 but class 1 has only 13 training examples"),
    C("study-shots-above-class", STUDY + " --set shots_list=500 --workdir {d}/w", 2,
      "shots=500 but class", absent=["{d}/w"]),
    C("meta-train-shots-above-pool", SMOKE + " --workdir {d}/w --set tasks.shots=100", 2,
      "tasks.shots=100 needs 200 examples of each class", absent=["{d}/w"]),
    C("meta-train-n-way-above-classes", SMOKE + " --workdir {d}/w --set tasks.n_way=50", 2,
      "tasks.n_way=50 but dataset 'digits' has only 10 classes", absent=["{d}/w"]),
    C("evaluate-curve-beyond-steps", "evaluate --method oja --data {fx}/data.npz --steps 10 "
      "--curve-every 50", 2, "--curve-every 50 is larger than --steps 10"),
    C("demo-curve-beyond-steps", "demo --datasets digits --methods raw --steps 10 "
      "--curve-every 50 --report {d}/rep", 2, "--curve-every 50 is larger than --steps 10",
      absent=["{d}/rep"]),
    # 5. data that cannot be learned from
    C("train-one-example", TRAIN + " --data {fx}/x1.npy --out {d}/n", 2,
      "x has 1 example(s); training needs batches of at least 2", absent=["{d}/n"]),
    C("train-fewer-than-a-batch", TRAIN.replace(" --batch-size 16", "") +
      " --data {fx}/x20.npy --out {d}/n", 2, "x has 20 example(s), fewer than one batch of 128",
      absent=["{d}/n"]),
    C("train-batch-of-one", TRAIN.replace("16", "1") + " --data {fx}/x.npy --out {d}/n", 2,
      "must be at least 2"),
    # 6. stores that check themselves
    C("report-corrupt-middle-row", "report {d}/study --out {d}/out", 2,
      "rows.jsonl:2: not a JSON object; only an unfinished last line is tolerated. Repair: "
      "inspect it with sed -n '2p'", ["{d}/study"], ["{d}/out"],
      then(copies("study"), edit_line("study/rows.jsonl", 2, '{"key": {"method": "pc'))),
    C("report-duplicated-row", "report {d}/study --out {d}/out", 2,
      "rows.jsonl:3: repeats the job of line 2", ["{d}/study"], ["{d}/out"],
      then(copies("study"), edit_line("study/rows.jsonl", 2, None))),
    C("report-torn-last-row", "report {d}/study --out {d}/out", 0, "wrote",
      setup=then(copies("study"), append("study/rows.jsonl", '{"key": {"meth'))),
    C("meta-train-duplicated-step", "meta-train --config {d}/tiny.toml --workdir {d}/wd", 2,
      "metrics.jsonl:3: repeats the step of line 2", ["{d}/wd"],
      setup=then(copies("wd", "tiny.toml"), edit_line("wd/metrics.jsonl", 2, None))),
    C("export-duplicated-step", EXPORT, 2, "metrics.jsonl:3: repeats the step of line 2",
      ["{d}/wd"], ["{d}/r.safetensors"],
      then(copies("wd"), edit_line("wd/metrics.jsonl", 2, None))),
    C("export-corrupt-middle-step", EXPORT, 2, "metrics.jsonl:2: not a JSON object",
      ["{d}/wd"], ["{d}/r.safetensors"],
      then(copies("wd"), edit_line("wd/metrics.jsonl", 2, '{"step": 1, "meta_lo'))),
    C("export-torn-last-step", EXPORT, 0, '"step": 2',
      setup=then(copies("wd"), append("wd/metrics.jsonl", '{"step": 3, "meta_lo'))),
    # smaller ones
    C("export-no-such-step", EXPORT + " --step 99", 2, "no checkpoint at step 99 (kept: [0, 2])",
      setup=copies("wd")),
    C("export-no-checkpoint", EXPORT, 2, "holds no checkpoint",
      setup=then(copies("wd"), lambda d, fx: shutil.rmtree(d / "wd" / "checkpoints"))),
    C("train-text-as-npy", TRAIN + " --data {fx}/text.npy --out {d}/n", 2,
      "not a .npy or .npz array file"),
    C("evaluate-text-as-npz", "evaluate --method raw --data {fx}/text.npz", 2,
      "not a .npy or .npz array file"),
    C("features-text-as-npy", "features --network {fx}/net.safetensors --data {fx}/text.npy "
      "--out {d}/f.npy", 2, "not a .npy or .npz array file", absent=["{d}/f.npy"]),
    C("train-data-is-a-folder", TRAIN + " --data {fx}/datadir --out {d}/n", 2,
      "datadir: is a directory; --data takes a .npy or .npz file"),
    C("evaluate-data-is-a-folder", "evaluate --method raw --data {fx}/datadir", 2,
      "datadir: is a directory"),
]


def _digest(path: Path) -> str:
    if not path.exists():
        return "absent"
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        h.update(str(f.relative_to(path)).encode())
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


def test_case_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case: Case, fx: Path, tmp_path: Path, capsys):
    d = tmp_path

    def fill(text: str) -> str:
        return text.format(d=d, fx=fx)

    if case.setup is not None:
        case.setup(d, fx)
        capsys.readouterr()
    before = {p: _digest(Path(fill(p))) for p in case.unchanged}
    code = main([fill(a) for a in case.argv])
    out, err = capsys.readouterr()
    assert code == case.code, (out, err)
    if case.code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("metaunsup: error:"), err
        assert fill(case.fragment) in lines[0], lines[0]
        assert out == "", f"printed before its error: {out!r}"
    else:
        assert fill(case.fragment) in out, out
    for p, digest in before.items():
        assert _digest(Path(fill(p))) == digest, f"{fill(p)} changed"
    for p in case.absent:
        assert not Path(fill(p)).exists(), f"{fill(p)} was written"


# ----------------------------------------------------------------------------- processes

def _cli(*argv: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "metaunsup", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0, 2.0])
def test_report_killed_at_any_moment_is_rerun_without_force(fx, tmp_path, delay):
    """kill -9 while report writes: the folder holds only files its record accounts for."""
    out = tmp_path / "out"
    proc = _cli("report", str(fx / "study"), "--out", str(out))
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    rerun = subprocess.run([sys.executable, "-m", "metaunsup", "report", str(fx / "study"),
                            "--out", str(out)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == [".metaunsup-output.json", "README.md",
                                                     "images", "index.html"]


@pytest.mark.slow
def test_study_interrupted_then_killed_then_resumed_keeps_each_row_once(tmp_path):
    """SIGINT (exit 130) after the first row, then kill -9 mid-run; the rerun completes the
    study from rows.jsonl with every job's row exactly once."""
    from metaunsup.studies import read_rows, read_study

    wd = tmp_path / "w"
    rows = wd / "rows.jsonl"
    argv = ["study", "text", "--quick", "--no-progress", "--set", "methods=raw,autoencoder",
            "--set", "steps=300", "--workdir", str(wd)]
    proc = _cli(*argv)  # the raw rows come first; the autoencoder trains afterwards
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (
            rows.is_file() and rows.read_text().count("\n") >= 1):
        time.sleep(0.05)
    assert proc.poll() is None, "the study ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130 and "interrupted" in err
    proc = _cli(*argv)
    time.sleep(6)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = subprocess.run([sys.executable, "-m", "metaunsup", *argv], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    keys = [json.dumps(r["key"], sort_keys=True) for r in read_rows(wd)]
    assert len(keys) == len(set(keys)) == read_study(wd)["jobs"] == 4  # 2 methods x 2 shots
