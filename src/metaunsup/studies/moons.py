"""``moons``: the rule on unlabeled 2-D two moons (Metz et al. 2019, sec. 5.2).

Each trainable method trains the paper's network on the unlabeled moons
training points; its top-layer features are probed every ``every`` steps
(:func:`metaunsup.eval.compare.row_probe`, the curve code of the demo), and for
the first seed the features of ``scatter_points`` test points are projected on
their top two principal components at each of ``snapshots`` steps and drawn
coloured by the hidden label. Methods that do not train are probed once.
"""
from __future__ import annotations

import numpy as np

from metaunsup.errors import UserError
from metaunsup.eval import ProbeConfig, get_method
from metaunsup.eval.compare import row_probe
from metaunsup.eval.stats import mean_ci95
from metaunsup.models import MLPSpec
from metaunsup.models.featurize import map_features, reference_stats
from metaunsup.studies import plots
from metaunsup.studies.base import Context, Job, Study, Table, register_study, seed_list
from metaunsup.studies.grid import cell, check_datasets, expand_methods, load_dataset
from metaunsup.studies.methods import evaluate_row, method_settings, resolve


def pca_2d(f: np.ndarray) -> np.ndarray:
    """Projection of the rows of ``f`` [N, F] on their top two principal components: [N, 2]."""
    f = np.asarray(f, np.float64)
    f = f - f.mean(axis=0)
    _, _, vt = np.linalg.svd(f, full_matrices=False)
    out = f @ vt[:2].T
    if out.shape[1] < 2:
        out = np.concatenate([out, np.zeros((len(f), 2 - out.shape[1]))], axis=1)
    return out


def curve_row(label: str, dataset, *, spec, ctx: Context, snapshots, n_points: int) -> dict:
    """A trainable method's accuracy curve over seeds, and first-seed feature snapshots."""
    s = ctx.settings
    method, options = resolve(label, rule=ctx.rule, init_rule=ctx.init_rule)
    options = {**options, "steps": s["steps"], "batch_size": s["batch_size"],
               "shots": s["shots"]}
    config = ProbeConfig(max_test=s["max_test"])
    seeds = seed_list(s)
    x_sc = np.asarray(dataset.x_test[:n_points])
    curves, steps, snaps = [], [], []
    for i, seed in enumerate(seeds):
        acc_fn = row_probe(dataset, spec, shots=s["shots"], seed=seed, config=config)
        expected = iter([0] + list(range(s["every"], s["steps"], s["every"])) + [s["steps"]])

        def probe(params, seed_index=i, expected=expected, seed=seed):
            step = next(expected)
            if seed_index == 0 and step in snapshots:
                stats = reference_stats(params, spec, dataset.x_train, seed=seed)
                f = map_features(params, x_sc, spec, stats)
                snaps.append({"step": step, "points": np.round(pca_2d(f), 4).tolist()})
            return acc_fn(params)

        res = get_method(method).train(dataset, spec=spec, seed=seed, options=options,
                                       curve_every=s["every"], probe_fn=probe)
        steps = [int(t) for t in res.curve_steps]
        curves.append([100.0 * float(a) for a in res.curve])
    stats = [mean_ci95([c[j] for c in curves]) for j in range(len(steps))]
    ci = [None if np.isnan(c) else c for _, c in stats]
    return {"mean": stats[-1][0], "ci95": ci[-1], "accuracies": [c[-1] for c in curves],
            "seeds": seeds, "curve": {"steps": steps, "mean": [m for m, _ in stats], "ci95": ci,
                                      "accuracies": curves},
            "snapshots": snaps, "scatter_labels": np.asarray(dataset.y_test[:n_points]).tolist()}


def _jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    (ds_name,) = check_datasets([s["dataset"]])
    methods = expand_methods(s["methods"])
    if s["every"] <= 0 or s["steps"] % s["every"]:
        raise UserError(f"every must be a positive divisor of steps, got {s['every']}")
    bad = [t for t in s["snapshots"] if t != 0 and t % s["every"] or not 0 <= t <= s["steps"]]
    if bad:
        raise UserError(f"snapshots must be 0 or multiples of every ({s['every']}) up to steps,"
                        f" got {bad}")
    MLPSpec(n_in=2, widths=tuple(s["widths"]), activation=s["activation"])
    jobs = []
    for label in methods:
        method, _ = resolve(label, rule=ctx.rule, init_rule=ctx.init_rule)
        trains = get_method(method).train is not None
        settings = {"dataset": ds_name, "widths": s["widths"], "activation": s["activation"],
                    "shots": s["shots"], "steps": s["steps"] if trains else 0,
                    "every": s["every"] if trains else None, "batch_size": s["batch_size"],
                    "seeds": seed_list(s), "max_test": s["max_test"],
                    **method_settings(label, rule=ctx.rule, init_rule=ctx.init_rule)}

        def run(label=label, trains=trains):
            dataset = load_dataset(ds_name, s)
            spec = MLPSpec(n_in=dataset.dim, widths=tuple(s["widths"]),
                           activation=s["activation"])
            if trains:
                return curve_row(label, dataset, spec=spec, ctx=ctx,
                                 snapshots=set(s["snapshots"]), n_points=s["scatter_points"])
            return evaluate_row(label, dataset, spec=spec, shots=s["shots"], seeds=seed_list(s),
                                settings=s, rule=ctx.rule, init_rule=ctx.init_rule)

        jobs.append(Job(key={"dataset": ds_name, "method": label}, run=run, settings=settings))
    return jobs


def _figures(rows, ctx: Context) -> list[str]:
    out = []
    series = {r["method"]: {"x": r["curve"]["steps"], "mean": r["curve"]["mean"],
                            "ci95": r["curve"]["ci95"]} for r in rows if "curve" in r}
    if series:
        plots.plot_lines(series, ctx.workdir / "moons_curve.png", xlabel="inner steps",
                         ylabel=f"{ctx.settings['shots']}-shot probe accuracy (%)",
                         title="two moons: probe accuracy of the top layer", log_x=True)
        out.append("moons_curve.png")
    for r in rows:
        if r.get("snapshots"):
            name = f"moons_features_{r['method']}.png"
            panels = [(f"step {sn['step']}", np.asarray(sn["points"]), r["scatter_labels"])
                      for sn in r["snapshots"]]
            plots.plot_scatters(panels, ctx.workdir / name,
                                title=f"{r['method']}: top-layer features (PCA to 2-D), "
                                      "coloured by the hidden label")
            out.append(name)
    return out


def _tables(rows, settings) -> list[Table]:
    shown = set(settings["snapshots"]) | {settings["steps"]}  # the full curve is in the figure
    steps = []
    for r in rows:
        steps += [t for t in r.get("curve", {}).get("steps", []) if t not in steps and t in shown]
    cells = []
    for r in rows:
        if "curve" in r:
            c = r["curve"]
            by = {t: {"mean": m, "ci95": e} for t, m, e in zip(c["steps"], c["mean"], c["ci95"])}
            cells.append([r["method"]] + [cell(by.get(t)) for t in steps])
        else:
            cells.append([r["method"] + " (no training)"] + [cell(r)] * len(steps))
    n = len(rows[0]["seeds"]) if rows else 0
    return [Table(f"two moons: {settings['shots']}-shot accuracy (%) after some numbers of "
                  f"inner steps, mean ± 95% interval over {n} seeds",
                  ["method"] + [f"step {t}" for t in steps], cells)]


register_study(Study(
    name="moons", title="Two moons: features over inner steps, coloured by the hidden label",
    full_time="12 minutes measured on 2 CPU cores shared with other jobs (10 methods incl. "
              "4 hand-designed rules, 1000 steps, 5 seeds; 2026-11-29)",
    defaults={"dataset": "moons", "steps": 1000, "every": 100, "snapshots": [0, 100, 300, 1000],
              "seeds": 5, "first_seed": 0, "shots": 10, "batch_size": 128, "max_test": 1000,
              "max_train": 0, "scatter_points": 600, "widths": [128, 128, 128, 128, 32],
              "activation": "relu", "methods": ["default"]},
    quick={"steps": 10, "every": 5, "snapshots": [0, 10], "seeds": 2, "batch_size": 32,
           "max_test": 200, "widths": [8, 4], "scatter_points": 50,
           "methods": ["rule", "random", "raw"]},
    jobs=_jobs, figures=_figures, tables=_tables))
