"""Population efficiency: P candidate rules on the same task as one vmapped program (issue 19).

For each population size P (default 1, 16, 64) the P members (the term-pool start
plus small random residuals) train the same task of the validation suite's paper
group for ``--steps`` inner steps (``outer.population.population_scores``, one
compiled program per P, timed after a warm-up call). Reported per P: seconds,
task-steps per second, and ``efficiency`` = P x time(P = 1) / time(P): how much
faster the vmapped population is than P separate runs (1.0: no gain).

Usage::

    python benchmarks/bench_population.py [--json] [--sizes 1,16,64] [--steps 200]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import jax

from metaunsup.outer.population import population_scores
from metaunsup.rules import make_rule
from metaunsup.rules.residual import residual_around
from metaunsup.tasks.suite import build_suite, load_suite_pool, suite_config


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--sizes", default="1,16,64")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--config", default="pool")
    p.add_argument("--group", default="paper")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    suite = suite_config("validation", tasks=1, steps=args.steps, short_steps=0,
                         groups=(args.group,))
    pool = load_suite_pool(suite)
    group = build_suite(suite, pool)[0]
    rule = make_rule("learned", group.spec, config=args.config)
    space = residual_around(rule, rule.init_meta_params(jax.random.PRNGKey(0)))
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        theta = 0.1 * jax.random.normal(jax.random.key(size), (size, space.size))
        members = jax.vmap(space)(theta)

        def run():
            return jax.block_until_ready(
                population_scores(suite, rule, members, pool, group, [args.steps]))

        t0 = time.perf_counter()
        run()
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        sec = statistics.median(times)
        rows.append({"population": size, "seconds": round(sec, 3),
                     "task_steps_per_s": round(size * args.steps / sec, 1),
                     "compile_and_first_call_s": round(compile_s, 1), "steps": args.steps,
                     "config": args.config, "group": args.group,
                     "device": str(jax.devices()[0].platform)})
    base = rows[0]["seconds"] / rows[0]["population"]
    for r in rows:
        r["efficiency"] = round(r["population"] * base / r["seconds"], 2)
        print(json.dumps(r) if args.json else
              f"P={r['population']:>3}  {r['seconds']:8.2f} s  {r['task_steps_per_s']:9.1f} "
              f"task-steps/s  efficiency {r['efficiency']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
