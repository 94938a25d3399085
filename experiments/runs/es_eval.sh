#!/usr/bin/env bash
# Issue 11: evaluate a meta-training run (recipe_es_compact, recipe_warm_small, ...).
# Usage: bash experiments/runs/es_eval.sh WORKDIR OUTDIR
# 1. export the best checkpoint by validation (never held-out data) and the untrained
#    rule (step 0, the same configuration before any meta-training; for a warm-started
#    run, the compact rule it started from);
# 2. the paired validation suite (16 paper-net tasks, 1000 steps) against the untrained
#    rule, the shipped rule, its untrained configuration (2 keys) and the hand-designed
#    rules;
# 3. held-out MNIST / Fashion-MNIST 14x14, paper net, 10-shot, 10 seeds, 1000 steps;
# 4. the best rule's curve from 1k to 10k inner steps (MNIST / Fashion-MNIST, 3 seeds).
# Each stage is skipped when its output exists, so rerunning resumes.
set -euo pipefail
wd=$1; out=$2; mkdir -p "$out"
mu=.venv/bin/metaunsup
[ -f "$out/es_best.safetensors" ] || $mu export-rule --workdir "$wd" --out "$out/es_best.safetensors"
[ -f "$out/es_init.safetensors" ] || $mu export-rule --workdir "$wd" --step 0 --out "$out/es_init.safetensors"
[ -s "$out/validate.jsonl" ] || $mu validate "$out/es_best.safetensors" "$out/es_init.safetensors" \
    shipped untrained:shipped oja softhebb wta --reference "$out/es_init.safetensors" --tasks 16 \
    --groups paper --init-keys 2 --json --no-progress > "$out/validate.jsonl"
for ds in mnist fashion_mnist; do
  for r in es_best es_init; do
    f="$out/heldout_$r.jsonl"
    grep -q "\"dataset\": \"$ds\"" "$f" 2>/dev/null || $mu evaluate --methods rule \
        --rule "$out/$r.safetensors" --dataset $ds --resolution 14 --steps 1000 --seeds 10 \
        --json >> "$f"
  done
  f="$out/curve_10k.jsonl"
  grep -q "\"dataset\": \"$ds\"" "$f" 2>/dev/null || $mu evaluate --methods rule \
      --rule "$out/es_best.safetensors" --dataset $ds --resolution 14 --steps 10000 \
      --curve-every 1000 --seeds 3 --json >> "$f"
done
