"""Paired table of per-task suite scores (``score.py`` JSON lines) against a reference rule.

Every rule in the file was scored on the same tasks (same networks, minibatches and
episodes), so differences are paired per task; intervals are 95% t-intervals over tasks.
Writes Markdown to stdout: one row per rule (mean accuracy at the long and short horizon,
paired difference to the reference at both), then the paired difference of every rule
per architecture group.

Command::

    python experiments/evolve/paired.py experiments/evolve/val64.jsonl --reference pool_start
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metaunsup.eval.stats import mean_ci95


def short(spec: str) -> str:
    return Path(spec).stem if spec.endswith(".safetensors") else spec


def fmt(x) -> str:
    m, h = mean_ci95(np.asarray(x, float))
    return f"{m:+.2f} ± {h:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scores", help="JSON lines written by score.py")
    p.add_argument("--reference", required=True, help="a rule's short name (file stem)")
    args = p.parse_args(argv)
    rows = [json.loads(ln) for ln in Path(args.scores).read_text().splitlines() if ln.strip()]
    by = {short(r["rule"]): r for r in rows}
    if args.reference not in by:
        raise SystemExit(f"error: reference {args.reference!r} is not in {args.scores}")
    ref = by[args.reference]
    acc_r, sh_r = np.asarray(ref["accuracy"]), np.asarray(ref["accuracy_short"])
    r0 = rows[0]
    print(f"{r0['suite']} suite: {r0['tasks']} tasks, {r0['steps']} steps "
          f"(short: {r0['short_steps']}), seed {r0['seed']}; paired vs {args.reference}\n")
    print(f"| rule | acc @{r0['steps']} % | @{r0['short_steps']} % | "
          f"paired diff @{r0['steps']} | @{r0['short_steps']} | diverged |")
    print("|---|---|---|---|---|---|")
    for name, r in by.items():
        a, s = np.asarray(r["accuracy"]), np.asarray(r["accuracy_short"])
        m, h = mean_ci95(a)
        print(f"| {name} | {m:.2f} ± {h:.2f} | {s.mean():.2f} | {fmt(a - acc_r)} | "
              f"{fmt(s - sh_r)} | {r['diverged']} |")
    groups = sorted(set(ref["group"]), key=ref["group"].index)
    print(f"\nPaired difference to {args.reference} at {r0['steps']} steps, by group "
          "(tasks per group in brackets):\n")
    print("| rule | " + " | ".join(f"{g} ({ref['group'].count(g)})" for g in groups) + " |")
    print("|---|" + "---|" * len(groups))
    for name, r in by.items():
        if name == args.reference:
            continue
        d = np.asarray(r["accuracy"]) - acc_r
        grp = np.asarray(r["group"])
        cells = []
        for g in groups:
            x = d[grp == g]
            cells.append(fmt(x) if len(x) > 1 else f"{x.mean():+.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
