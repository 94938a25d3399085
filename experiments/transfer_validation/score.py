"""Per-task scores of many rules on the validation or the transfer suite (issue 22).

Each rule (a spec of ``metaunsup validate``: a rule file, a hand-designed rule with
options, ``shipped``, ``none``, ...) is scored on the same tasks of the chosen suite
(``tasks.suite.SUITES``) and one JSON line per rule is appended to ``--out`` with
its per-task probe accuracies at both horizons, so that rules can be compared pair
by pair and ranked. Rule files of one learned-rule configuration run together as
one vmapped population (``outer.population``: one compilation, the same numbers as
one at a time). Rules already in ``--out`` are skipped: rerunning resumes.

Command (see README.md here for the measured times)::

    python experiments/transfer_validation/score.py --suite validation \\
        --rules experiments/transfer_validation/rules.txt \\
        --out experiments/transfer_validation/scores_validation.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import jax

from metaunsup.eval.probes import logreg_accuracy
from metaunsup.eval.validate import resolve_rule, score_rule
from metaunsup.outer.population import population_scores, stack_members
from metaunsup.rules.loading import load_rule
from metaunsup.tasks.suite import build_suite, episode_labels, load_suite_pool, suite_config


def read_rules(path: str) -> list[str]:
    lines = [ln.split("#")[0].strip() for ln in Path(path).read_text().splitlines()]
    return [ln for ln in lines if ln]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suite", choices=("validation", "transfer"), required=True)
    p.add_argument("--rules", required=True, help="text file, one rule spec per line")
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--short-steps", type=int, default=100)
    p.add_argument("--groups", default="", help="comma-separated (default: all)")
    p.add_argument("--seed", type=int, default=None,
                   help="the suite's task seed (default: the suite's own, 0 for validation)")
    args = p.parse_args(argv)

    fields = dict(tasks=args.tasks, steps=args.steps, short_steps=args.short_steps)
    if args.seed is not None:
        fields["seed"] = args.seed
    if args.groups:
        fields["groups"] = tuple(args.groups.split(","))
    config = suite_config(args.suite, **fields)
    done = set()
    out = Path(args.out)
    if out.exists():
        done = {json.loads(ln)["rule"] for ln in out.read_text().splitlines() if ln.strip()}
    specs = [s for s in read_rules(args.rules) if s not in done]
    rules = {s: resolve_rule(s, init_keys=1) for s in specs}  # bad specs fail before any run
    pool = load_suite_pool(config)
    groups = build_suite(config, pool)
    h_long, h_short = config.horizons.index(config.steps), config.horizons.index(config.short_steps)
    group_of = np.empty(config.tasks, object)
    for g in groups:
        group_of[g.index] = g.name
    dataset = np.concatenate([np.asarray(g.dataset_id) for g in groups])
    batches = batch_files(specs)
    batched = {s for b in batches for s in b}
    for spec in specs:
        if spec in batched:
            continue
        t0 = time.perf_counter()
        scores = score_rule(rules[spec], config, pool, groups)
        write(out, spec, args.suite, config, scores, h_long, h_short, group_of, dataset,
              time.perf_counter() - t0)
    for batch in batches:  # rule files of one configuration: one vmapped population
        t0 = time.perf_counter()
        per_rule = score_population(batch, config, pool, groups)
        seconds = (time.perf_counter() - t0) / len(batch)
        for spec in batch:
            write(out, spec, args.suite, config, per_rule[spec], h_long, h_short, group_of,
                  dataset, seconds)
    return 0


def batch_files(specs: list[str]) -> list[list[str]]:
    """Rule files of the learned rule sharing one configuration, in groups of >= 2."""
    by_config: dict[str, list[str]] = {}
    for spec in specs:
        if spec.endswith(".safetensors") and Path(spec).is_file():
            loaded = load_rule(spec)
            if loaded.name == "learned":
                by_config.setdefault(json.dumps(loaded.config, sort_keys=True), []).append(spec)
    return [b for b in by_config.values() if len(b) >= 2]


def score_population(batch: list[str], config, pool, groups) -> dict:
    """score_rule's output for every rule of ``batch``, all of them run as one population."""
    loaded = [load_rule(s) for s in batch]
    members = stack_members([r.meta_params for r in loaded])
    H, n = len(config.horizons), config.tasks
    out = {s: {k: np.zeros((H, n)) for k in ("accuracy", "ridge_loss", "diverged")}
           for s in batch}
    ys, yq = episode_labels(config)
    for g in groups:
        rule = loaded[0].for_net(g.spec)
        sc = jax.device_get(population_scores(config, rule, members, pool, g, config.horizons))
        for m, spec in enumerate(batch):
            for h in range(H):
                for j, i in enumerate(g.index):
                    fs, fq = sc.support[m, j, h], sc.query[m, j, h]
                    ok = bool(sc.finite[m, j, h]) and np.all(np.isfinite(fs)) \
                        and np.all(np.isfinite(fq))
                    out[spec]["accuracy"][h, i] = (logreg_accuracy(fs, ys, fq, yq) if ok
                                                   else 1.0 / config.n_way)
                    out[spec]["ridge_loss"][h, i] = sc.ridge_loss[m, j, h] if ok else 1.0
                    out[spec]["diverged"][h, i] = 0.0 if ok else 1.0
    return out


def write(out, spec, suite, config, scores, h_long, h_short, group_of, dataset, seconds):
    if True:
        rec = {"rule": spec, "suite": suite, "datasets": list(config.datasets),
               "tasks": config.tasks, "steps": config.steps, "short_steps": config.short_steps,
               "seed": config.seed, "accuracy": np.round(100 * scores["accuracy"][h_long], 3).tolist(),
               "accuracy_short": np.round(100 * scores["accuracy"][h_short], 3).tolist(),
               "ridge_loss": np.round(scores["ridge_loss"][h_long], 5).tolist(),
               "diverged": int(scores["diverged"][h_long].sum()),
               "group": group_of.tolist(), "dataset": dataset.tolist(),
               "seconds": round(seconds, 1)}
        with out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"{spec}: {np.mean(rec['accuracy']):.2f} ({rec['seconds']} s)", file=sys.stderr,
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
