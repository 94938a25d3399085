"""``metaunsup export-rule``: one checkpoint of a meta-training run as a rule file.

Library: :func:`metaunsup.outer.export.export_rule` (the checkpoint is chosen on the
run's validation split, :func:`metaunsup.run.workdir.select_checkpoint`).
"""
from __future__ import annotations

import json

from metaunsup.cli import options as opt
from metaunsup.outer.export import export_rule
from metaunsup.run.checkpoint import file_kind
from metaunsup.run.outputs import check_output_file
from metaunsup.run.rulefile import RULE_FORMAT
from metaunsup.run.workdir import validation_history

NAME = "export-rule"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="write one checkpoint of a meta-training run as a rule file "
                                  "(default: best validation accuracy)")
    p.add_argument("--workdir", required=True, help="a meta-training run directory")
    p.add_argument("--out", required=True, metavar="PATH", help="rule file to write")
    p.add_argument("--step", type=int, help="checkpoint step (default: best val_accuracy)")
    opt.add_force(p, "replace an existing --out file (a metaunsup rule file only)")


def run(args) -> int:
    check_output_file(args.out, force=args.force,
                      kind=file_kind(RULE_FORMAT, "a metaunsup rule file"))
    history = validation_history(args.workdir)
    result = export_rule(args.workdir, args.out, step=args.step)  # errors before any output
    for rec in history:
        print(json.dumps(rec), flush=True)
    print(json.dumps(result), flush=True)
    return 0
