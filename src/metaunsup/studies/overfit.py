"""``meta_overfit``: held-out accuracy of rules taken along one meta-training run.

The paper saw text transfer degrade with longer meta-training. Here every rule
file in ``rules`` (their headers give the outer step, ``meta_steps``) and, with
``checkpoints``, every checkpoint kept in the meta-training workdir ``run``
(written to ``<workdir>/rules/`` by :func:`metaunsup.outer.export.export_rule`)
is evaluated on held-out images and text, like the ``rule`` method everywhere
else. The x axis is meta-training time: the sum of the outer steps' ``seconds``
in ``run``'s ``metrics.jsonl`` up to the rule's step (validation time excluded),
or the outer step alone when no run is given. ``random`` (the untrained network)
is the floor.
"""
from __future__ import annotations

import json
from pathlib import Path

from metaunsup.data import dataset_info
from metaunsup.errors import UserError
from metaunsup.models import MLPSpec
from metaunsup.outer.export import export_rule
from metaunsup.rules.loading import load_rule
from metaunsup.run.workdir import Workdir
from metaunsup.studies import plots
from metaunsup.studies.base import Context, Job, Study, Table, register_study, seed_list
from metaunsup.studies.grid import cell, check_datasets, load_dataset
from metaunsup.studies.methods import FeatureCache, evaluate_row


def step_seconds(run: Path) -> dict[int, float]:
    """Outer step -> seconds it took, from a run's ``metrics.jsonl`` (last record wins)."""
    out: dict[int, float] = {}
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"{run}: no metrics.jsonl; pass a meta-training workdir as run")
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec.get("step"), int) and isinstance(rec.get("seconds"), (int, float)):
            out[rec["step"]] = float(rec["seconds"])
    return out


def meta_minutes(seconds: dict[int, float], step: int) -> float:
    """Meta-training minutes up to and including outer ``step``."""
    return sum(v for k, v in seconds.items() if k <= step) / 60.0


def _points(ctx: Context) -> list[dict]:
    """``{"meta_step", "path", "source"}`` of every rule to evaluate, by step; validates."""
    s = ctx.settings
    points: dict[int, dict] = {}
    for f in s["rules"]:
        loaded = load_rule(f)  # a missing or broken file fails before any write
        step = loaded.header.get("provenance", {}).get("meta_steps")
        if not isinstance(step, int):
            raise UserError(f"{f}: its header records no meta_steps; cannot place it in time")
        points.setdefault(step, {"meta_step": step, "path": str(f), "source": "rule file",
                                 "recipe": loaded.header["provenance"].get("recipe")})
    if s["checkpoints"]:
        if not s["run"]:
            raise UserError("checkpoints=true needs run=<meta-training workdir>")
        wd = Workdir(s["run"], create=False, keep=10**9)
        for step in wd.checkpoints.all_steps():
            out = ctx.workdir / "rules" / f"step_{step:07d}.safetensors"
            points.setdefault(step, {"meta_step": step, "path": str(out),
                                     "source": "checkpoint", "export_from": s["run"]})
    if not points:
        raise UserError("meta_overfit needs rule files (rules=...) or checkpoints of a run")
    return [points[k] for k in sorted(points)]


def _jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    datasets = check_datasets(s["datasets"])
    points = _points(ctx)
    seconds = step_seconds(Path(s["run"])) if s["run"] else None
    MLPSpec(n_in=1, widths=tuple(s["widths"]))
    seeds = seed_list(s)
    jobs = []
    for ds_name in datasets:
        text = dataset_info(ds_name).modality == "text"
        shots = s["text_shots"] if text else s["shots"]
        opts = {"vocab_size": s["vocab_size"]} if text else {}
        cache = FeatureCache()
        for point in [None] + points:
            label = "random" if point is None else "rule"
            step = None if point is None else point["meta_step"]
            minutes = None if point is None or seconds is None else \
                round(meta_minutes(seconds, step), 2)
            settings = {"dataset": ds_name, "dataset_options": opts, "widths": s["widths"],
                        "shots": shots, "steps": s["steps"], "batch_size": s["batch_size"],
                        "seeds": seeds, "max_test": s["max_test"],
                        "rule_file": None if point is None else point["path"],
                        "source": None if point is None else point["source"]}

            def run(ds_name=ds_name, point=point, shots=shots, opts=opts, label=label,
                    cache=cache):
                if point is not None and point["source"] == "checkpoint" and \
                        not Path(point["path"]).is_file():
                    Path(point["path"]).parent.mkdir(parents=True, exist_ok=True)
                    export_rule(point["export_from"], point["path"], step=point["meta_step"])
                dataset = load_dataset(ds_name, s, **opts)
                spec = MLPSpec(n_in=dataset.dim, widths=tuple(s["widths"]))
                return evaluate_row(label, dataset, spec=spec, shots=shots, seeds=seeds,
                                    settings=s, rule=None if point is None else point["path"],
                                    init_rule=ctx.init_rule, data_id=ds_name, cache=cache)

            key = {"dataset": ds_name, "method": label, "meta_step": step}
            jobs.append(Job(key={**key, "meta_minutes": minutes}, run=run, settings=settings))
    return jobs


def _figures(rows, ctx: Context) -> list[str]:
    timed = all(r.get("meta_minutes") is not None for r in rows if r["method"] == "rule")
    series = {}
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        mine = sorted((r for r in rows if r["dataset"] == ds and r["method"] == "rule"),
                      key=lambda r: r["meta_step"])
        if not mine:
            continue
        x = [r["meta_minutes"] if timed else r["meta_step"] for r in mine]
        series[f"{ds} ({mine[0]['settings']['shots']}-shot)"] = {
            "x": x, "mean": [r["mean"] for r in mine], "ci95": [r["ci95"] for r in mine]}
    if not series:
        return []
    plots.plot_lines(series, ctx.workdir / "meta_overfit.png",
                     xlabel="meta-training minutes (2 CPU cores)" if timed else "outer step",
                     ylabel="held-out probe accuracy (%)",
                     title="held-out accuracy along meta-training")
    return ["meta_overfit.png"]


def _tables(rows, settings) -> list[Table]:
    points = sorted({r["meta_step"] for r in rows if r["meta_step"] is not None})
    minutes = {r["meta_step"]: r.get("meta_minutes") for r in rows}
    cols = ["dataset", "random init"] + [
        f"step {p}" + ("" if minutes.get(p) is None else f" ({minutes[p]:.0f} min)")
        for p in points]
    cells = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        idx = {r["meta_step"]: r for r in rows if r["dataset"] == ds}
        shots = next(r for r in rows if r["dataset"] == ds)["settings"]["shots"]
        cells.append([f"{ds} ({shots}-shot)", cell(idx.get(None))] +
                     [cell(idx.get(p)) for p in points])
    n = len(rows[0]["seeds"]) if rows else 0
    return [Table(f"held-out accuracy (%) of rules along meta-training, mean ± 95% interval "
                  f"over {n} seeds", cols, cells)]


register_study(Study(
    name="meta_overfit", title="Held-out images and text along a meta-training run",
    full_time="about 55 minutes on 2 CPU cores shared with other jobs with steps=500 (4 "
              "rules, MNIST and text, 5 seeds; 45 minutes measured for 9 of its 10 rows, "
              "2026-11-29); the defaults (1000 steps) take about twice that",
    defaults={"run": "experiments/runs/recipe_small_v2",
              # step 0: the run's own starting point (the key its seed drew), rebuilt
              # from the best rule file's provenance (rules.loading.initial_rule)
              "rules": ["init:experiments/rules/small_v2_best.safetensors",
                        "experiments/ablations/rule_small_step250.safetensors",
                        "experiments/rules/small_v2_best.safetensors"],
              "checkpoints": True, "datasets": ["mnist", "movie_reviews"], "resolution": 14,
              "vocab_size": 1000, "shots": 10, "text_shots": 100, "seeds": 5, "first_seed": 0,
              "steps": 1000, "batch_size": 128, "max_test": 2000, "max_train": 0,
              "widths": [128, 128, 128, 128, 32]},
    quick={"checkpoints": False, "vocab_size": 196, "shots": 2, "text_shots": 8, "seeds": 2,
           "steps": 10, "batch_size": 32, "max_test": 200, "max_train": 512,
           "widths": [8, 4]},
    jobs=_jobs, figures=_figures, tables=_tables))
