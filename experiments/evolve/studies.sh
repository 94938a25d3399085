#!/usr/bin/env bash
# The evolved rule against its own start in the studies where the shipped rule fell
# below its start (issue 19): every activation of `nonlinearities` (MNIST 14x14,
# 500 steps, 5 seeds, the study's settings in experiments/studies/nonlinearities) and
# two moons (1000 steps, 5 seeds). rule_init = init:RULE = the term-pool start.
# Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=experiments/evolve/rule_cmaes_pool.safetensors
S=experiments/evolve/studies
metaunsup study nonlinearities --workdir $S/nonlinearities --rule $R \
    --set methods=rule,rule_init --set datasets=mnist --set steps=500 --set seeds=5
metaunsup study moons --workdir $S/moons --rule $R \
    --set methods=rule,rule_init --set steps=1000 --set every=100 \
    --set snapshots=0,100,300,1000 --set seeds=5
