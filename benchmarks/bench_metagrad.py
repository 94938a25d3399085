"""Cost of a TBPTT meta-gradient relative to the forward unroll, memory with and
without rematerialisation, and meta-step throughput on 1 vs 2 devices.

    python benchmarks/bench_metagrad.py --json            # full run (several minutes)
    python benchmarks/bench_metagrad.py --json --quick    # T = 20 only, no memory sweep

Prints one JSON object per measurement (field ``bench``):
- ``ratio``: seconds per inner step of the forward unroll and of the TBPTT
  meta-gradient over T steps, and ``metagrad_to_forward_ratio`` (with and
  without remat);
- ``memory``: XLA's compiled peak temporary memory of the meta-gradient for
  T = 50, 200, 800, with and without ``jax.checkpoint`` per inner step;
- ``devices``: outer steps per second of ``meta_step`` with the meta-batch
  sharded over 1 and over 2 forced host devices (a subprocess each, since the
  device count is fixed when JAX starts).
The task is the ``recipe_small`` configuration's rule on a 256-128-64-32
network, batch 64, over a synthetic data pool (timing does not depend on data).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _setup(meta_batch: int = 4):
    import jax
    import numpy as np

    from metaunsup.models import MLPSpec
    from metaunsup.outer import trainer as tr
    from metaunsup.outer.config import load_config
    from metaunsup.tasks.pool import build_pool

    config = load_config("recipe_small", [f"meta_batch={meta_batch}"])
    rng = np.random.default_rng(0)
    pool = build_pool([(rng.random((2000, 256), dtype=np.float32), rng.integers(0, 10, 2000))])
    rule = tr.build_rule(config, MLPSpec(n_in=256, widths=(128, 64, 32)))
    meta_params = rule.init_meta_params(jax.random.PRNGKey(0))
    return config, pool, rule, meta_params


def _time(fn, args, repeats):
    import jax

    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_ratio(T: int, repeats: int) -> list[dict]:
    import jax

    from metaunsup.outer import estimators as est
    from metaunsup.tasks.rule_task import RuleTask

    config, pool, rule, mp = _setup()
    task = RuleTask(rule, config.tasks, pool)
    state = task.init(mp, jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(2)
    fwd = jax.jit(lambda m, s, k, p: RuleTask(rule, config.tasks, p).unroll(m, s, k, T)[1])
    t_fwd = _time(fwd, (mp, state, key, pool), repeats)
    out = []
    for remat in (False, True):
        grad = jax.jit(lambda m, s, k, p: est.tbptt(RuleTask(rule, config.tasks, p), m, s, k, T,
                                                    remat=remat)[0])
        t_grad = _time(grad, (mp, state, key, pool), repeats)
        out.append({"bench": "ratio", "T": T, "remat": remat,
                    "forward_ms_per_step": round(1e3 * t_fwd / T, 3),
                    "metagrad_ms_per_step": round(1e3 * t_grad / T, 3),
                    "metagrad_to_forward_ratio": round(t_grad / t_fwd, 2)})
    return out


def bench_memory(lengths) -> list[dict]:
    import jax

    from metaunsup.outer import estimators as est
    from metaunsup.tasks.rule_task import RuleTask

    config, pool, rule, mp = _setup()
    state = RuleTask(rule, config.tasks, pool).init(mp, jax.random.PRNGKey(1))
    out = []
    for T in lengths:
        for remat in (False, True):
            fn = jax.jit(lambda m, s, k, p: est.tbptt(RuleTask(rule, config.tasks, p), m, s, k, T,
                                                      remat=remat)[0])
            compiled = fn.lower(mp, state, jax.random.PRNGKey(2), pool).compile()
            mem = compiled.memory_analysis()
            temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
            out.append({"bench": "memory", "T": T, "remat": remat,
                        "peak_temp_mib": None if temp is None else round(temp / 2**20, 2)})
    return out


def bench_devices_child(repeats: int) -> dict:
    import jax

    from metaunsup.outer import trainer as tr

    config, pool, rule, _ = _setup(meta_batch=4)
    state = tr.init_trainer(config, rule, pool)
    step = jax.jit(tr.meta_step, static_argnums=(0, 1))
    holder = {"s": state}

    def run():
        holder["s"], m = step(config, rule, tr._place(holder["s"], config.meta_batch), pool)
        return m["meta_loss"]

    t = _time(lambda: run(), (), repeats)
    return {"bench": "devices", "devices": len(jax.devices()),
            "outer_steps_per_s": round(1.0 / t, 4),
            "inner_steps_per_s": round(config.meta_batch * config.truncation / t, 1)}


def bench_devices(repeats: int) -> list[dict]:
    out = []
    for n in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
                   JAX_PLATFORMS="cpu")
        res = subprocess.run([sys.executable, __file__, "--devices-child", "--repeats",
                              str(repeats)], env=env, capture_output=True, text=True, check=True)
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--devices-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.devices_child:
        print(json.dumps(bench_devices_child(args.repeats)))
        return
    results = bench_ratio(20, args.repeats)
    if not args.quick:
        results += bench_memory((50, 200, 800)) + bench_devices(args.repeats)
    for r in results:
        print(json.dumps(r) if args.json else "  ".join(f"{k}={v}" for k, v in r.items()),
              flush=True)


if __name__ == "__main__":
    main()
