"""``metaunsup demo``: the shipped rule and every baseline on held-out data, with a report.

Library: :func:`metaunsup.eval.demo.plan_demo` and :func:`metaunsup.eval.demo.run_demo`;
this module parses, opens the report folder and prints.
"""
from __future__ import annotations

import argparse
import json
import sys

from metaunsup.cli import options as opt
from metaunsup.cli.table import HEADER, row
from metaunsup.eval.compare import REPORT_FILES
from metaunsup.eval.demo import DATASETS, METHODS, plan_demo, run_demo
from metaunsup.models import parse_widths
from metaunsup.run.outputs import open_output_dir

NAME = "demo"
_RECORDED = ("datasets", "methods", "resolution", "widths", "shots", "seeds", "steps",
             "curve_every", "rule", "report")


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="the shipped rule and every baseline on held-out "
                                  "Fashion-MNIST and MNIST at 14x14, with a report/",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated dataset names")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated methods ('rule' is skipped if no rule is shipped "
                        "and --rule is not given)")
    p.add_argument("--resolution", type=int, default=14, help="image side in pixels")
    opt.add_network(p, activation=False)
    opt.add_protocol(p)
    p.add_argument("--steps", type=int, default=1000,
                   help="inner steps of every method that trains")
    p.add_argument("--curve-every", type=int,
                   help="probe every this many steps for the curves (default: steps / 5)")
    opt.add_rule(p)
    p.add_argument("--report", default="report", metavar="DIR",
                   help="folder for README.md, results.json and the figures (refused if "
                        "it holds files metaunsup did not write there)")
    opt.add_force(p, "write into --report although it holds other files (they are never "
                     "replaced)")
    opt.add_json(p)


def _argv(args) -> list[str]:
    """The demo's options as command-line words (recorded in the report)."""
    words = []
    for key in _RECORDED:
        value = getattr(args, key)
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    return words


def run(args) -> int:
    plan = plan_demo(datasets=opt.names(args.datasets), methods=opt.names(args.methods),
                     resolution=args.resolution, widths=parse_widths(args.widths),
                     shots=args.shots, seeds=args.seeds, steps=args.steps,
                     curve_every=args.curve_every, rule=args.rule)
    report = open_output_dir(args.report, force=args.force, planned=REPORT_FILES,
                             option="--report")
    if not args.json:
        print(plan.describe(), flush=True)
    started = []

    def emit(rec):
        if not args.json and not started:
            print(HEADER, flush=True)
        started.append(rec)
        print(json.dumps(rec) if args.json else row(rec), flush=True)

    out = run_demo(plan, report, argv=_argv(args), progress=not args.json, on_record=emit,
                   on_skip=lambda name, e: print(f"skipping {name}: {e}", file=sys.stderr,
                                                 flush=True))
    if not args.json:
        print(f"report written to {out}/ (README.md, results.json, curves.png, filters)",
              flush=True)
    return 0
