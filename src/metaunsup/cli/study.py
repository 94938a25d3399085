"""``metaunsup study``: run (or resume) one of the paper's generalisation studies.

::

    metaunsup study widths --workdir studies/widths            # full study; rerun resumes
    metaunsup study text --quick --workdir /tmp/text --set vocab_size=500

Library: :func:`metaunsup.studies.run_study`.
"""
from __future__ import annotations

import argparse
import shlex

from metaunsup.cli import options as opt
from metaunsup.studies import get_study, run_study, study_names

NAME = "study"


def _listing() -> str:
    lines = ["studies (full-run time on 2 CPU cores):"]
    for name in study_names():
        st = get_study(name)
        lines.append(f"  {name:<15} {st.title}; {st.full_time}")
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="run (or resume) one of the paper's generalisation studies "
                                  "in WORKDIR", epilog=_listing(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=study_names(), metavar="NAME",
                   help=f"one of {', '.join(study_names())}")
    p.add_argument("--workdir", required=True,
                   help="folder for study.json, rows.jsonl and figures; rerunning resumes")
    opt.add_rule(p, help=f"for the method 'rule': {opt.RULE_SPECS} (default: the shipped rule)")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds to minutes)")
    p.add_argument("--set", type=opt.key_value("--set"), action="append", default=[],
                   metavar="KEY=VALUE", dest="settings",
                   help="override a setting (lists comma-separated), repeatable; e.g. "
                        "widths=32,64 seeds=3")
    opt.add_no_progress(p)
    p.add_argument("--figures-only", action="store_true",
                   help="redraw figures and study.json from the rows written so far; "
                        "compute nothing (e.g. while the study runs)")


def run(args) -> int:
    words = ["metaunsup", "study", args.name, "--workdir", args.workdir]
    if args.rule:
        words += ["--rule", args.rule]
    if args.quick:
        words.append("--quick")
    for k, v in args.settings:
        words += ["--set", f"{k}={v}"]
    rows = run_study(args.name, args.workdir, rule=args.rule, quick=args.quick,
                     overrides=dict(args.settings), progress=args.progress, command=words,
                     compute=not args.figures_only)
    print(f"{len(rows)} rows in {args.workdir}/rows.jsonl; figures and study.json beside it "
          f"(render with: metaunsup report {shlex.quote(args.workdir)})", flush=True)
    return 0
