"""The ``study`` and ``report`` subcommands (parsers and handlers; :mod:`metaunsup.cli` dispatches).

Examples::

    metaunsup study widths --workdir studies/widths            # full study; rerun resumes
    metaunsup study text --quick --workdir /tmp/text --set vocab_size=500
    metaunsup report studies/* report --out study_report        # index.html + README.md
"""
from __future__ import annotations

import argparse
import shlex

from metaunsup.errors import UserError


def _listing() -> str:
    from metaunsup.studies import get_study, study_names

    lines = ["studies (full-run time on 2 CPU cores):"]
    for name in study_names():
        st = get_study(name)
        lines.append(f"  {name:<15} {st.title}; {st.full_time}")
    return "\n".join(lines)


def _setting(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--set``; the value is typed by the setting's default."""
    from metaunsup.values import parse_pair

    try:
        return parse_pair(text, what="--set")
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parsers(sub) -> None:
    """Adds ``study`` and ``report`` to the CLI's subparsers ``sub``."""
    from metaunsup.studies import study_names

    st = sub.add_parser("study", help="run (or resume) one of the paper's generalisation "
                                      "studies in WORKDIR", epilog=_listing(),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("name", choices=study_names(), metavar="NAME",
                    help=f"one of {', '.join(study_names())}")
    st.add_argument("--workdir", required=True,
                    help="folder for study.json, rows.jsonl and figures; rerunning resumes")
    st.add_argument("--rule", metavar="R",
                    help="rule for the 'rule' method: a rule file or spec (default: shipped)")
    st.add_argument("--quick", action="store_true", help="tiny settings (seconds to minutes)")
    st.add_argument("--set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                    dest="settings", help="override a setting (lists comma-separated), "
                                          "repeatable; e.g. widths=32,64 seeds=3")
    st.add_argument("--no-progress", dest="progress", action="store_false")
    st.add_argument("--figures-only", action="store_true",
                    help="redraw figures and study.json from the rows written so far; "
                         "compute nothing (e.g. while the study runs)")

    rp = sub.add_parser("report", help="one self-contained HTML page (and Markdown) from "
                                       "study workdirs and demo reports")
    rp.add_argument("dirs", nargs="+", metavar="DIR",
                    help="study workdirs (study.json) or demo report folders (results.json)")
    rp.add_argument("--out", default="study_report", metavar="DIR",
                    help="writes DIR/index.html, DIR/README.md and DIR/images/ (refused if DIR "
                         "holds files metaunsup did not write there)")
    rp.add_argument("--force", action="store_true",
                    help="write into --out although it holds other files (they are never "
                         "replaced); replace an existing --screenshot PNG")
    rp.add_argument("--title", default="metaunsup studies")
    rp.add_argument("--screenshot", metavar="PNG",
                    help="also open the page in headless Chromium, check it (console errors, "
                         "images) and save a screenshot of its top")
    rp.add_argument("--screenshot-height", type=int, default=2400, metavar="PX",
                    help="screenshot height in CSS pixels (0: the whole page)")


def cmd_study(args) -> int:
    from metaunsup.studies import run_study

    overrides = dict(args.settings)
    words = ["metaunsup", "study", args.name, "--workdir", args.workdir]
    if args.rule:
        words += ["--rule", args.rule]
    if args.quick:
        words.append("--quick")
    for k, v in args.settings:
        words += ["--set", f"{k}={v}"]
    rows = run_study(args.name, args.workdir, rule=args.rule, quick=args.quick,
                     overrides=overrides, progress=args.progress, command=words,
                     compute=not args.figures_only)
    print(f"{len(rows)} rows in {args.workdir}/rows.jsonl; figures and study.json beside it "
          f"(render with: metaunsup report {shlex.quote(args.workdir)})", flush=True)
    return 0


def cmd_report(args) -> int:
    from metaunsup.run.outputs import PNG, check_output_file
    from metaunsup.studies.report import render

    if args.screenshot:  # every check before the first write
        from metaunsup.studies.browser import find_chromium, open_page

        check_output_file(args.screenshot, force=args.force, kind=PNG, option="--screenshot")
        if args.screenshot_height < 0:
            raise UserError(f"--screenshot-height must be >= 0 (0: the whole page), got "
                            f"{args.screenshot_height}")
        if find_chromium() is None:
            raise UserError("--screenshot needs chromium (Debian: apt-get install chromium)")
    html, md = render(args.dirs, args.out, title=args.title, force=args.force)
    print(f"wrote {html} and {md}", flush=True)
    if args.screenshot:
        res = open_page(html, screenshot=args.screenshot,
                        max_height=args.screenshot_height or None, timeout=60)
        broken = [i["alt"] for i in res["images"] if not i["width"] or not i["height"]]
        print(f"chromium: {len(res['images'])} images, {len(broken)} not rendered "
              f"{broken or ''}; {len(res['errors'])} console errors {res['errors'] or ''}; "
              f"screenshot {args.screenshot}", flush=True)
        if broken or res["errors"]:
            return 1
    return 0

