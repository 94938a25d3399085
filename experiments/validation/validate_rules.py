"""Validation accuracy of rule files on one fixed net (the paper net), 48 tasks.

Usage: python experiments/validation/validate_rules.py RULE.safetensors [...]
Tasks: recipe_small_v2's validation pool (glyphs/digits test splits, never held-out data),
10-way 10-shot ridge episode accuracy after 300 inner steps, keys 1000 and 1001.
"""
import dataclasses, json, sys, time
import jax
from metaunsup.models import MLPSpec
from metaunsup.outer.config import load_config
from metaunsup.outer.validation import validate
from metaunsup.rules.loading import load_rule
from metaunsup.tasks.distribution import load_pools

config = dataclasses.replace(load_config("recipe_small_v2"), eval_tasks=24)
_, val_pool = load_pools(config.tasks, seed=config.seed)
net = MLPSpec(n_in=val_pool.dim, widths=(128, 128, 128, 128, 32))
for path in sys.argv[1:]:
    loaded = load_rule(path)
    accs = []
    t = time.time()
    for k in range(2):
        r = validate(config, loaded.for_net(net), loaded.meta_params, val_pool,
                     jax.random.PRNGKey(1000 + k))
        accs.append(float(r["val_accuracy"]))
    print(json.dumps({"rule": path, "val_accuracy_48_tasks": sum(accs) / 2,
                      "seconds": round(time.time() - t, 1)}), flush=True)
