"""Grid search of the hand-designed rules on the VALIDATION split (glyphs + digits test splits).

The paper net (4 x 128 + 32, relu, 14x14) is trained for STEPS steps (batch 128) on the
unlabeled union of the glyphs and digits test splits, then probed with a logistic
probe: digits 10-way 10-shot (query = the other 300 examples), glyphs 62-way 5-shot
(query = the other 5 per class). Score = mean over both sets and SEEDS seeds (paired:
the same seeds, networks, minibatches and support draws for every configuration).

usage: nice -n 10 .venv/bin/python experiments/competitive/tune.py RULE 'json-list-of-option-dicts' [--steps 1000 --seeds 3]
"""
import argparse
import json
import sys
import time

import jax
import numpy as np

from metaunsup.data import load
from metaunsup.models.featurize import network_features
from metaunsup.eval.probes import logreg_accuracy
from metaunsup.inner.train import train
from metaunsup.models import MLPSpec, init_params
from metaunsup.rules import make_rule


def split(labels, shots, rng):
    sup, qry = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        sup.extend(idx[:shots])
        qry.extend(idx[shots:])
    return np.array(sup), np.array(qry)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rule")
    ap.add_argument("grid")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    sets = {}
    for name, shots in (("digits", 10), ("glyphs", 5)):
        ds = load(name, resolution=14)
        sets[name] = (np.asarray(ds.x_test, np.float32), np.asarray(ds.y_test), shots)
    x_all = np.concatenate([s[0] for s in sets.values()])
    net = MLPSpec(x_all.shape[1])
    for opts in json.loads(args.grid):
        t0 = time.time()
        scores = {k: [] for k in sets}
        for seed in range(args.seeds):
            if args.rule == "none":
                params = init_params(jax.random.PRNGKey(seed), net)
            else:
                rule = make_rule(args.rule, net, **opts)
                params = train(rule, {}, x_all, steps=args.steps, batch_size=128,
                               key=jax.random.PRNGKey(seed)).params
            for name, (x, y, shots) in sets.items():
                f, _ = network_features(params, net, x, x[:1], seed=seed)
                if not np.all(np.isfinite(f)):
                    scores[name].append(0.0)
                    continue
                s, q = split(y, shots, np.random.default_rng(1000 + seed))
                scores[name].append(100 * logreg_accuracy(f[s], y[s], f[q], y[q]))
        per = {k: float(np.mean(v)) for k, v in scores.items()}
        allv = np.mean([np.mean(v) for v in zip(*scores.values())])
        print(json.dumps({"rule": args.rule, "options": opts, "score": round(float(allv), 2),
                          **{k: round(v, 2) for k, v in per.items()},
                          "per_seed": {k: [round(a, 1) for a in v] for k, v in scores.items()},
                          "seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
