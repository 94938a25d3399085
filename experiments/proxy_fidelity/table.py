"""Proxy fidelity (issue 19): how well cheap fitness proxies rank the correlation study's rules.

Truth: the validation suite's probe accuracy at 1000 inner steps, on the tasks of
``experiments/transfer_validation/scores_validation.jsonl``. Proxies: those of
``proxies.jsonl`` (``proxy.py``, if run) and three read from the suite's own records: the
probe at 100 steps, minus the ridge meta-loss at 1000 steps, and every 4th task.
For each: Spearman rank correlation with the truth over the rules (bootstrap 95%
interval over rules) and its cost in inner task-steps per rule. The suite's split-half
rank correlation (odd vs even tasks) says how much of the truth's own ranking is noise.

Command::

    python experiments/proxy_fidelity/table.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "transfer_validation"))
from table import spearman_ci  # noqa: E402



def main() -> None:
    val = {r["rule"]: r for r in map(json.loads, (HERE.parent / "transfer_validation" /
                                                  "scores_validation.jsonl").read_text().splitlines())}
    rules = list(val)  # every rule of the correlation study's validation scores
    truth = np.array([np.mean(val[r]["accuracy"]) for r in rules])
    rows = []

    def add(name, values, cost, what):
        rho, lo, hi = spearman_ci(values, truth)
        rows.append((name, what, cost, rho, lo, hi))

    acc = {r: np.asarray(val[r]["accuracy"]) for r in rules}
    n = len(acc[rules[0]])
    truth_half = [acc[r][::2].mean() for r in rules]
    rho, lo, hi = spearman_ci([acc[r][1::2].mean() for r in rules], truth_half)
    rows.append(("split-half (odd vs even tasks)", "the truth's own noise: odd tasks' mean "
                 "against even tasks' mean", n // 2 * 1000, rho, lo, hi))
    add("probe100", [np.mean(val[r]["accuracy_short"]) for r in rules], n * 100,
        f"probe after 100 steps, {n} tasks")
    add("ridge1000", [-np.mean(val[r]["ridge_loss"]) for r in rules], n * 1000,
        f"ridge meta-loss after 1000 steps, {n} tasks")
    add(f"tasks{n // 4}", [acc[r][::4].mean() for r in rules], n // 4 * 1000,
        f"probe at 1000 steps, every 4th task ({n // 4} tasks)")
    path = HERE / "proxies.jsonl"
    for rec in (map(json.loads, path.read_text().splitlines()) if path.exists() else []):
        by = dict(zip(rec["rules"], rec["score"]))
        add(rec["proxy"], [by[r] for r in rules], rec["task_steps_per_rule"],
            f"{rec['measure']} after {rec['steps']} steps, {rec['tasks']} tasks of the "
            f"{rec['split']} split, groups {','.join(rec['groups'])}, {rec['resolution']}px")
    lines = ["# Proxy fidelity (issue 19)", "",
             f"{len(rules)} rules: those of the correlation study "
             "(`experiments/transfer_validation/rules.txt`). Truth: validation suite, "
             f"{n} tasks, probe accuracy after 1000 inner steps "
             f"(range over the rules: {truth.min():.1f} to {truth.max():.1f}).", "",
             "| proxy | what | task-steps per rule | Spearman vs truth | 95% (bootstrap) |",
             "|---|---|---|---|---|"]
    for name, what, cost, rho, lo, hi in rows:
        lines.append(f"| {name} | {what} | {cost:,} | {rho:.3f} | {lo:.2f} to {hi:.2f} |")
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
