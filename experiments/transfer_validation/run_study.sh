#!/usr/bin/env bash
# The correlation study of issue 22: every rule of rules.txt on the validation suite and
# on the transfer suite (32 tasks each, all groups, 1000 steps), then the table.
# Resumable: rules already in a scores file are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=experiments/transfer_validation
for suite in validation transfer; do
  python $D/score.py --suite $suite --tasks 32 --rules $D/rules.txt --out $D/scores_$suite.jsonl
done
python $D/table.py
