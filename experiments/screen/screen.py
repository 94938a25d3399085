"""One-at-a-time screen of every coordinate of the term-pool rule around its start (issue 19).

Every coordinate i of the residual space (``rules.residual``, 60 for ``pool``) is
moved by +delta and -delta; all 2n + 1 rules train the same validation-suite tasks
(common random numbers: same data, permutation, initial network, minibatches,
episodes) and each is scored by the ridge meta-objective and the logistic probe
at the horizon. Per coordinate and measure: the paired central difference
``(L(+) - L(-)) / 2`` and its 95% t-interval over tasks, and the paired
difference of the better side (by its mean) to the start, ``L(side) - L(0)``. Directions whose
interval excludes 0 move the fitness; they are the candidates for the search.

Commands (two stages; measured: see README.md in this folder)::

    python experiments/screen/screen.py --tasks 6 --steps 500 --groups paper,sigmoid,step \\
        --directions <the 13 planes' global weights, log_tau, log_lr, its 3 kind offsets,
                      the 3 bias read-outs> --out experiments/screen/stage1.jsonl
    python experiments/screen/screen.py ... --directions <the kind offsets of the planes
                      stage 1 found> --out experiments/screen/stage2.jsonl

Each group's raw losses are saved beside ``--out`` (``.npz``) as soon as the group
ends, so an interrupted screen resumes there.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.eval.stats import mean_ci95
from metaunsup.outer.population import member_loss, population_scores
from metaunsup.rules import make_rule
from metaunsup.rules.residual import residual_around
from metaunsup.tasks.archs import arch_spec
from metaunsup.tasks.suite import build_suite, load_suite_pool, suite_config


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="pool")
    p.add_argument("--tasks", type=int, default=6, help="tasks per architecture group")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--delta", type=float, default=0.3)
    p.add_argument("--groups", default="paper,sigmoid,step,wide")
    p.add_argument("--chunk", type=int, default=32, help="members per compiled call")
    p.add_argument("--directions", default="",
                   help="comma-separated coordinate names to screen (default: every one)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    groups = args.groups.split(",")
    probe_rule = make_rule("learned", arch_spec("paper", 196), config=args.config)
    start = probe_rule.init_meta_params(jax.random.PRNGKey(0))
    space = residual_around(probe_rule, start,
                            [d for d in args.directions.split(",") if d])
    n = space.size
    raw = Path(args.out).with_suffix(".npz")  # per-group losses, saved as each group ends
    saved = dict(np.load(raw)) if raw.exists() else {}
    thetas = jnp.concatenate([jnp.zeros((1, n)), args.delta * jnp.eye(n), -args.delta * jnp.eye(n)])
    losses = {m: [] for m in ("ridge_loss", "probe")}
    t0 = time.time()
    for gi, name in enumerate(groups):
        if f"{name}/probe" in saved:  # finished in an earlier call
            for m in losses:
                losses[m].append(saved[f"{name}/{m}"])
            continue
        suite = suite_config("validation", tasks=args.tasks, steps=args.steps, short_steps=0,
                             groups=(name,), seed=100 + gi)
        pool = load_suite_pool(suite)
        group = build_suite(suite, pool)[0]
        rule = make_rule("learned", group.spec, config=args.config)
        parts = {m: [] for m in losses}
        for c in range(0, len(thetas), args.chunk):
            chunk = thetas[c:c + args.chunk]
            if len(chunk) < args.chunk:  # pad: one compilation per group
                chunk = jnp.concatenate([chunk, jnp.zeros((args.chunk - len(chunk), n))])
            scores = population_scores(suite, rule, jax.vmap(space)(chunk), pool, group,
                                       [args.steps])
            keep = min(args.chunk, len(thetas) - c)
            for m in parts:
                parts[m].append(member_loss(suite, scores, m)[:keep])
            print(f"{name}: members {c + keep}/{len(thetas)}  {time.time() - t0:.0f}s",
                  file=sys.stderr, flush=True)
        for m in losses:
            losses[m].append(np.concatenate(parts[m]))  # [2n + 1, T]
            saved[f"{name}/{m}"] = losses[m][-1]
        np.savez(raw, **saved)
    with open(args.out, "w") as f:
        for m in losses:
            L = np.concatenate(losses[m], axis=1)  # [2n + 1, all tasks]
            if m == "probe":
                L = 100 * L  # percent (negative accuracy)
            for i, c in enumerate(space.coords):
                plus, minus = L[1 + i], L[1 + n + i]
                slope, slope_ci = mean_ci95((plus - minus) / 2)
                side = "+" if plus.mean() < minus.mean() else "-"
                best, best_ci = mean_ci95((plus if side == "+" else minus) - L[0])
                f.write(json.dumps({
                    "measure": m, "coordinate": c.name, "delta": args.delta,
                    "half_difference": round(float(slope), 5), "ci95": round(float(slope_ci), 5),
                    "t": round(float(slope / (slope_ci / 1.96 + 1e-12)), 2),
                    "better_side": side, "best_vs_start": round(float(best), 5),
                    "best_vs_start_ci95": round(float(best_ci), 5),
                    "tasks": int(L.shape[1]), "steps": args.steps, "groups": groups}) + "\n")
    print(f"done in {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
