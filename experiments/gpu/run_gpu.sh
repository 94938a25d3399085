#!/usr/bin/env bash
# The GPU recipe as one prepared script (issue 19), for a task that is lent an accelerator:
#   run(command="bash experiments/gpu/run_gpu.sh", timeout_s=540)
# It runs recipe_cmaes_pool_gpu (the CPU recipe's design with a 64-member population,
# 16 tasks per generation and full 1000-step horizons) for at most 7 minutes of wall time
# (time_budget_s = 420; compilation included), exports the best generation by validation,
# and leaves the workdir's config, metrics, rule files and a summary under $OUT.
# Not run yet: no accelerator was lent to the session that wrote it.
set -euo pipefail
OUT=${OUT:-out_gpu}
mkdir -p "$OUT"
python3 -c 'import jax; print("devices:", jax.devices())' | tee "$OUT/devices.txt"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -m metaunsup meta-train --config recipe_cmaes_pool_gpu --workdir "$OUT/run" \
  --no-progress 2>&1 | tail -n 20 | tee "$OUT/train_tail.txt"
python3 -m metaunsup export-rule --workdir "$OUT/run" --out "$OUT/rule_gpu.safetensors" \
  | tee "$OUT/export.txt"
rm -rf "$OUT/run/checkpoints"  # the rule files and metrics are what comes back
