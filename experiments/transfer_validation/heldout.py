"""Held-out MNIST14 / Fashion-MNIST14 of the correlation study's rules, recorded once as
information (issue 22: never used to choose anything).

For every rule of ``rules.txt`` that is a rule file or a hand-designed rule: ``metaunsup
evaluate --methods rule`` (paper net 4 x 128 + 32, 10-shot logistic probe, 1000 inner
steps, ``--seeds`` seeds) on both sets; one JSON line per rule in ``heldout.jsonl``
(``{"rule", "mnist": "mean ± ci", "fashion_mnist": ...}``). Finished rules are skipped.

Command::

    python experiments/transfer_validation/heldout.py --seeds 5
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from score import read_rules  # noqa: E402


def evaluate(rule: str, dataset: str, seeds: int) -> str:
    cmd = [sys.executable, "-m", "metaunsup", "evaluate", "--methods", "rule", "--rule", rule,
           "--dataset", dataset, "--resolution", "14", "--steps", "1000", "--seeds", str(seeds),
           "--json"]
    if rule == "none":
        cmd = [c if c != "rule" else "random" for c in cmd]
        cmd = cmd[:cmd.index("--rule")] + cmd[cmd.index("--rule") + 2:]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rec = json.loads(out.strip().splitlines()[-1])
    return f"{rec['mean']:.2f} ± {rec['ci95'] or 0.0:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--rules", default=str(HERE / "rules.txt"))
    args = p.parse_args(argv)
    path = HERE / "heldout.jsonl"
    done = {json.loads(ln)["rule"] for ln in path.read_text().splitlines()} if path.exists() else set()
    for rule in read_rules(args.rules):
        if rule in done or rule == "shipped-slow":
            continue
        rec = {"rule": rule, "seeds": args.seeds, "steps": 1000}
        for ds in ("mnist", "fashion_mnist"):
            rec[ds] = evaluate(rule, ds, args.seeds)
        with path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(rule, rec["mnist"], rec["fashion_mnist"], file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
