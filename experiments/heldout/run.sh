#!/usr/bin/env bash
# Issue 10 must-show: held-out MNIST / Fashion-MNIST 14x14, 10-shot logistic probe,
# 10 seeds, 1000 inner steps, every method with its validation-tuned defaults, on the
# paper network (4 x 128 + 32) and on one hidden layer of 2000 units.
# Usage: bash experiments/heldout/run.sh [OUTDIR]   (default experiments/heldout)
# One JSON line per method and setting; a finished (file, method) pair is skipped, so
# rerunning the script resumes it.
set -euo pipefail
out=${1:-experiments/heldout}; mkdir -p "$out"
mu=.venv/bin/metaunsup
common=(--resolution 14 --steps 1000 --seeds 10 --json)
untrained=experiments/ablations/rule_small_untrained.safetensors  # the config at PRNGKey(0)
# The shipped run's own starting point (its step 0: the key seed 0 drew), written by
#   python -c 'from metaunsup.rules.loading import load_rule; from metaunsup.run.rulefile import save_rule; r = load_rule("init:shipped"); save_rule("experiments/ablations/rule_small_v2_step0.safetensors", r.meta_params, rule_name=r.name, rule_config=r.config, provenance=r.header["provenance"])'
step0=experiments/ablations/rule_small_v2_step0.safetensors
compact=experiments/rules/compact_init.safetensors
run() {  # run FILE METHOD [ARGS...]
  local file=$1 method=$2; shift 2
  if [ -f "$file" ] && grep -q "\"tag\": \"$method\"" "$file"; then return; fi
  { "$mu" evaluate "$@" "${common[@]}" | sed "s/^{/{\"tag\": \"$method\", /"; } >> "$file"
}
for widths in 128,128,128,128,32 2000; do
  for ds in mnist fashion_mnist; do
    f="$out/${ds}_w${widths//,/-}.jsonl"
    for m in wta softhebb krotov_hopfield bcm oja random autoencoder; do
      run "$f" $m --methods $m --dataset $ds --widths $widths
    done
    # The learned rules' rows at width 2000 take over 25 minutes each on 2 cores (the
    # per-unit networks run on every one of the 2000 units); ALL_WIDE=1 adds them.
    if [ "$widths" != 2000 ] || [ "${ALL_WIDE:-0}" = 1 ]; then
      run "$f" rule_shipped --methods rule --dataset $ds --widths $widths
      run "$f" rule_small_untrained --methods rule --rule $untrained --dataset $ds --widths $widths
      run "$f" rule_shipped_step0 --methods rule --rule $step0 --dataset $ds --widths $widths
      run "$f" rule_compact_untrained --methods rule --rule $compact --dataset $ds --widths $widths
    fi
    [ "$widths" = 2000 ] || run "$f" raw --methods raw --dataset $ds --widths $widths
  done
done
