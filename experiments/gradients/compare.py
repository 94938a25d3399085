"""Full-horizon backprop vs many-pair ES on the residual search space (issue 19, item 3).

For the directions of a recipe (``--directions``, default: those of
``recipe_cmaes_pool``) and each horizon H:

- ``g_bp(A)``, ``g_bp(B)``: exact gradients of the mean ridge meta-loss after H inner
  steps (one truncation covering the whole run, backprop through every step) on two
  disjoint sets of tasks A and B from the training split;
- ``g_es(A)``: an antithetic ES estimate with ``--pairs`` pairs (sigma ``--sigma``) on
  the same tasks A (common random numbers).

It prints the batch-to-batch cosine cos(g_bp(A), g_bp(B)) (is the exact gradient of
one batch of tasks a direction the next batch agrees with?) and cos(g_bp(A), g_es(A))
(does backprop through the rule's non-smooth parts, the rank code and the step
activation, see the same slope as the smoothed loss ES follows?), with the seconds each
took. One JSON line per horizon in ``--out``.

Command::

    python experiments/gradients/compare.py --horizons 100,300 --tasks 4 --pairs 64 \\
        --out experiments/gradients/compare.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.outer.config import load_config
from metaunsup.outer.evolve import residual
from metaunsup.rules import make_rule
from metaunsup.tasks.pool import build_pool, load_split
from metaunsup.tasks.suite import SuiteConfig, build_suite, run_task


def cosine(a, b):
    return float(jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="recipe_cmaes_pool")
    p.add_argument("--horizons", default="100,300")
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--sigma", type=float, default=0.05)
    p.add_argument("--group", default="paper")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    recipe = load_config(args.recipe)
    arrays, image = load_split(recipe.tasks.datasets, resolution=14, split="train")
    pool = build_pool(arrays, image=image)
    space = residual(recipe, pool.dim)
    for h in (int(x) for x in args.horizons.split(",")):
        suite = SuiteConfig(tasks=2 * args.tasks, steps=h, short_steps=0, seed=777,
                            groups=(args.group,), datasets=recipe.tasks.datasets)
        group = build_suite(suite, pool)[0]
        rule = make_rule("learned", group.spec, config=recipe.rule_config)
        fields = (group.dataset_id, group.perm, group.classes, group.key_init, group.key_data,
                  group.key_episode)

        def loss(theta, lo, hi):
            meta = space(theta)
            out = jax.vmap(lambda *a: run_task(suite, rule, meta, pool, *a))(
                *(f[lo:hi] for f in fields))
            return jnp.mean(out.ridge_loss[:, -1])

        grad = jax.jit(jax.grad(loss), static_argnums=(1, 2))
        value = jax.jit(jax.vmap(loss, in_axes=(0, None, None)), static_argnums=(1, 2))
        theta = space.zeros()
        t0 = time.perf_counter()
        g_a = grad(theta, 0, args.tasks)
        g_b = grad(theta, args.tasks, 2 * args.tasks)
        g_a, g_b = jax.block_until_ready((g_a, g_b))
        t_bp = time.perf_counter() - t0
        t0 = time.perf_counter()
        eps = jax.random.normal(jax.random.key(h), (args.pairs, space.size))
        pos = value(theta + args.sigma * eps, 0, args.tasks)
        neg = value(theta - args.sigma * eps, 0, args.tasks)
        g_es = jnp.mean((pos - neg)[:, None] * eps, axis=0) / (2 * args.sigma)
        t_es = time.perf_counter() - t0
        rec = {"horizon": h, "tasks_per_set": args.tasks, "pairs": args.pairs,
               "sigma": args.sigma, "directions": list(space.names),
               "cos_bp_batch_to_batch": round(cosine(g_a, g_b), 4),
               "cos_bp_vs_es": round(cosine(g_a, g_es), 4),
               "norm_bp": float(jnp.linalg.norm(g_a)), "norm_es": float(jnp.linalg.norm(g_es)),
               "seconds_bp_two_sets": round(t_bp, 1), "seconds_es": round(t_es, 1),
               "finite": bool(np.all(np.isfinite(np.asarray(g_a))))}
        with open(args.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
