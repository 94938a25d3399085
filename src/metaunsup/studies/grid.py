"""Sweeps over one setting: ``widths``, ``depths``, ``nonlinearities`` and ``text``.

Each sweep trains the base network with every method at every value of one
setting (hidden width, number of layers, activation, or labelled examples per
class on text) and probes it as ``metaunsup evaluate`` does: a logistic
regression on ``shots`` labelled examples per class of the top-layer features,
mean and 95% t-interval over seeds. Methods whose features do not depend on the
network (raw inputs, PCA) are evaluated once per dataset and drawn as flat lines.

Networks (top width ``top``, 32 as in the paper):

| study | network | varied |
|---|---|---|
| widths | one hidden layer of width W, then ``top`` | W in ``widths`` |
| depths | D - 1 hidden layers of ``hidden`` units, then ``top`` (D layers in all) | D in ``depths`` |
| nonlinearities | ``hidden`` x 4 + ``top`` (the paper's net) | activation |
| text | ``hidden`` x 4 + ``top`` on bag-of-words of ``vocab_size`` words | shots |
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from metaunsup.baselines.registry import method_names
from metaunsup.data import dataset_info, load
from metaunsup.errors import UserError
from metaunsup.eval.stats import mean_ci95
from metaunsup.models import MLPSpec
from metaunsup.studies import plots
from metaunsup.studies.base import Context, Job, Study, Table, register_study, seed_list
from metaunsup.studies.methods import (
    HAND_RULES,
    NETWORK_FREE,
    FeatureCache,
    check_methods,
    default_methods,
    evaluate_row,
    method_settings,
)

IMAGE_DEFAULTS = {"datasets": ["mnist", "fashion_mnist"], "resolution": 14, "shots": 10,
                  "seeds": 5, "first_seed": 0, "steps": 1000, "batch_size": 128,
                  "max_test": 2000, "max_train": 0, "top": 32, "methods": ["default"]}
# Tiny settings for --quick and the tests: one 8-unit hidden layer and 4 top units on
# 512 images, 10 steps. The text study's quick vocabulary has 196 words, the input
# size of 14x14 images, so its network is the image studies' (one compilation).
QUICK = {"datasets": ["mnist"], "seeds": 2, "steps": 10, "batch_size": 32, "max_test": 200,
         "max_train": 512, "top": 4, "shots": 2}


def expand_methods(labels) -> list[str]:
    """Checked labels; ``default`` expands to :func:`~metaunsup.studies.methods.default_methods`,
    ``hand`` to the hand-designed rules registered as methods (maybe none)."""
    groups = {"default": default_methods(),
              "hand": [m for m in HAND_RULES if m in method_names()]}
    out: list[str] = []
    for label in labels:
        for m in groups.get(label, [label]):
            if m not in out:
                out.append(m)
    return check_methods(out)


def check_datasets(names) -> list[str]:
    """Registered and available here; a one-line error naming how to get one otherwise."""
    if not names:
        raise UserError("a study needs at least one dataset")
    out = []
    for name in names:
        info = dataset_info(name)
        if not info.available():
            raise UserError(f"dataset {info.name} is not available here: {info.how_to_get}")
        out.append(info.name)
    return out


def load_dataset(name: str, settings: Mapping[str, Any], **options):
    """The dataset of a row (cached in-process by the registry)."""
    resolution = settings.get("resolution") if dataset_info(name).modality == "image" else None
    max_train = int(settings.get("max_train", 0)) or None
    return load(name, resolution=resolution, max_train=max_train, **options)


def sweep_jobs(ctx: Context, *, axis: str, values: list, net: Callable[[Any], tuple],
               datasets: list[str], shots_of: Callable[[Any], int],
               dataset_options: Mapping[str, Any] | None = None) -> list[Job]:
    """One job per (dataset, value, method); network-free methods once per dataset.

    Args:
      axis: the swept setting's name (a row key).
      values: its values.
      net: value -> (widths, activation) of the base network.
      datasets: dataset names.
      shots_of: value -> labelled examples per class.
      dataset_options: passed to ``load`` (e.g. ``vocab_size``).
    """
    s = ctx.settings
    methods = expand_methods(s["methods"])
    datasets = check_datasets(datasets)
    if not values:
        raise UserError(f"setting {axis} needs at least one value")
    for v in values:
        widths, activation = net(v)
        MLPSpec(n_in=1, widths=tuple(widths), activation=activation)  # validates
    seeds = seed_list(s)
    opts = dict(dataset_options or {})
    cache = FeatureCache()
    jobs = []
    for ds_name in datasets:
        data_id = repr((ds_name, s.get("resolution"), s.get("max_train"), sorted(opts.items())))
        for label in methods:
            free = label in NETWORK_FREE and axis != "shots"
            for v in ([values[0]] if free else values):
                widths, activation = net(v)
                shots = shots_of(v)
                key = {"dataset": ds_name, axis: None if free else v, "method": label}
                settings = {"dataset": ds_name, "dataset_options": opts,
                            "resolution": s.get("resolution"), "max_train": s.get("max_train"),
                            "widths": list(widths), "activation": activation, "shots": shots,
                            "steps": s["steps"], "batch_size": s["batch_size"], "seeds": seeds,
                            "max_test": s["max_test"],
                            **method_settings(label, rule=ctx.rule, init_rule=ctx.init_rule)}

                def run(ds_name=ds_name, widths=widths, activation=activation, shots=shots,
                        label=label, data_id=data_id):
                    dataset = load_dataset(ds_name, s, **opts)
                    spec = MLPSpec(n_in=dataset.dim, widths=tuple(widths), activation=activation)
                    return evaluate_row(label, dataset, spec=spec, shots=shots, seeds=seeds,
                                        settings=s, rule=ctx.rule, init_rule=ctx.init_rule,
                                        data_id=data_id, cache=cache)

                jobs.append(Job(key=key, run=run, settings=settings))
    return jobs


def cell(row: Mapping | None) -> str:
    """``mean ± ci95`` (one decimal) of a row, ``-`` when missing."""
    if row is None or row.get("mean") is None:
        return "-"
    ci = row.get("ci95")
    return f"{row['mean']:.1f} ± {'n/a' if ci is None else format(ci, '.1f')}"


def paired_cell(a: Mapping | None, b: Mapping | None) -> str:
    """``a - b`` paired over the seeds both rows share: ``mean ± 95% t-interval``."""
    if not a or not b or not a.get("accuracies") or not b.get("accuracies"):
        return "-"
    acc_b = dict(zip(b["seeds"], b["accuracies"]))
    diffs = [x - acc_b[s] for s, x in zip(a["seeds"], a["accuracies"]) if s in acc_b]
    if len(diffs) < 2:
        return "-"
    mean, ci = mean_ci95(diffs)
    return f"{mean:+.1f} ± {ci:.1f}"


# Paired differences shown under a sweep's table: (label, method, reference method).
PAIRED = (("rule − rule_init (paired)", "rule", "rule_init"),
          ("rule − random (paired)", "rule", "random"))


def pivot_tables(rows, settings, *, axis: str, label: str) -> list[Table]:
    """One table per dataset: methods down, the swept values across; then the rule's
    paired differences to its initialisation and to random init (same seeds)."""
    tables = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        values = list(dict.fromkeys(r[axis] for r in sub if r[axis] is not None))
        methods = list(dict.fromkeys(r["method"] for r in sub))
        index = {(r["method"], r[axis]): r for r in sub}
        cells = []
        for m in methods:
            free = (m, None) in index
            cells.append([m + (" (no network)" if free else "")] +
                         [cell(index.get((m, None if free else v))) for v in values])
        for name, a, b in PAIRED:
            if a in methods and b in methods:
                cells.append([name] + [paired_cell(index.get((a, v)), index.get((b, v)))
                                       for v in values])
        n = len(sub[0]["seeds"]) if sub else 0
        shots = "" if axis == "shots" else f"{settings['shots']}-shot "
        tables.append(Table(f"{ds}: {shots}probe accuracy (%), mean ± 95% interval over "
                            f"{n} seeds", ["method"] + [f"{label} {v}".strip() for v in values],
                            cells))
    return tables


def _sweep_figure(axis: str, label: str, log_x: bool):
    def figures(rows, ctx: Context) -> list[str]:
        if not rows:
            return []
        name = f"{axis}.png"
        plots.plot_sweep(rows, axis, ctx.workdir / name, xlabel=label, log_x=log_x,
                         title=f"{ctx.settings['shots']}-shot probe accuracy vs {label}")
        return [name]
    return figures


# ----------------------------------------------------------------------------- studies

def _widths_jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    return sweep_jobs(ctx, axis="width", values=list(s["widths"]),
                      net=lambda w: ((w, s["top"]), s["activation"]), datasets=s["datasets"],
                      shots_of=lambda _: s["shots"])


register_study(Study(
    name="widths", title="One hidden layer of width 32 to 4096 (then 32 top units)",
    full_time="78 minutes of row time measured on 2 CPU cores shared with other jobs "
              "(2026-11-29) with MNIST only, 500 steps, 5 seeds, widths 32-4096 and 7 methods; "
              "the two learned-rule rows at width 4096 took 28-29 minutes each (the per-unit "
              "networks run on every unit); the defaults (2 datasets, 1000 steps, 8 widths) "
              "take about 4 times that",
    defaults={**IMAGE_DEFAULTS, "widths": [32, 64, 128, 256, 512, 1024, 2048, 4096],
              "activation": "relu"},
    quick={**QUICK, "widths": [8, 16], "methods": ["rule", "random", "raw"]},
    jobs=_widths_jobs, figures=_sweep_figure("width", "hidden width", True),
    tables=lambda rows, s: pivot_tables(rows, s, axis="width", label="width")))


def _depths_jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    for d in s["depths"]:
        if d < 1:
            raise UserError(f"depths must be >= 1 layer, got {d}")
    return sweep_jobs(ctx, axis="depth", values=list(s["depths"]),
                      net=lambda d: ((s["hidden"],) * (d - 1) + (s["top"],), s["activation"]),
                      datasets=s["datasets"], shots_of=lambda _: s["shots"])


register_study(Study(
    name="depths", title="2 to 11 layers of 128 units (the top one 32)",
    full_time="22 minutes of row time measured on 2 CPU cores shared with other jobs with "
              "MNIST only, 500 steps, 5 seeds, 7 methods (2026-11-29); the defaults (2 datasets, "
              "1000 steps) take about 4 times that",
    defaults={**IMAGE_DEFAULTS, "depths": [2, 3, 5, 8, 11], "hidden": 128,
              "activation": "relu"},
    quick={**QUICK, "depths": [2, 3], "hidden": 8, "methods": ["rule", "random", "raw"]},
    jobs=_depths_jobs, figures=_sweep_figure("depth", "layers", False),
    tables=lambda rows, s: pivot_tables(rows, s, axis="depth", label="depth")))


def _nonlin_jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    return sweep_jobs(ctx, axis="activation", values=list(s["activations"]),
                      net=lambda a: ((s["hidden"],) * s["hidden_layers"] + (s["top"],), a),
                      datasets=s["datasets"], shots_of=lambda _: s["shots"])


register_study(Study(
    name="nonlinearities", title="Activations relu, leaky_relu, swish, tanh, sigmoid, step",
    full_time="70 minutes measured on 2 CPU cores shared with other jobs with MNIST only, "
              "500 steps, 5 seeds, 7 methods (2026-11-29); the defaults (2 datasets, 1000 "
              "steps) take about 4 times that",
    defaults={**IMAGE_DEFAULTS, "activations": ["relu", "leaky_relu", "swish", "tanh",
                                                "sigmoid", "step"],
              "hidden": 128, "hidden_layers": 4},
    quick={**QUICK, "activations": ["relu", "step"], "hidden": 8, "hidden_layers": 1,
           "methods": ["rule", "random", "raw"]},
    jobs=_nonlin_jobs, figures=_sweep_figure("activation", "activation", False),
    tables=lambda rows, s: pivot_tables(rows, s, axis="activation", label="")))


def _text_jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    if s["vocab_size"] <= 0:
        raise UserError(f"vocab_size must be positive, got {s['vocab_size']}")
    return sweep_jobs(ctx, axis="shots", values=list(s["shots_list"]),
                      net=lambda _: ((s["hidden"],) * s["hidden_layers"] + (s["top"],), "relu"),
                      datasets=[s["dataset"]], shots_of=lambda k: int(k),
                      dataset_options={"vocab_size": s["vocab_size"]})


def _text_figures(rows, ctx: Context) -> list[str]:
    if not rows:
        return []
    plots.plot_bars(rows, "shots", ctx.workdir / "text.png", chance=50.0,
                    title=f"{ctx.settings['dataset']}, vocabulary {ctx.settings['vocab_size']}: "
                          "probe accuracy (%)")
    return ["text.png"]


register_study(Study(
    name="text", title="Images to text: bag-of-words movie reviews at 10 and 100 shots",
    full_time="36 minutes measured on 2 CPU cores shared with other jobs with seeds=10 "
              "steps=500 and 7 methods (2026-11-29); the defaults (20 seeds, 1000 steps) "
              "take about 4 times that",
    defaults={**IMAGE_DEFAULTS, "dataset": "movie_reviews", "vocab_size": 1000,
              "shots_list": [10, 100], "seeds": 20, "hidden": 128, "hidden_layers": 4},
    quick={**QUICK, "vocab_size": 196, "shots_list": [2, 8], "hidden": 8, "hidden_layers": 1,
           "methods": ["rule", "random", "raw", "pca"]},
    jobs=_text_jobs, figures=_text_figures,
    tables=lambda rows, s: pivot_tables(rows, s, axis="shots", label="shots")))
