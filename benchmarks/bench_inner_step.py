"""Speed of one inner step of each update rule on the paper's base network.

Usage::

    python benchmarks/bench_inner_step.py [--json] [--repeats N] [--configs a,b]

For every configuration (the learned rule's ``paper`` and ``small`` configs,
the hand-designed rules, and a plain backprop SGD step on an autoencoder loss
as the reference) it reports, on the default JAX device:

- ``steps_per_s``: inner steps per second, from a jitted ``lax.scan`` of
  ``--scan`` steps (``metaunsup.inner.unroll_jit``), after a warm-up call,
  median over ``--repeats`` calls;
- ``flops_per_step``: floating-point operations of one jitted inner step as
  counted by XLA's cost analysis (``bytes_accessed_per_step`` likewise);
- ``achieved_gflops_per_s`` = flops_per_step * steps_per_s / 1e9;
- ``fraction_of_matmul``: that rate over the rate of a large float32 matmul
  (``--matmul-size``) timed just before each scan (median over repeats of
  the ratio, robust to a shared machine's changing load): how close the step
  gets to the device's practical peak;
- ``cost_vs_backprop_sgd``: this step's time over the backprop SGD step's;
- the floor the step's shapes allow: ``floor_ms`` of compute (flops at the
  matmul's rate), memory (XLA's bytes accessed at the bandwidth of an
  elementwise kernel on a cache-resident [batch, width] array,
  ``stream_gb_per_s``) and kernels (``kernels_per_step`` in the
  compiled step times ``kernel_us``, the measured cost of one unfusable
  elementwise kernel on a [batch, width] array inside a scan); ``bound_by``
  names the largest; ``floor_fraction_of_matmul`` is the best fraction of the
  matmul rate a step with these flops could reach under that floor, and
  ``step_over_floor`` how far the measured step is above it.

With ``--json`` one JSON object per configuration (field ``config``) is
printed per line; otherwise a table. Never part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp

from metaunsup.inner import init_inner_state, inner_step, unroll_jit
from metaunsup.models import PAPER_WIDTHS, MLPSpec
from metaunsup.rules import make_rule, rule_names

# name -> (registered rule, options for make_rule)
CONFIGS = {
    "learned-paper": ("learned", {"config": "paper"}),
    "learned-small": ("learned", {"config": "small"}),
    "learned-compact": ("learned", {"config": "compact"}),
    "learned-pool": ("learned", {"config": "pool"}),
    "sanger": ("sanger", {}),
    "oja": ("oja", {}),
    "ae_adam": ("ae_sgd", {"optimizer": "adam", "lr": 1e-3}),
    "backprop_sgd": ("ae_sgd", {"optimizer": "sgd"}),
}
REFERENCE = "backprop_sgd"


def xla_cost(compiled) -> dict:
    """XLA's cost analysis as one dict (older jax versions return a list of dicts)."""
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        merged: dict = {}
        for part in cost:
            for k, v in (part or {}).items():
                merged[k] = merged.get(k, 0.0) + v
        cost = merged
    return dict(cost or {})


def call_time(fn) -> float:
    """Wall time of one call of ``fn()``, blocking on its result."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def make_matmul(n: int):
    """A jitted, warmed-up n x n float32 matmul; returns (call, flops = 2 n^3)."""
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    f = jax.jit(jnp.matmul)
    jax.block_until_ready(f(a, b))
    return (lambda: f(a, b)), 2.0 * n ** 3


def make_stream(n: int, scan: int = 200):
    """A jitted, warmed-up scan of ``scan`` steps of ``x = x * 1.0001 + y`` over n float32s
    (n = batch x width: cache-resident, like the rule's tensors); returns (call, bytes =
    12 n per step: XLA's own count of one fused elementwise kernel)."""
    y = jnp.full((n,), 0.5, jnp.float32)
    f = jax.jit(lambda x: jax.lax.scan(lambda c, _: (c * 1.0001 + y, None), x, None,
                                       length=scan)[0])
    x = jnp.ones((n,), jnp.float32)
    jax.block_until_ready(f(x))
    return (lambda: f(x)), 12.0 * n * scan


def kernel_cost(shape=(128, 128), ops: int = 64, scan: int = 50, repeats: int = 5) -> float:
    """Seconds per unfusable elementwise kernel on a ``shape`` array, inside a scan.

    ``ops`` multiply-adds separated by ``optimization_barrier`` (so XLA cannot
    fuse them) per scan step; the time per kernel is what a rule step pays for
    each separate fusion of its compiled program at these sizes, overheads included.
    """
    def body(x, _):
        for _ in range(ops):
            x = jax.lax.optimization_barrier(x * 1.0001 + 0.5)
        return x, None

    f = jax.jit(lambda x: jax.lax.scan(body, x, None, length=scan)[0])
    x = jnp.ones(shape, jnp.float32)
    jax.block_until_ready(f(x))
    return statistics.median(call_time(lambda: f(x)) for _ in range(repeats)) / (ops * scan)


def count_kernels(compiled) -> int:
    """Instructions of the compiled program's entry computation that run as kernels
    (fusions, dots, convolutions, custom calls, reductions, copies, ...)."""
    text = compiled.as_text()
    entry = text[text.index("ENTRY"):]
    body = entry[entry.index("{") + 1:entry.index("\n}")]
    free = ("parameter(", "tuple(", "get-tuple-element(", "constant(", "bitcast(",
            "after-all(", "opt-barrier(")
    return sum(1 for line in body.splitlines()
               if " = " in line and not any(f in line.split(" = ", 1)[1] for f in free))


def bench_config(config: str, net: MLPSpec, batch_size: int, scan: int, repeats: int,
                 matmul, stream=None, kernel_s: float | None = None) -> dict:
    """Times ``scan`` inner steps of one configuration, interleaved with the matmul.

    Each repeat times one matmul and then one scan, so that both see the same
    load on a shared machine; ``fraction_of_matmul`` is the median over repeats
    of the ratio of their rates.
    """
    rule_name, options = CONFIGS[config]
    rule = make_rule(rule_name, net, **options)
    meta_params = rule.init_meta_params(jax.random.key(0))
    state = init_inner_state(rule, meta_params, key=jax.random.key(1))
    batches = jax.random.uniform(jax.random.key(2), (scan, batch_size, net.n_in), jnp.float32)

    step = jax.jit(partial(inner_step, rule))
    compiled = step.lower(meta_params, state, batches[0]).compile()
    cost = xla_cost(compiled)
    flops = float(cost.get("flops", float("nan")))
    nbytes = float(cost.get("bytes accessed", float("nan")))
    kernels = count_kernels(compiled)

    def run():
        return unroll_jit(rule, meta_params, state, batches)

    compile_s = call_time(run)  # compile + warm-up
    matmul_call, matmul_flops = matmul
    scan_s, matmul_rates, fractions, bandwidths = [], [], [], []
    for _ in range(repeats):
        matmul_rate = matmul_flops / call_time(matmul_call) / 1e9
        if stream is not None:
            bandwidths.append(stream[1] / call_time(stream[0]) / 1e9)
        seconds = call_time(run)
        scan_s.append(seconds)
        matmul_rates.append(matmul_rate)
        fractions.append(flops * scan / seconds / 1e9 / matmul_rate)
    seconds = statistics.median(scan_s)
    # The floor: compute at the matmul's rate, memory traffic at the streaming
    # bandwidth, and one unfusable kernel's cost per kernel, whichever is largest
    # (a roofline with a per-kernel term; bandwidth is measured at the rule's
    # array sizes, which stay in cache).
    rate = statistics.median(matmul_rates)
    floors = {"compute": flops / rate / 1e9}
    if bandwidths:
        floors["memory"] = nbytes / statistics.median(bandwidths) / 1e9
    if kernel_s is not None:
        floors["kernels"] = kernels * kernel_s
    bound = max(floors, key=floors.get)
    floor_s = floors[bound]
    n_meta = sum(x.size for x in jax.tree.leaves(meta_params))
    return {
        "config": config,
        "rule": rule_name,
        "options": {k: str(v) for k, v in options.items()},
        "meta_params": int(n_meta),
        "steps_per_s": scan / seconds,
        "step_ms": 1e3 * seconds / scan,
        "flops_per_step": flops,
        "transcendentals_per_step": float(cost.get("transcendentals", 0.0)),
        "bytes_accessed_per_step": float(cost.get("bytes accessed", float("nan"))),
        "achieved_gflops_per_s": flops * scan / seconds / 1e9,
        "matmul_gflops_per_s": statistics.median(matmul_rates),
        "fraction_of_matmul": statistics.median(fractions),
        "compile_and_first_call_s": compile_s,
        "kernels_per_step": kernels,
        "arithmetic_intensity": flops / nbytes,
        "stream_gb_per_s": statistics.median(bandwidths) if bandwidths else None,
        "floor_ms": {k: round(1e3 * v, 4) for k, v in floors.items()},
        "bound_by": bound,
        "floor_fraction_of_matmul": flops / floor_s / 1e9 / rate,
        "step_over_floor": (seconds / scan) / floor_s,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure")
    parser.add_argument("--scan", type=int, default=50, help="inner steps per timed scan")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-in", type=int, default=196, help="inputs (14x14 images)")
    parser.add_argument("--widths", default=",".join(map(str, PAPER_WIDTHS)))
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated subset of {', '.join(CONFIGS)}")
    args = parser.parse_args(argv)

    net = MLPSpec(args.n_in, tuple(int(w) for w in args.widths.split(",")))
    wanted = [c for c in args.configs.split(",") if c]
    unknown = [c for c in wanted if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    available = set(rule_names())
    skipped = [c for c in wanted if CONFIGS[c][0] not in available]
    for c in skipped:
        print(f"# skipping {c}: rule {CONFIGS[c][0]!r} is not registered", file=sys.stderr)

    matmul = make_matmul(args.matmul_size)
    stream = make_stream(args.batch_size * max(net.widths))
    kernel_s = kernel_cost((args.batch_size, max(net.widths)), scan=args.scan,
                           repeats=args.repeats)
    rows = [bench_config(c, net, args.batch_size, args.scan, args.repeats, matmul, stream,
                         kernel_s)
            for c in wanted if c not in skipped]
    ref = next((r for r in rows if r["config"] == REFERENCE), None)
    device = jax.devices()[0]
    for r in rows:
        r.update(
            cost_vs_backprop_sgd=(r["step_ms"] / ref["step_ms"]) if ref else None,
            device=f"{device.platform}:{device.device_kind}",
            n_in=net.n_in, widths=list(net.widths), batch_size=args.batch_size,
            scan_length=args.scan, repeats=args.repeats, matmul_size=args.matmul_size,
            kernel_us=1e6 * kernel_s,
            jax_version=jax.__version__,
        )

    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"device {rows[0]['device'] if rows else device}; net {net.n_in}->{list(net.widths)}, "
          f"batch {args.batch_size}; matmul {args.matmul_size}^3 f32, timed between scans")
    header = (f"{'config':<15}{'steps/s':>10}{'ms/step':>10}{'MFLOP/step':>12}"
              f"{'GFLOP/s':>10}{'matmul':>9}{'of matmul':>11}{'x SGD':>8}{'MB/step':>9}")
    print(header)
    for r in rows:
        ratio = f"{r['cost_vs_backprop_sgd']:.2f}" if r["cost_vs_backprop_sgd"] else "-"
        print(f"{r['config']:<15}{r['steps_per_s']:>10.1f}{r['step_ms']:>10.2f}"
              f"{r['flops_per_step'] / 1e6:>12.1f}{r['achieved_gflops_per_s']:>10.2f}"
              f"{r['matmul_gflops_per_s']:>9.1f}{r['fraction_of_matmul']:>11.3f}{ratio:>8}"
              f"{r['bytes_accessed_per_step'] / 1e6:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
