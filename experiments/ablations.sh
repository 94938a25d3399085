#!/usr/bin/env bash
# Ablations of the learned rule (issue 5): the same recipe (recipe_small_v2) with parts of
# the rule switched off, each meta-trained for the same number of outer steps, then every
# rule evaluated on held-out MNIST / Fashion-MNIST 14x14 with the demo's protocol.
#   small     : per-unit networks + learned read-outs + learned mix of all planes
#   mix_only  : no per-unit networks, read-outs fixed to the activations; only the
#               mixing weights of the planes (outer product, Hebbian, Oja, ...) are learned
#   hand_only : mix_only restricted to the hand-designed planes (no outer-product term)
# Selection is by meta-step (the same for every variant), never by held-out accuracy.
set -euo pipefail
STEP=${STEP:-250}
for a in mix_only hand_only; do
  metaunsup meta-train --config recipe_small_v2 --workdir workdirs/ablation_$a \
    --set rule_config=\"$a\" --set name=\"ablation_$a\" --set outer_steps=$STEP
  metaunsup export-rule --workdir workdirs/ablation_$a --step $STEP \
    --out experiments/ablations/rule_${a}_step$STEP.safetensors
done
metaunsup export-rule --workdir workdirs/recipe_small_v2 --step $STEP \
  --out experiments/ablations/rule_small_step$STEP.safetensors
for r in small mix_only hand_only; do
  metaunsup demo --methods rule --rule experiments/ablations/rule_${r}_step$STEP.safetensors \
    --seeds 5 --json --report experiments/ablations/report_${r}_step$STEP \
    > experiments/ablations/${r}_step$STEP.jsonl
done
metaunsup demo --methods rule --rule random-init --seeds 5 --json \
  --report experiments/ablations/report_random_init > experiments/ablations/random_init.jsonl
