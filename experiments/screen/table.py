"""The screen's table: per coordinate, the paired probe-accuracy change of each side.

Reads ``stage1.npz`` (``screen.py``'s per-group raw losses) and writes ``table.md``:
for every coordinate, the change in 10-way probe accuracy (points) of theta_i = +delta
and -delta against the start, mean and 95% t-interval over all tasks (paired), per
group and pooled, and the ridge meta-loss half-difference t statistic.

Command::

    python experiments/screen/table.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from metaunsup.eval.stats import mean_ci95

HERE = Path(__file__).resolve().parent


def main(stage: str = "stage1") -> None:
    d = dict(np.load(HERE / f"{stage}.npz"))
    recs = [json.loads(ln) for ln in (HERE / f"{stage}.jsonl").read_text().splitlines()]
    names = [r["coordinate"] for r in recs if r["measure"] == "probe"]
    ridge_t = {r["coordinate"]: r["t"] for r in recs if r["measure"] == "ridge_loss"}
    groups = sorted({k.split("/")[0] for k in d}, key=["paper", "sigmoid", "step", "wide"].index)
    n = len(names)
    acc = {g: -100 * d[f"{g}/probe"] for g in groups}  # [2n + 1, T] percent
    pooled = np.concatenate([acc[g] for g in groups], axis=1)
    lines = [f"# One-at-a-time screen ({stage})", "",
             f"{n} coordinates x (+-{recs[0]['delta']}), groups {', '.join(groups)}, "
             f"{pooled.shape[1]} validation-suite tasks in all, {recs[0]['steps']} inner steps; "
             f"start: {pooled[0].mean():.1f}% probe accuracy. Entries: accuracy change "
             "(points) vs the start, paired over tasks (95% interval for the pooled columns).",
             "", "| coordinate | + pooled | - pooled | " + " | ".join(f"+ / - {g}" for g in groups)
             + " | ridge t |", "|---|---|---|" + "---|" * len(groups) + "---|"]
    for i, name in enumerate(names):
        cells = []
        for side in (1 + i, 1 + n + i):
            m, h = mean_ci95(pooled[side] - pooled[0])
            cells.append(f"{m:+.1f} ± {h:.1f}")
        for g in groups:
            a = acc[g]
            cells.append(f"{(a[1 + i] - a[0]).mean():+.1f} / {(a[1 + n + i] - a[0]).mean():+.1f}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {ridge_t[name]:+.1f} |")
    (HERE / f"{stage}_table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
