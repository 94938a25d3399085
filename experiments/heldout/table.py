"""Markdown table of experiments/heldout/*.jsonl (written by heldout_issue10.sh).

    python experiments/heldout/table.py [DIR] [--paired-to TAG]

One row per method, one column per (dataset, network); mean +- 95% t-interval over
seeds, and, with --paired-to, the paired difference to that method on the same seeds
(the seeds fix the network initialisation, minibatches and support sets of every
method alike).
"""
import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

NETS = {"w128-128-128-128-32": "4x128+32", "w2000": "1x2000"}


def ci95(x):
    x = np.asarray(x, float)
    return float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="experiments/heldout")
    ap.add_argument("--paired-to", default=None)
    args = ap.parse_args()
    cols, rows = [], {}
    for f in sorted(Path(args.dir).glob("*.jsonl")):
        ds, net = f.stem.rsplit("_", 1)
        col = f"{ds} {NETS.get(net, net)}"
        cols.append(col)
        for line in f.read_text().splitlines():
            r = json.loads(line)
            rows.setdefault(r["tag"], {})[col] = np.asarray(r["accuracies"], float)
    print("| method | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for tag, by_col in rows.items():
        cells = []
        for c in cols:
            a = by_col.get(c)
            if a is None:
                cells.append("-")
                continue
            cell = f"{a.mean():.1f} ± {ci95(a):.1f}"
            ref = rows.get(args.paired_to, {}).get(c) if args.paired_to else None
            if ref is not None and tag != args.paired_to and len(ref) == len(a):
                d = a - ref
                cell += f" ({d.mean():+.1f} ± {ci95(d):.1f})"
            cells.append(cell)
        print(f"| {tag} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
