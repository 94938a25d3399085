"""The evolution run's validation curve against wall time (issue 19 must-show).

Reads a workdir's ``metrics.jsonl`` (``--workdir``, default ``workdirs/cmaes_pool``, or
the copy in this folder) and draws ``curve.png``: validation probe accuracy of the
strategy's mean (32 fixed suite tasks, 1000 inner steps) against wall time, with the
start (step 0) as a line, and the per-generation paired fitness of the mean against the
start (ridge meta-loss difference on that generation's 4 training tasks; lower is better).

Command::

    python experiments/evolve/curve.py --workdir workdirs/cmaes_pool
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default=str(HERE / "run"))
    args = p.parse_args(argv)
    recs = [json.loads(ln) for ln in (Path(args.workdir) / "metrics.jsonl").read_text().splitlines()]
    val = [(r["wall_s"] / 60, 100 * r["val_accuracy"], r["step"]) for r in recs if "val_accuracy" in r]
    fit = [(r["wall_s"] / 60, r["fitness_mean_vs_start"]) for r in recs
           if "fitness_mean_vs_start" in r]
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    a.plot([v[0] for v in val], [v[1] for v in val], "o-", label="mean of the search")
    a.axhline(val[0][1], color="gray", ls="--", label=f"start (step 0): {val[0][1]:.1f}")
    best = max(val, key=lambda v: v[1])
    a.annotate(f"best: {best[1]:.1f} (gen {best[2]})", (best[0], best[1]),
               textcoords="offset points", xytext=(5, 8))
    a.set_ylabel("validation probe accuracy (%)\n32 suite tasks, 1000 steps")
    a.legend()
    b.plot([f[0] for f in fit], [f[1] for f in fit], ".", alpha=0.6)
    b.axhline(0.0, color="gray", ls="--")
    b.set_ylabel("mean - start, ridge loss\n(generation's tasks; lower is better)")
    b.set_xlabel("wall time (minutes, 2 CPU cores)")
    fig.suptitle("recipe_cmaes_pool: CMA-ES over 16 directions of the term-pool rule")
    fig.tight_layout()
    fig.savefig(HERE / "curve.png", dpi=80)


if __name__ == "__main__":
    main()
