"""``metaunsup report``: one self-contained HTML page (and Markdown) from result folders.

::

    metaunsup report studies/* report --out study_report        # index.html + README.md

Library: :func:`metaunsup.studies.report.render` and, with ``--screenshot``,
:func:`metaunsup.studies.browser.open_page`.
"""
from __future__ import annotations

from metaunsup.cli import options as opt
from metaunsup.errors import UserError
from metaunsup.run.outputs import PNG, check_output_file
from metaunsup.studies.browser import find_chromium, open_page
from metaunsup.studies.report import render

NAME = "report"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="one self-contained HTML page (and Markdown) from study "
                                  "workdirs and demo reports")
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="study workdirs (study.json) or demo report folders (results.json)")
    p.add_argument("--out", default="study_report", metavar="DIR",
                   help="writes DIR/index.html, DIR/README.md and DIR/images/ (refused if DIR "
                        "holds files metaunsup did not write there)")
    opt.add_force(p, "write into --out although it holds other files (they are never "
                     "replaced); replace an existing --screenshot PNG")
    p.add_argument("--title", default="metaunsup studies")
    p.add_argument("--screenshot", metavar="PNG",
                   help="also open the page in headless Chromium, check it (console errors, "
                        "images) and save a screenshot of its top")
    p.add_argument("--screenshot-height", type=int, default=2400, metavar="PX",
                   help="screenshot height in CSS pixels (0: the whole page)")


def run(args) -> int:
    if args.screenshot:  # every check before the first write
        check_output_file(args.screenshot, force=args.force, kind=PNG, option="--screenshot")
        if args.screenshot_height < 0:
            raise UserError(f"--screenshot-height must be >= 0 (0: the whole page), got "
                            f"{args.screenshot_height}")
        if find_chromium() is None:
            raise UserError("--screenshot needs chromium (Debian: apt-get install chromium)")
    html, md = render(args.dirs, args.out, title=args.title, force=args.force)
    print(f"wrote {html} and {md}", flush=True)
    if not args.screenshot:
        return 0
    res = open_page(html, screenshot=args.screenshot,
                    max_height=args.screenshot_height or None, timeout=60)
    broken = [i["alt"] for i in res["images"] if not i["width"] or not i["height"]]
    print(f"chromium: {len(res['images'])} images, {len(broken)} not rendered "
          f"{broken or ''}; {len(res['errors'])} console errors {res['errors'] or ''}; "
          f"screenshot {args.screenshot}", flush=True)
    return 1 if broken or res["errors"] else 0
