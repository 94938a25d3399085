"""Comparing methods on one dataset: accuracy-versus-steps curves, a table, a report folder.

For a *trainable* method (:func:`metaunsup.baselines.registry.register_trainable`)
:func:`method_curve` trains one base network per seed and probes it every
``every`` steps; its last point is exactly the accuracy :func:`evaluate` reports
for that method, seed and number of steps (same network, same support and
query examples). Curve probes compute features only of the rows the probe uses
(the support set and the query subset), so a curve costs little more than the
training itself. Methods that do not train (``raw``, ``pca``, ``random``) are
evaluated once and drawn as flat lines.

:func:`compare` runs a list of methods on a dataset, and :func:`write_report`
writes ``report/``: ``README.md`` (table), ``results.json``, ``curves.png``
and first-layer filter images.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np

from metaunsup.baselines.registry import get_method
from metaunsup.errors import UserError
from metaunsup.eval.evaluate import evaluate
from metaunsup.eval.probes import ProbeConfig, few_shot_indices, get_probe, query_indices
from metaunsup.eval.report import plot_curves, plot_filters, write_markdown_table
from metaunsup.eval.stats import mean_ci95
from metaunsup.models import MLPSpec, bn_stats
from metaunsup.models.featurize import map_features, reference_batch
from metaunsup.run.checkpoint import dumps_json
from metaunsup.run.outputs import OutputDir, open_output_dir


def row_probe(dataset, spec: MLPSpec, *, shots: int, seed: int, config: ProbeConfig,
              probe: str = "logreg") -> Callable:
    """``params -> accuracy`` (fraction), computing features of the probed rows only.

    Gives the probe full-size feature arrays in which only the support and query
    rows (the ones it reads, for this ``seed``) are filled, so the result is the
    probe's on :func:`metaunsup.models.featurize.network_features`.
    """
    probe_fn = get_probe(probe)
    s_idx = few_shot_indices(dataset.y_train, shots, seed)
    q_idx = query_indices(len(dataset.y_test), config.max_test, seed)
    ref = jnp.asarray(reference_batch(dataset.x_train, seed=seed), jnp.float32)
    xs = np.asarray(dataset.x_train)[s_idx]
    xq = np.asarray(dataset.x_test)[q_idx]
    width = spec.widths[-1]

    def accuracy(params) -> float:
        stats = bn_stats(params, ref, spec)
        f_tr = np.zeros((len(dataset.y_train), width), np.float32)
        f_te = np.zeros((len(dataset.y_test), width), np.float32)
        f_tr[s_idx] = map_features(params, xs, spec, stats)
        f_te[q_idx] = map_features(params, xq, spec, stats)
        return probe_fn(f_tr, dataset.y_train, f_te, dataset.y_test, shots=shots, seed=seed,
                        config=config)

    return accuracy


@dataclasses.dataclass
class Curve:
    """Probe accuracy (percent) of a trainable method over inner steps.

    Attributes:
      method: method name.
      steps: inner steps of each point.
      accuracies: [seeds][points] accuracies.
      seeds: the seeds.
      first_params: the trained network of the first seed (for filter images).
      seconds: wall time.
    """

    method: str
    steps: list[int]
    accuracies: list[list[float]]
    seeds: list[int]
    first_params: Any = None
    seconds: float = 0.0

    def summary(self) -> dict:
        """``{"steps", "mean", "ci95"}`` per point (ci95 None for one seed)."""
        stats = [mean_ci95([a[i] for a in self.accuracies]) for i in range(len(self.steps))]
        return {"steps": list(self.steps), "mean": [m for m, _ in stats],
                "ci95": [None if np.isnan(c) else c for _, c in stats]}


def method_curve(method: str, dataset, *, spec: MLPSpec, shots: int, seeds: Sequence[int],
                 every: int, config: ProbeConfig = ProbeConfig(), probe: str = "logreg",
                 options: dict | None = None) -> Curve:
    """Trains ``method``'s network once per seed, probing every ``every`` steps."""
    entry = get_method(method)
    if entry.train is None:
        raise UserError(f"method {method!r} does not train, so it has no curve over steps")
    options = {**(options or {}), "shots": shots}
    start = time.perf_counter()
    curve = Curve(method, [], [], [int(s) for s in seeds])
    for seed in curve.seeds:
        fn = row_probe(dataset, spec, shots=shots, seed=seed, config=config, probe=probe)
        res = entry.train(dataset, spec=spec, seed=seed, options=options, curve_every=every,
                          probe_fn=fn)
        curve.steps = [int(s) for s in res.curve_steps]
        curve.accuracies.append([100.0 * float(a) for a in res.curve])
        if curve.first_params is None:
            curve.first_params = res.params
    curve.seconds = time.perf_counter() - start
    return curve


def curve_records(curve: Curve, *, dataset: str, resolution: int | None, shots: int,
                  options: dict) -> list[dict]:
    """One JSON-able record per point of ``curve`` (``metaunsup evaluate --curve-every``)."""
    summary = curve.summary()
    return [{"method": curve.method, "dataset": dataset, "resolution": resolution,
             "shots": shots, "seeds": list(curve.seeds), "step": int(step),
             "mean": summary["mean"][i], "ci95": summary["ci95"][i],
             "accuracies": [a[i] for a in curve.accuracies], "options": options}
            for i, step in enumerate(summary["steps"])]


def compare(dataset, methods: Sequence[str], *, spec: MLPSpec, shots: int,
            seeds: Sequence[int], steps: int, every: int, config: ProbeConfig = ProbeConfig(),
            options: dict | None = None,
            on_record: Callable[[dict], None] | None = None) -> tuple[list[dict], dict, dict]:
    """Runs every method; returns ``(records, curves, flat)``.

    ``records``: one dict per method (``method``, ``mean``, ``ci95``,
    ``accuracies``, ``seeds``, ``seconds``), the trainable ones at ``steps``;
    ``curves``: method -> :class:`Curve`; ``flat``: method -> (mean, ci95) of the
    methods that do not train. ``on_record`` is called as each record is ready.
    """
    options = {**(options or {}), "steps": steps}
    records, curves, flat = [], {}, {}
    for m in methods:
        if get_method(m).train is not None:
            c = method_curve(m, dataset, spec=spec, shots=shots, seeds=seeds, every=every,
                             config=config, options=options)
            curves[m] = c
            final = [a[-1] for a in c.accuracies]
            mean, ci = mean_ci95(final)
            rec = {"method": m, "mean": mean, "ci95": ci, "accuracies": final,
                   "seeds": list(c.seeds), "seconds": c.seconds, "steps": steps}
        else:
            res = evaluate(m, dataset, spec=spec, shots=shots, seeds=seeds, config=config,
                           options=options)
            rec = {"method": m, **res.to_dict()}
        rec["ci95"] = None if rec["ci95"] is None or np.isnan(rec["ci95"]) else rec["ci95"]
        if m not in curves:
            flat[m] = (rec["mean"], rec["ci95"])
        records.append(rec)
        if on_record is not None:
            on_record(rec)
    return records, curves, flat


def write_report(out_dir, results: dict[str, tuple[list[dict], dict, dict]], *,
                 image_shape: tuple[int, int] | None, title: str,
                 notes: Sequence[str] = (), filter_methods: Sequence[str] = ("rule",),
                 meta: dict | None = None) -> Path:
    """Writes ``README.md``, ``results.json``, ``curves.png``, ``filters_<data>_<method>.png``.

    Args:
      out_dir: the report folder, or an :class:`~metaunsup.run.outputs.OutputDir` the
        caller opened (and checked) before its work; a folder holding files metaunsup did
        not write is refused (:mod:`metaunsup.run.outputs`).
      results: dataset name -> what :func:`compare` returned.
      image_shape: input image shape for filter images (None: no filter images).
      title: the README's title.
      notes: lines written under the table.
      filter_methods: trainable methods whose first-seed first-layer weights are drawn.
      meta: extra JSON-ready facts for ``results.json`` (command, seeds, ...).

    Returns:
      The folder's path.
    """
    out = out_dir if isinstance(out_dir, OutputDir) else open_output_dir(out_dir)
    rows, curve_data, flat_data, images = [], {}, {}, []
    for name, (records, curves, flat) in results.items():
        rows += [{**r, "dataset": name} for r in records]
        curve_data[name] = {m: c.summary() for m, c in curves.items()}
        flat_data[name] = flat
        for m in filter_methods:
            if m in curves and image_shape is not None and curves[m].first_params is not None:
                w = np.asarray(curves[m].first_params[0].w)
                png = f"filters_{name}_{m}.png"
                out.write_with(png, lambda path, w=w, name=name, m=m: plot_filters(
                    w, path, image_shape=image_shape,
                    title=f"{m} on {name}: first-layer filters (seed {curves[m].seeds[0]})"))
                images.append(png)
    out.write_with("curves.png", lambda path: plot_curves(curve_data, path, flat=flat_data,
                                                          title=title))
    figures = ["", "![probe accuracy vs inner steps](curves.png)", ""]
    figures += [f"![{p}]({p})" for p in images]
    out.write_with("README.md", lambda path: write_markdown_table(
        rows, path, title=title, notes=list(notes) + figures))
    payload = {"meta": meta or {}, "records": rows, "curves": curve_data,
               "flat": {d: {m: list(v) for m, v in f.items()} for d, f in flat_data.items()}}
    out.write_text("results.json", dumps_json(payload, indent=1))
    return out.finish()


# What write_report always writes (filter images depend on the methods).
REPORT_FILES = ("README.md", "results.json", "curves.png")

