"""Cost of a TBPTT meta-gradient relative to the forward unroll, ES/PES population
throughput, memory with and without rematerialisation, and meta-step throughput on
1 vs 2 devices and 2 processes.

    python benchmarks/bench_metagrad.py --json                 # everything (many minutes)
    python benchmarks/bench_metagrad.py --json --quick         # ratio and population, T = 20
    python benchmarks/bench_metagrad.py --json --modes memory --plot experiments/benchmarks/metagrad_memory.png

Prints one JSON object per measurement (field ``bench``):
- ``ratio``: seconds per inner step of the forward unroll and of the TBPTT
  meta-gradient over T steps, and ``metagrad_to_forward_ratio``, for each of
  the trainer's ``remat`` settings (``--remat``);
- ``population``: the forward unroll of P perturbed rules (``meta_params + sigma
  * noise``, the members of an ES/PES population) on the same task state, data
  and key, vmapped into one compiled program, against one rule's forward
  unroll; ``population_efficiency`` = P * time(one rule) / time(population)
  (1.0: a member costs what a lone rule costs; above 1: batching helps);
- ``memory``: XLA's compiled peak temporary memory of the meta-gradient for
  T = 50, 200, 800 (from ``compile().memory_analysis()``, nothing is run),
  without remat, with ``jax.checkpoint`` per inner step (the trainer's
  ``remat``), and with two-level checkpointing (segments of K ~ sqrt(T) steps,
  each checkpointed; the trainer's ``remat = "nested"``);
- ``devices``: outer steps per second of ``meta_step`` with the meta-batch
  sharded over 1 and over 2 forced host devices (a subprocess each, since the
  device count is fixed when JAX starts);
- ``processes``: the same over 2 processes on 127.0.0.1 (``jax.distributed``,
  one device each; :mod:`metaunsup.outer.distributed`).
The task is the ``recipe_small`` configuration's rule on a 256-128-64-32
network, batch 64, over a synthetic data pool (timing does not depend on data).
Times are medians over ``--repeats`` calls after a warm-up call. Run it with
``nice -n 10`` on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

REMATS = {"false": False, "true": True, "dots": "dots", "nested": "nested"}
MODES = ("ratio", "population", "residuals", "memory", "devices", "processes")


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


def _call(fn, args) -> float:
    import jax

    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def bench_ratio(T: int, repeats: int, remats=(False, True, "dots", "nested")) -> list[dict]:
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
    for remat in remats:
        grad = jax.jit(lambda m, s, k, p: est.tbptt(RuleTask(rule, config.tasks, p), m, s, k, T,
                                                    remat=remat)[0])
        t_grad = _time(grad, (mp, state, key, pool), repeats)
        out.append({"bench": "ratio", "T": T, "remat": remat,
                    "forward_ms_per_step": round(1e3 * t_fwd / T, 3),
                    "metagrad_ms_per_step": round(1e3 * t_grad / T, 3),
                    "metagrad_to_forward_ratio": round(t_grad / t_fwd, 2)})
    return out


def bench_population(T: int, sizes, repeats: int, sigma: float = 0.01) -> list[dict]:
    """P perturbed rules on one task state, data and key, vmapped, vs one rule."""
    import jax
    import jax.numpy as jnp

    from metaunsup.tasks.rule_task import RuleTask

    config, pool, rule, mp = _setup()
    task = RuleTask(rule, config.tasks, pool)
    state = task.init(mp, jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(2)

    def loss(m, s, k, p):
        return RuleTask(rule, config.tasks, p).unroll(m, s, k, T)[1]

    one = jax.jit(loss)
    population = jax.jit(jax.vmap(loss, in_axes=(0, None, None, None)))
    out = []
    for P in sizes:
        leaves, treedef = jax.tree_util.tree_flatten(mp)
        keys = jax.random.split(jax.random.PRNGKey(3), len(leaves))
        members = jax.tree_util.tree_unflatten(treedef, [
            x[None] + sigma * jax.random.normal(k, (P,) + x.shape, x.dtype)
            for k, x in zip(keys, leaves)])
        losses = population(members, state, key, pool)
        assert losses.shape == (P,) and bool(jnp.all(jnp.isfinite(losses)))
        # Interleaved, so that both see the same load on a shared machine.
        ratios, t_ones, t_pops = [], [], []
        jax.block_until_ready(one(mp, state, key, pool))
        for _ in range(repeats):
            t_one = _call(one, (mp, state, key, pool))
            t_pop = _call(population, (members, state, key, pool))
            t_ones.append(t_one)
            t_pops.append(t_pop)
            ratios.append(P * t_one / t_pop)
        out.append({"bench": "population", "P": P, "T": T, "sigma": sigma,
                    "one_rule_ms": round(1e3 * statistics.median(t_ones), 2),
                    "population_ms": round(1e3 * statistics.median(t_pops), 2),
                    "population_efficiency": round(statistics.median(ratios), 3),
                    "population_efficiency_range": [round(min(ratios), 3),
                                                    round(max(ratios), 3)]})
    return out


def bench_memory(lengths) -> list[dict]:
    import jax

    from metaunsup.inner.task import segment_length
    from metaunsup.outer import estimators as est
    from metaunsup.tasks.rule_task import RuleTask

    config, pool, rule, mp = _setup()
    state = RuleTask(rule, config.tasks, pool).init(mp, jax.random.PRNGKey(1))
    out = []
    for T in lengths:
        for remat in (False, True, "nested"):
            fn = jax.jit(lambda m, s, k, p: est.tbptt(
                RuleTask(rule, config.tasks, p), m, s, k, T, remat=remat)[0])
            t = time.perf_counter()
            compiled = fn.lower(mp, state, jax.random.PRNGKey(2), pool).compile()
            mem = compiled.memory_analysis()
            temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
            row = {"bench": "memory", "T": T, "remat": remat,
                   "peak_temp_mib": None if temp is None else round(temp / 2**20, 2),
                   "compile_s": round(time.perf_counter() - t, 1),
                   "xla_flags": os.environ.get("XLA_FLAGS", "")}
            if remat == "nested":
                row["segment"] = segment_length(T)
            out.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return out


def bench_residuals(lengths) -> list[dict]:
    """Bytes the backward pass keeps from the forward pass (traced, nothing compiled).

    The leaves of ``jax.vjp``'s backward function are the residuals the
    forward pass stores for it; with a scan they include one entry per step
    (per segment, for "nested"). A lower bound on peak memory that is exact
    about how it grows with T, and takes seconds where compiling takes minutes.
    """
    import jax

    from metaunsup.inner.task import segment_length
    from metaunsup.tasks.rule_task import RuleTask

    config, pool, rule, mp = _setup()
    task = RuleTask(rule, config.tasks, pool)
    state = task.init(mp, jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(2)
    out = []
    for T in lengths:
        for remat in (False, True, "nested"):
            loss = lambda m: task.unroll(m, state, key, T, remat=remat)[1]  # noqa: E731
            vjp = jax.eval_shape(lambda m: jax.vjp(loss, m)[1], mp)
            nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(vjp))
            row = {"bench": "residuals", "T": T, "remat": remat,
                   "residual_mib": round(nbytes / 2**20, 2)}
            if remat == "nested":
                row["segment"] = segment_length(T)
            out.append(row)
    return out


def plot_memory(rows, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {False: "no remat", True: "remat per step (trainer's remat)",
              "nested": "two-level remat, segments of ~sqrt(T)"}
    kinds = {"memory": ("peak_temp_mib", "-", "compiled peak"),
             "residuals": ("residual_mib", "--", "residuals")}
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for bench, (field, style, what) in kinds.items():
        for i, (remat, label) in enumerate(labels.items()):
            pts = sorted((r["T"], r[field]) for r in rows
                         if r["bench"] == bench and r["remat"] == remat and r.get(field))
            if pts:
                ax.plot(*zip(*pts), style, marker="o", color=f"C{i}", label=f"{label}: {what}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("truncation length T (inner steps)")
    ax.set_ylabel("MiB")
    ax.set_title("TBPTT meta-gradient memory, small rule\n256-128-64-32 net, batch 64")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)


def _throughput(repeats: int) -> dict:
    """Outer steps per second of the trainer's meta-step on whatever devices JAX sees."""
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
    return {"devices": len(jax.devices()), "processes": jax.process_count(),
            "meta_batch": config.meta_batch, "truncation": config.truncation,
            "outer_steps_per_s": round(1.0 / t, 4),
            "inner_steps_per_s": round(config.meta_batch * config.truncation / t, 1)}


def _child_env(devices: int) -> dict:
    return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                JAX_PLATFORMS="cpu")


def bench_devices(repeats: int) -> list[dict]:
    out = []
    for n in (1, 2):
        res = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(repeats)],
                             env=_child_env(n), capture_output=True, text=True, check=True)
        out.append({"bench": "devices", **json.loads(res.stdout.strip().splitlines()[-1])})
    return out


def bench_processes(repeats: int, timeout: float = 1800) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, __file__, "--child", "--repeats", str(repeats),
                               "--process", f"{i},2,127.0.0.1:{port}"],
                              env=_child_env(1), stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    try:
        outs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a benchmark process failed: {[p.returncode for p in procs]}")
    return [{"bench": "processes", **json.loads(outs[0].strip().splitlines()[-1])}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="modes ratio and population only")
    ap.add_argument("--modes", default=None, help=f"comma-separated subset of {', '.join(MODES)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--T", type=int, default=20, help="truncation of ratio and population")
    ap.add_argument("--population", default="8,32", help="population sizes P")
    ap.add_argument("--remat", default="false,true,dots,nested",
                    help="ratio mode: the trainer's remat settings to time")
    ap.add_argument("--lengths", default="50,200,800", help="truncations of the memory sweep")
    ap.add_argument("--plot", metavar="PNG", help="memory mode: write the figure here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--process", help=argparse.SUPPRESS)  # "id,count,host:port"
    args = ap.parse_args()
    from metaunsup.run.compile_cache import enable

    if args.child or args.modes != "memory":
        # Timings exclude compilation; a rerun reuses the compiled programs (the
        # memory mode compiles on purpose: it reads the compiled peak).
        enable()
    if args.child:
        if args.process:
            from metaunsup.outer import distributed as dist

            i, n, coordinator = args.process.split(",")
            dist.initialize(dist.resolve_spec(coordinator, n, i, timeout_s=120))
        print(json.dumps(_throughput(args.repeats)))
        return
    modes = (args.modes.split(",") if args.modes else
             ["ratio", "population"] if args.quick else list(MODES))
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        ap.error(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    results: list[dict] = []
    for mode in modes:
        if mode == "ratio":
            rows = bench_ratio(args.T, args.repeats, [REMATS[r] for r in args.remat.split(",")])
        elif mode == "population":
            rows = bench_population(args.T, [int(p) for p in args.population.split(",")],
                                    args.repeats)
        elif mode == "residuals":
            rows = bench_residuals([int(t) for t in args.lengths.split(",")])
            if args.plot:
                plot_memory(rows, args.plot)
        elif mode == "memory":
            rows = bench_memory([int(t) for t in args.lengths.split(",")])
            if args.plot:
                plot_memory(rows, args.plot)
        elif mode == "devices":
            rows = bench_devices(args.repeats)
        else:
            rows = bench_processes(args.repeats)
        for r in rows:
            print(json.dumps(r) if args.json else "  ".join(f"{k}={v}" for k, v in r.items()),
                  flush=True)
        results += rows


if __name__ == "__main__":
    main()
