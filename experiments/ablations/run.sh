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
# The full rule before meta-training: the recipe's rule config, init_meta_params(PRNGKey(0)).
python - <<'PY'
import dataclasses, jax
from metaunsup.models import MLPSpec
from metaunsup.rules.loading import load_rule
from metaunsup.run.rulefile import make_provenance, save_rule
rule = load_rule("experiments/ablations/rule_small_step250.safetensors").for_net(
    MLPSpec(n_in=1, widths=(1,)))
save_rule("experiments/ablations/rule_small_untrained.safetensors",
          rule.init_meta_params(jax.random.PRNGKey(0)), rule_name="learned",
          rule_config=dataclasses.asdict(rule.config),
          provenance=make_provenance(recipe="recipe_small_v2", seed=0, meta_steps=0))
PY
metaunsup demo --methods rule --rule experiments/ablations/rule_small_untrained.safetensors \
  --seeds 5 --json --report experiments/ablations/report_small_untrained \
  > experiments/ablations/small_untrained.jsonl
# `--rule random-init` is the `small` config's defaults (lr 1e-4, no learned step size,
# no column normalisation), untrained: a weaker reference.
metaunsup demo --methods rule --rule random-init --seeds 5 --json \
  --report experiments/ablations/report_random_init > experiments/ablations/random_init.jsonl
