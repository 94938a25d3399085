"""Cheap proxies of the validation score, for ~20 rules around the term-pool start (issue 19).

Each proxy scores every rule of ``--rules`` (rule files of one configuration) on the
same tasks, all rules vmapped as one population (``outer.population``), and appends
one JSON line per proxy to ``--out`` with its per-rule score (higher is better) and
its cost in inner task-steps. ``table.py`` ranks them against the validation suite's
1000-step probe accuracy (``experiments/transfer_validation``).

Proxies computed here (name: what changes from the suite at 1000 steps; 16 tasks each):

- ``narrow``: a 4 x 64 + 32 network (probe, 1000 steps);
- ``res8``: 8 x 8 inputs (probe, 1000 steps, every group);
- ``ridge250_train``: the ES fitness at the start of its curriculum: the ridge
  meta-objective after 250 steps on tasks of the *training* split (``outer.evolve``'s
  generation tasks, 4 groups);
- ``ridge1000_train``: the same at 1000 steps.

``table.py`` adds the proxies that the suite's own records already hold: the probe at
100 steps, the ridge meta-objective at 1000 steps, and 16 of the 64 tasks.

Command::

    python experiments/proxy_fidelity/proxy.py --out experiments/proxy_fidelity/proxies.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from metaunsup.outer.population import member_loss, population_scores, stack_members
from metaunsup.rules import make_rule
from metaunsup.rules.loading import load_rule
from metaunsup.tasks.pool import build_pool, load_split
from metaunsup.tasks.suite import (VALIDATION_DATASETS, build_suite, load_suite_pool,
                                   suite_config, SuiteConfig)

HERE = Path(__file__).resolve().parent
RULES = ["experiments/transfer_validation/rules/pool_start.safetensors"] + [
    f"experiments/transfer_validation/rules/pool_random_{i:02d}.safetensors" for i in range(20)]
GROUPS4 = ("paper", "sigmoid", "wide", "deep")


def score(suite: SuiteConfig, pool, members, config_name: str, measure: str) -> np.ndarray:
    """[M] mean over the suite's tasks of -loss (higher is better)."""
    per_group = []
    for group in build_suite(suite, pool):
        rule = make_rule("learned", group.spec, config=config_name)
        s = population_scores(suite, rule, members, pool, group, [suite.steps])
        per_group.append(member_loss(suite, s, measure))  # [M, T_g]
    return -np.concatenate(per_group, axis=1).mean(axis=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--only", default="", help="comma-separated proxy names")
    args = p.parse_args(argv)
    loaded = [load_rule(r) for r in RULES]
    members = stack_members([r.meta_params for r in loaded])
    config_name = "pool"
    proxies = {
        "narrow": lambda: (suite_config("validation", groups=("narrow",), tasks=16,
                                        short_steps=0), "probe", 14),
        "res8": lambda: (suite_config("validation", resolution=8, tasks=16, short_steps=0),
                         "probe", 8),
        "ridge250_train": lambda: (SuiteConfig(tasks=16, steps=250, short_steps=0, seed=12345,
                                               groups=GROUPS4), "ridge_loss", "train"),
        "ridge1000_train": lambda: (SuiteConfig(tasks=16, steps=1000, short_steps=0,
                                                seed=12345, groups=GROUPS4), "ridge_loss",
                                    "train"),
    }
    wanted = args.only.split(",") if args.only else list(proxies)
    done = set()
    out = Path(args.out)
    if out.exists():
        done = {json.loads(ln)["proxy"] for ln in out.read_text().splitlines() if ln.strip()}
    for name in wanted:
        if name in done:
            continue
        suite, measure, where = proxies[name]()
        t0 = time.perf_counter()
        if where == "train":
            arrays, image = load_split(VALIDATION_DATASETS, resolution=14, split="train")
            pool = build_pool(arrays, image=image)
        else:
            pool = load_suite_pool(suite)
        values = score(suite, pool, members, config_name, measure)
        cost = suite.tasks * suite.steps
        rec = {"proxy": name, "measure": measure, "split": "train" if where == "train" else "validation",
               "tasks": suite.tasks, "steps": suite.steps, "resolution": suite.resolution,
               "groups": list(suite.groups), "task_steps_per_rule": cost,
               "rules": RULES, "score": np.round(values, 5).tolist(),
               "seconds": round(time.perf_counter() - t0, 1)}
        with out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"{name}: {rec['seconds']} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
