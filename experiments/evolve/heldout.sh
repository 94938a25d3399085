#!/usr/bin/env bash
# Held-out check of the evolved rule (issue 19; nothing is chosen on these sets):
# MNIST / Fashion-MNIST 14x14, paper network 4 x 128 + 32, 10-shot logistic probe,
# 10 seeds (the same networks, minibatches and support sets for every method),
# 1000 inner steps: the evolved rule, its start, the autoencoder
# and raw pixels. One JSON line per method; finished (file, method) pairs are skipped.
# Table: python experiments/heldout/table.py experiments/evolve/heldout --paired-to start
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/evolve/heldout; mkdir -p "$out"
common=(--resolution 14 --steps 1000 --seeds 10 --json)
run() {  # run FILE TAG [ARGS...]
  local file=$1 tag=$2; shift 2
  if [ -f "$file" ] && grep -q "\"tag\": \"$tag\"" "$file"; then return; fi
  { metaunsup evaluate "$@" "${common[@]}" | sed "s/^{/{\"tag\": \"$tag\", /"; } >> "$file"
}
for ds in mnist fashion_mnist; do
  f="$out/${ds}_w128-128-128-128-32.jsonl"
  run "$f" evolved --methods rule --rule experiments/evolve/rule_cmaes_pool.safetensors --dataset $ds
  run "$f" start --methods rule --rule experiments/transfer_validation/rules/pool_start.safetensors --dataset $ds
  run "$f" autoencoder --methods autoencoder --dataset $ds
  run "$f" raw --methods raw --dataset $ds
done
python experiments/heldout/table.py "$out" --paired-to start | tee "$out/table.md"
