"""``surrogate``: a surrogate objective's own loss against the few-shot accuracy it gives.

The paper's motivation (Metz et al. 2019, sec. 1 and 5): a VAE's few-shot
accuracy can peak and fall while its own objective keeps improving. For each
seed, the VAE and the autoencoder (Adam, as the ``vae`` / ``autoencoder``
methods) and the rule train the same seeded network in segments of ``every``
steps (:func:`metaunsup.inner.train.train`, continued from the previous
segment's state); after each segment the top layer is probed
(:func:`metaunsup.eval.compare.row_probe`) and the training loss is the mean
over the segment's last scan chunk (at most 50 steps) of the rule's own
metric: ``recon_mse`` (squared error per input) or ``neg_elbo``.
"""
from __future__ import annotations

import math

import jax
import numpy as np

from metaunsup.baselines.rule import BACKPROP_LR
from metaunsup.errors import UserError
from metaunsup.eval import ProbeConfig
from metaunsup.eval.compare import row_probe
from metaunsup.eval.stats import mean_ci95
from metaunsup.inner.train import train
from metaunsup.inner.unroll import init_inner_state
from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule
from metaunsup.rules.loading import load_rule
from metaunsup.studies import plots
from metaunsup.studies.base import Context, Job, Study, Table, register_study, seed_list
from metaunsup.studies.grid import cell, check_datasets, expand_methods, load_dataset
from metaunsup.studies.methods import method_settings, resolve

# Study label -> (rule name, the metric that is its training loss).
BACKPROP = {"autoencoder": ("ae_sgd", "recon_mse"), "vae": ("vae", "neg_elbo")}


def _rule_for(label: str, spec, ctx: Context, seed: int):
    """``(rule, meta_params, loss metric or None)`` of a study label."""
    if label in BACKPROP:
        name, metric = BACKPROP[label]
        return make_rule(name, spec, optimizer="adam", lr=BACKPROP_LR), {}, metric
    _, options = resolve(label, rule=ctx.rule, init_rule=ctx.init_rule)
    loaded = load_rule(options.get("rule"), seed=seed)
    return loaded.for_net(spec), loaded.meta_params, None


def trace(label: str, dataset, spec, ctx: Context, seed: int) -> tuple[list, list, list]:
    """``(steps, accuracies %, losses)`` of one seed; loss None where not defined."""
    s = ctx.settings
    rule, meta, metric = _rule_for(label, spec, ctx, seed)
    probe = row_probe(dataset, spec, shots=s["shots"], seed=seed,
                      config=ProbeConfig(max_test=s["max_test"]))
    x = np.asarray(dataset.x_train)
    key = jax.random.PRNGKey(seed)
    # The network every method of this seed starts from (inner.train.train splits
    # the seed's key into (init, data) and initialises from the first half).
    state = init_inner_state(rule, meta, key=jax.random.split(key)[0])
    steps, accs, losses = [0], [100.0 * probe(state.params)], [None]
    for k in range(s["steps"] // s["every"]):
        # Each segment continues the state; its key only draws the batch order.
        res = train(rule, meta, x, steps=s["every"], batch_size=min(s["batch_size"], len(x)),
                    key=jax.random.fold_in(key, k), inner_state=state)
        state = res.inner_state
        steps.append((k + 1) * s["every"])
        accs.append(100.0 * probe(res.params))
        losses.append(None if metric is None else float(res.metrics[metric]))
    return steps, accs, losses


def _summ(per_seed: list[list]) -> tuple[list, list]:
    means, cis = [], []
    for j in range(len(per_seed[0])):
        vals = [p[j] for p in per_seed]
        if any(v is None or not math.isfinite(v) for v in vals):
            means.append(None)
            cis.append(None)
            continue
        m, c = mean_ci95(vals)
        means.append(m)
        cis.append(None if math.isnan(c) else c)
    return means, cis


def _jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    datasets = check_datasets(s["datasets"])
    methods = expand_methods(s["methods"])
    for label in methods:
        if label not in BACKPROP and label not in ("rule", "rule_init"):
            raise UserError(f"surrogate compares autoencoder, vae, rule and rule_init; "
                            f"got {label}")
    if s["every"] <= 0 or s["steps"] % s["every"]:
        raise UserError(f"every must be a positive divisor of steps, got {s['every']}")
    MLPSpec(n_in=1, widths=tuple(s["widths"]), activation=s["activation"])
    seeds = seed_list(s)
    jobs = []
    for ds_name in datasets:
        for label in methods:
            settings = {"dataset": ds_name, "resolution": s["resolution"], "widths": s["widths"],
                        "activation": s["activation"], "steps": s["steps"],
                        "every": s["every"], "batch_size": s["batch_size"], "seeds": seeds,
                        "shots": s["shots"], "max_test": s["max_test"],
                        "loss": BACKPROP.get(label, (None, None))[1],
                        **method_settings(label, rule=ctx.rule, init_rule=ctx.init_rule)}

            def run(ds_name=ds_name, label=label):
                dataset = load_dataset(ds_name, s)
                spec = MLPSpec(n_in=dataset.dim, widths=tuple(s["widths"]),
                               activation=s["activation"])
                traces = [trace(label, dataset, spec, ctx, seed) for seed in seeds]
                steps = traces[0][0]
                acc_m, acc_c = _summ([t[1] for t in traces])
                loss_m, loss_c = _summ([t[2] for t in traces])
                best = int(np.argmax(acc_m))
                return {"mean": acc_m[-1], "ci95": acc_c[-1],
                        "accuracies": [t[1][-1] for t in traces], "seeds": seeds,
                        "curve": {"steps": steps, "mean": acc_m, "ci95": acc_c,
                                  "loss": loss_m, "loss_ci95": loss_c,
                                  "accuracies": [t[1] for t in traces],
                                  "losses": [t[2] for t in traces]},
                        "best_step": steps[best], "best_mean": acc_m[best]}

            jobs.append(Job(key={"dataset": ds_name, "method": label}, run=run,
                            settings=settings))
    return jobs


def _figures(rows, ctx: Context) -> list[str]:
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = {r["method"]: r for r in rows if r["dataset"] == ds}
        for label, r in sub.items():
            if label not in BACKPROP:
                continue
            series = {f"{m} accuracy": {"x": q["curve"]["steps"], "mean": q["curve"]["mean"],
                                        "ci95": q["curve"]["ci95"]}
                      for m, q in sub.items() if m == label or m not in BACKPROP}
            c = r["curve"]
            loss = {f"{label} {r['settings']['loss']} (right)": {
                "x": [t for t, v in zip(c["steps"], c["loss"]) if v is not None],
                "mean": [v for v in c["loss"] if v is not None]}}
            name = f"surrogate_{ds}_{label}.png"
            plots.plot_lines(series, ctx.workdir / name, xlabel="inner steps",
                             ylabel=f"{ctx.settings['shots']}-shot probe accuracy (%)",
                             right=loss, right_label=f"training {r['settings']['loss']}",
                             title=f"{ds}: {label} accuracy vs its own loss")
            out.append(name)
    return out


def _tables(rows, settings) -> list[Table]:
    tables = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        steps = sub[0]["curve"]["steps"]
        cells = []
        for r in sub:
            c = r["curve"]
            cells.append([f"{r['method']} accuracy (%)"] +
                         [cell({"mean": m, "ci95": e}) for m, e in zip(c["mean"], c["ci95"])])
            if r["settings"]["loss"]:
                cells.append([f"{r['method']} {r['settings']['loss']}"] +
                             ["-" if v is None else f"{v:.4g}" for v in c["loss"]])
        tables.append(Table(f"{ds}: accuracy (mean ± 95% interval over "
                            f"{len(sub[0]['seeds'])} seeds) and training loss over steps",
                            ["row"] + [f"step {t}" for t in steps], cells))
    return tables


register_study(Study(
    name="surrogate", title="Surrogate mismatch: VAE and autoencoder loss vs their accuracy",
    full_time="16 minutes measured on 2 CPU cores shared with other jobs with MNIST only, "
              "2000 steps, 2 seeds (2026-11-29); the defaults (2 datasets, 3000 steps, 3 seeds) "
              "take about 4.5 times that",
    defaults={"datasets": ["mnist", "fashion_mnist"], "resolution": 14, "steps": 3000,
              "every": 250, "seeds": 3, "first_seed": 0, "shots": 10, "batch_size": 128,
              "max_test": 2000, "max_train": 0, "widths": [128, 128, 128, 128, 32],
              "activation": "relu", "methods": ["vae", "autoencoder", "rule"]},
    quick={"datasets": ["mnist"], "steps": 20, "every": 10, "seeds": 2, "batch_size": 32,
           "max_test": 200, "max_train": 512, "widths": [8, 4], "shots": 2,
           "methods": ["autoencoder", "rule"]},
    jobs=_jobs, figures=_figures, tables=_tables))
