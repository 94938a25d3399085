#!/usr/bin/env bash
# After `metaunsup meta-train --config recipe_cmaes_pool --workdir workdirs/cmaes_pool`:
# export the best candidate by validation, keep the run's record, draw its curve, and
# score it paired against its start, the shipped rule, wta and softhebb on the
# validation suite at its default size (64 tasks, all groups, 1000 steps), drawn with
# task seed 1: fresh tasks, not the 32 (seed 0) that picked the exported generation.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-workdirs/cmaes_pool}
D=experiments/evolve
metaunsup export-rule --workdir $W --out $D/rule_cmaes_pool.safetensors --force
mkdir -p $D/run
cp $W/config.json $W/metrics.jsonl $D/run/
python $D/curve.py --workdir $W
cat > $D/final_rules.txt <<RULES
$D/rule_cmaes_pool.safetensors
experiments/transfer_validation/rules/pool_start.safetensors
shipped
wta
softhebb
RULES
python experiments/transfer_validation/score.py --suite validation --tasks 64 --seed 1 \
    --rules $D/final_rules.txt --out $D/val64.jsonl
python $D/paired.py $D/val64.jsonl --reference pool_start > $D/val64.md
cat $D/val64.md
