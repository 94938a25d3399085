"""``filters``: first-layer weights as images after N inner steps, per method and dataset.

For one seed, every method trains the same seeded network for ``steps`` steps
on the unlabeled training images (the training functions of
:mod:`metaunsup.baselines.registry`); its first-layer weight columns are drawn as
images (:func:`metaunsup.eval.report.plot_filters`) and the network's top
layer is probed once, so each picture comes with the accuracy it gives.
``random`` draws the untrained network of the ``random`` method.
"""
from __future__ import annotations

import numpy as np

from metaunsup.data import dataset_info
from metaunsup.errors import UserError
from metaunsup.eval import ProbeConfig, get_method
from metaunsup.eval.compare import row_probe
from metaunsup.eval.report import plot_filters
from metaunsup.inner.unroll import initial_params
from metaunsup.models import MLPSpec
from metaunsup.streams import method_keys
from metaunsup.studies.base import Context, Job, Study, Table, register_study
from metaunsup.studies.grid import check_datasets, expand_methods, load_dataset
from metaunsup.studies.methods import method_settings, resolve


def _train(label: str, dataset, spec, ctx: Context, seed: int):
    """The network ``label`` produces for ``seed`` (untrained for ``random``)."""
    s = ctx.settings
    if label == "random":  # the network every trained method of the seed starts from
        return initial_params(method_keys(seed)[0], spec)
    method, options = resolve(label, rule=ctx.rule, init_rule=ctx.init_rule)
    options = {**options, "steps": s["steps"], "batch_size": s["batch_size"],
               "shots": s["shots"]}
    return get_method(method).train(dataset, spec=spec, seed=seed, options=options).params


def _jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    datasets = check_datasets(s["datasets"])
    for d in datasets:
        if dataset_info(d).modality != "image":
            raise UserError(f"filters are drawn for image datasets; {d} is not one")
    methods = expand_methods(s["methods"])
    for label in methods:
        method, _ = resolve(label, rule=ctx.rule, init_rule=ctx.init_rule)
        if label != "random" and get_method(method).train is None:
            raise UserError(f"method {label} has no network to draw filters of; use methods "
                            "that train, or random")
    MLPSpec(n_in=1, widths=tuple(s["widths"]), activation=s["activation"])
    seed = int(s["seed"])
    jobs = []
    for ds_name in datasets:
        for label in methods:
            image = f"filters_{ds_name}_{label}.png"
            settings = {"dataset": ds_name, "resolution": s["resolution"],
                        "widths": s["widths"], "activation": s["activation"],
                        "steps": 0 if label == "random" else s["steps"],
                        "batch_size": s["batch_size"], "seed": seed, "shots": s["shots"],
                        "max_test": s["max_test"],
                        **method_settings(label, rule=ctx.rule, init_rule=ctx.init_rule)}

            def run(ds_name=ds_name, label=label, image=image):
                dataset = load_dataset(ds_name, s)
                spec = MLPSpec(n_in=dataset.dim, widths=tuple(s["widths"]),
                               activation=s["activation"])
                params = _train(label, dataset, spec, ctx, seed)
                w = np.asarray(params[0].w)
                steps = 0 if label == "random" else s["steps"]
                plot_filters(w, ctx.workdir / image, image_shape=dataset.image_shape,
                             max_filters=s["filters"],
                             title=f"{label} on {ds_name}, {steps} steps (seed {seed})")
                acc = 100.0 * row_probe(dataset, spec, shots=s["shots"], seed=seed,
                                        config=ProbeConfig(max_test=s["max_test"]))(params)
                norms = np.linalg.norm(w, axis=0)
                return {"mean": acc, "ci95": None, "accuracies": [acc], "seeds": [seed],
                        "image": image, "filter_norm_mean": float(norms.mean()),
                        "filter_norm_std": float(norms.std())}

            jobs.append(Job(key={"dataset": ds_name, "method": label}, run=run,
                            settings=settings))
    return jobs


def _figures(rows, ctx: Context) -> list[str]:
    return [r["image"] for r in rows if (ctx.workdir / r["image"]).is_file()]


def _tables(rows, settings) -> list[Table]:
    cells = [[r["dataset"], r["method"], str(r["settings"]["steps"]), f"{r['mean']:.1f}",
              f"{r['filter_norm_mean']:.3g} ± {r['filter_norm_std']:.2g}"] for r in rows]
    return [Table(f"first-layer filters (seed {settings['seed']}): the drawn network's "
                  f"{settings['shots']}-shot accuracy (%, one seed) and filter norms",
                  ["dataset", "method", "steps", "accuracy", "filter L2 norm (mean ± sd)"],
                  cells)]


register_study(Study(
    name="filters", title="First-layer filters after N steps, for the rule and the baselines",
    full_time="10 minutes measured on 2 CPU cores shared with other jobs (2 datasets, "
              "9 methods incl. 4 hand-designed rules, 1000 steps, one seed; 2026-11-29)",
    defaults={"datasets": ["mnist", "fashion_mnist"], "resolution": 14, "steps": 1000,
              "batch_size": 128, "seed": 0, "shots": 10, "max_test": 2000, "max_train": 0,
              "filters": 64, "widths": [128, 128, 128, 128, 32], "activation": "relu",
              "methods": ["rule", "rule_init", "random", "autoencoder", "vae", "hand"]},
    quick={"datasets": ["mnist"], "steps": 10, "batch_size": 32, "max_test": 200,
           "max_train": 512, "filters": 8, "widths": [8, 4], "shots": 2,
           "methods": ["rule", "random"]},
    jobs=_jobs, figures=_figures, tables=_tables))
