"""The correlation table of issue 22: validation vs transfer check (vs held-out, as information).

Reads ``scores_validation.jsonl`` and ``scores_transfer.jsonl`` (``score.py``) and, if
present, ``heldout.jsonl`` (``heldout.py``), and writes ``table.md``: every rule's mean
probe accuracy (95% t-interval over tasks) on both suites, its paired difference to the
term-pool start on each, the Spearman rank correlation of validation with the transfer
check over all rules (with a bootstrap interval over rules), and, recorded once and never
used for choosing, the rank correlations with held-out MNIST14 and Fashion-MNIST14.

Command::

    python experiments/transfer_validation/table.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from metaunsup.eval.stats import mean_ci95

HERE = Path(__file__).resolve().parent
START = "experiments/transfer_validation/rules/pool_start.safetensors"


def read(name):
    path = HERE / name
    if not path.exists():
        return {}
    return {r["rule"]: r for r in map(json.loads, path.read_text().splitlines()) if r}


def short(spec: str) -> str:
    return Path(spec).stem if spec.endswith(".safetensors") else spec


def paired(a, b):
    m, h = mean_ci95(np.asarray(a) - np.asarray(b))
    return f"{m:+.2f} ± {h:.2f}"


def spearman_ci(x, y, n_boot=2000, seed=0):
    rho = spearmanr(x, y).statistic
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x), np.asarray(y)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(x), len(x))
        if len(set(i)) > 2:
            boots.append(spearmanr(x[i], y[i]).statistic)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return rho, lo, hi


def main() -> None:
    val, tra, held = read("scores_validation.jsonl"), read("scores_transfer.jsonl"), read("heldout.jsonl")
    rules = [r for r in val if r in tra]
    lines = ["| rule | validation | transfer | val − start (paired) | transfer − start (paired) "
             "| MNIST14 | F-MNIST14 |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rules, key=lambda r: -np.mean(val[r]["accuracy"])):
        v, t = val[r]["accuracy"], tra[r]["accuracy"]
        mv, hv = mean_ci95(v)
        mt, ht = mean_ci95(t)
        h = held.get(r, {})
        lines.append(f"| {short(r)} | {mv:.2f} ± {hv:.2f} | {mt:.2f} ± {ht:.2f} | "
                     f"{paired(v, val[START]['accuracy']) if START in val else '-'} | "
                     f"{paired(t, tra[START]['accuracy']) if START in tra else '-'} | "
                     f"{h.get('mnist', '-')} | {h.get('fashion_mnist', '-')} |")
    x = [np.mean(val[r]["accuracy"]) for r in rules]
    y = [np.mean(tra[r]["accuracy"]) for r in rules]
    rho, lo, hi = spearman_ci(x, y)
    out = ["# Validation vs transfer check (issue 22)", "",
           f"{len(rules)} rules; {val[rules[0]]['tasks']} tasks per suite, "
           f"{val[rules[0]]['steps']} inner steps, 10-way 10-shot logistic probe; accuracies in %.",
           "", f"**Spearman rank correlation, validation vs transfer: {rho:.3f}** "
           f"(bootstrap 95% over rules: {lo:.2f} to {hi:.2f}).", ""]
    near = [r for r in rules if r.endswith(".safetensors")]  # term-pool rules near the start
    if len(near) >= 5:
        rho_n, lo_n, hi_n = spearman_ci([np.mean(val[r]["accuracy"]) for r in near],
                                        [np.mean(tra[r]["accuracy"]) for r in near])
        out += [f"Among the {len(near)} term-pool rules near the start only (the search's "
                f"neighbourhood, where differences are small): Spearman {rho_n:.3f} "
                f"(bootstrap 95%: {lo_n:.2f} to {hi_n:.2f}).", ""]
    both = [r for r in rules if r in held and "mnist" in held[r] and "fashion_mnist" in held[r]]
    if len(both) >= 5:
        for key, label in (("mnist", "MNIST14"), ("fashion_mnist", "Fashion-MNIST14")):
            xs = [np.mean(val[r]["accuracy"]) for r in both]
            ys = [float(str(held[r][key]).split()[0]) for r in both]
            out.append(f"As information only (never used to choose): Spearman, validation vs "
                       f"held-out {label}, {len(both)} rules: {spearmanr(xs, ys).statistic:.3f}.")
        out.append("")
    top = max(rules, key=lambda r: np.mean(val[r]["accuracy"]))
    out.append(f"Top-ranked by validation: `{short(top)}`.")
    out += ["", *lines, ""]
    (HERE / "table.md").write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
