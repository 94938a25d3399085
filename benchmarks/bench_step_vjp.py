"""Where the TBPTT meta-gradient's time goes: one inner step, forward vs backward.

    python benchmarks/bench_step_vjp.py [--repeats 20]

On the ``bench_metagrad.py`` task (the ``recipe_small`` rule, 256-128-64-32 net,
batch 64) it times, each as one jitted program, the forward and the VJP
(forward + backward) of: the whole step of ``RuleTask.step_loss`` (inner
update, then the ridge meta-objective), the inner update alone, and the
meta-objective alone; and it reports XLA's flop and byte counts of each. If the
VJP's time ratio is far above its flop ratio, the backward runs at a lower
rate than the forward (the truncated meta-gradient cannot be cheaper than
forward + VJP per step). One JSON object per line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    from bench_inner_step import xla_cost
    from bench_metagrad import _setup, _time

    from metaunsup.inner.unroll import inner_step
    from metaunsup.run.compile_cache import enable
    from metaunsup.tasks.rule_task import RuleTask

    enable()
    config, pool, rule, mp = _setup()
    task = RuleTask(rule, config.tasks, pool)
    state = task.init(mp, jax.random.PRNGKey(1))
    k_x, k_ep = jax.random.split(jax.random.PRNGKey(2))
    x = task._batch(k_x, state, task.dist.batch_size)

    def cotangent(tree):  # ones for float leaves, float0 zeros for integer leaves
        return jax.tree_util.tree_map(
            lambda a: jnp.ones_like(a) if jnp.issubdtype(a.dtype, jnp.floating)
            else jnp.zeros(a.shape, jax.dtypes.float0), tree)

    def vjp_of(f):
        def g(*args):
            out, back = jax.vjp(f, *args)
            return back(cotangent(out))
        return g

    def whole(m, s):
        s, loss, _ = task.step_loss(m, s, jax.random.PRNGKey(2))
        return s, loss

    def update(m, inner):
        return inner_step(rule, m, inner, x)[0]

    def objective(params):
        return task._score(params, x, state.classes, state.perm, k_ep)[0]

    parts = {"step": (whole, (mp, state)), "inner_update": (update, (mp, state.inner)),
             "meta_objective": (objective, (state.inner.params,))}
    for name, (f, a) in parts.items():
        row = {"bench": "step_vjp", "part": name}
        for kind, fn in (("forward", f), ("vjp", vjp_of(f))):
            jf = jax.jit(fn)
            cost = xla_cost(jf.lower(*a).compile())
            row[f"{kind}_ms"] = round(1e3 * _time(jf, a, args.repeats), 3)
            row[f"{kind}_gflop"] = round(cost.get("flops", 0.0) / 1e9, 4)
            row[f"{kind}_mb"] = round(cost.get("bytes accessed", 0.0) / 1e6, 2)
        row["time_ratio"] = round(row["vjp_ms"] / row["forward_ms"], 2)
        row["flop_ratio"] = round(row["vjp_gflop"] / row["forward_gflop"], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
