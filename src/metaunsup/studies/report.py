"""``metaunsup report``: study workdirs and demo reports as one HTML page and one Markdown file.

Each folder becomes a section: a study workdir (``study.json`` + ``rows.jsonl``)
shows the command that made it, its settings, the rule's provenance, the
machine, its wall time, its tables (the study's own ``tables``) and every figure;
a demo report folder (``results.json``, written by ``metaunsup demo``) shows its
table, its command and its figures. The HTML page is self-contained: figures are
embedded as ``data:`` URIs, there is no script and nothing is fetched. The
Markdown file links copies of the figures in ``images/`` beside it.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import re
import shlex
from pathlib import Path
from typing import Sequence

from metaunsup.errors import UserError
from metaunsup.run.outputs import open_output_dir
from metaunsup.studies import get_study, read_rows, read_study
from metaunsup.studies.base import Table
from metaunsup.studies.grid import cell

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: 0.3em; }
code, pre { background: #f3f3f3; } pre { padding: 0.5em; overflow-x: auto; }
img { max-width: 100%; display: block; margin: 0.8em 0; border: 1px solid #ddd; }
.meta { font-size: 0.9em; color: #444; }
"""


class Section:
    """One folder's content: title, facts (label, text), tables, figures (caption, path)."""

    def __init__(self, title: str, source: Path):
        self.title, self.source = title, source
        self.facts: list[tuple[str, str]] = []
        self.tables: list[Table] = []
        self.figures: list[tuple[str, Path]] = []
        self.details: str | None = None


def _study_section(path: Path) -> Section:
    info = read_study(path)
    rows = read_rows(path)
    name = info.get("study", "?")
    sec = Section(f"Study {name}: {info.get('title', '')}", path)
    cmd = info.get("command")
    if cmd:
        sec.facts.append(("command", shlex.join(cmd)))
    prov = info.get("rule_provenance") or {}
    sec.facts.append(("rule", ", ".join(f"{k} {v}" for k, v in prov.items())))
    sec.facts.append(("untrained initialisation", str(info.get("init_rule"))))
    m = info.get("machine") or {}
    sec.facts.append(("machine", f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
                                 f"{m.get('platform', '?')}, Python {m.get('python', '?')}, "
                                 f"JAX {m.get('jax', '?')} ({', '.join(m.get('devices', []))})"))
    wall = info.get("wall_seconds")
    planned = info.get("jobs")
    done = "" if planned is None or planned == len(rows) else \
        f" of {planned} planned: INCOMPLETE (stopped early; rerun the command to finish)"
    sec.facts.append(("rows, wall time", f"{len(rows)} rows{done}, "
                      + ("?" if wall is None else f"{wall / 60:.1f} minutes")
                      + f" (started {info.get('started', '?')}, finished "
                        f"{info.get('finished', 'not yet')})"))
    sec.facts.append(("full run (stated)", str(info.get("full_time"))))
    sec.details = "\n".join(f"{k} = {json.dumps(v)}" for k, v in info.get("settings", {}).items())
    try:
        study = get_study(name)
    except UserError:
        study = None
    if study is not None and rows:
        sec.tables = study.tables(rows, info.get("settings", {}))
    for fig in info.get("figures", []):
        if (path / fig).is_file():
            sec.figures.append((fig, path / fig))
    return sec


def _demo_section(path: Path) -> Section:
    data = json.loads((path / "results.json").read_text(encoding="utf-8"))
    meta = data.get("meta", {})
    sec = Section(f"Demo report ({path.name})", path)
    argv = meta.get("argv")
    if argv is not None:
        sec.facts.append(("command", shlex.join(["metaunsup", "demo", *argv])))
    if meta.get("rule"):
        sec.facts.append(("rule", str(meta["rule"])))
    if meta.get("minutes") is not None:
        sec.facts.append(("wall time", f"{meta['minutes']:.1f} minutes"))
    records = data.get("records", [])
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    index = {(r["method"], r["dataset"]): r for r in records}
    cells = [[m] + [cell(index.get((m, d))) for d in datasets]
             for m in dict.fromkeys(r["method"] for r in records)]
    if records:
        n = len(records[0].get("seeds", []))
        sec.tables.append(Table(f"few-shot accuracy (%), mean ± 95% interval over {n} seeds",
                                ["method"] + datasets, cells))
    for png in sorted(path.glob("*.png")):
        sec.figures.append((png.name, png))
    return sec


def load_section(folder) -> Section:
    path = Path(folder)
    if (path / "study.json").is_file():
        return _study_section(path)
    if (path / "results.json").is_file():
        return _demo_section(path)
    raise UserError(f"{path}: neither a study workdir (study.json) nor a demo report "
                    "(results.json)")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in t.cells)
    return (f"<table><caption>{html.escape(t.caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _md_table(t: Table) -> str:
    def esc(x) -> str:
        return str(x).replace("|", "\\|")

    lines = [f"*{esc(t.caption)}*", "", "| " + " | ".join(esc(c) for c in t.columns) + " |",
             "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in t.cells]
    return "\n".join(lines)


def render(folders: Sequence, out, *, title: str = "metaunsup studies",
           force: bool = False) -> tuple[Path, Path]:
    """Writes ``out/index.html`` (self-contained) and ``out/README.md`` (+ ``out/images/``).

    Args:
      folders: study workdirs and demo report folders, in the order to show them.
      out: the output folder (created). A folder holding files that metaunsup did not
        write there is refused (:mod:`metaunsup.run.outputs`); an earlier report's
        files are replaced.
      title: the page title.
      force: write beside other files in ``out`` (never replacing them).

    Returns:
      The paths of the HTML and Markdown files.
    """
    if not folders:
        raise UserError("report needs at least one folder")
    sections = [load_section(f) for f in folders]  # all checked before any write
    copies = [f"images/{k:02d}_{_slug(sec.source.name)}_{png.name}"
              for k, sec in enumerate(sections) for _, png in sec.figures]
    outdir = open_output_dir(out, force=force, planned=["index.html", "README.md", *copies])
    out = Path(out)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    h = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
         f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
         f"<h1>{html.escape(title)}</h1>",
         f"<p class=\"meta\">Generated {stamp} by <code>metaunsup report</code> from: "
         + ", ".join(f"<code>{html.escape(str(s.source))}</code>" for s in sections) + "</p>",
         "<ul>" + "".join(f"<li><a href=\"#{_slug(s.title)}\">{html.escape(s.title)}</a></li>"
                          for s in sections) + "</ul>"]
    md = [f"# {title}", "", f"Generated {stamp} by `metaunsup report` from "
          + ", ".join(f"`{s.source}`" for s in sections) + ".", ""]
    for k, sec in enumerate(sections):
        h.append(f"<h2 id=\"{_slug(sec.title)}\">{html.escape(sec.title)}</h2>")
        md += [f"## {sec.title}", ""]
        h.append("<ul class=\"meta\">" + "".join(
            f"<li><b>{html.escape(a)}</b>: <code>{html.escape(b)}</code></li>" if a == "command"
            else f"<li><b>{html.escape(a)}</b>: {html.escape(b)}</li>" for a, b in sec.facts)
            + "</ul>")
        md += [f"- **{a}**: `{b}`" if a == "command" else f"- **{a}**: {b}"
               for a, b in sec.facts] + [""]
        if sec.details:
            h.append(f"<details><summary>settings</summary><pre>{html.escape(sec.details)}"
                     "</pre></details>")
            md += ["<details><summary>settings</summary>", "", "```", sec.details, "```",
                   "", "</details>", ""]
        for t in sec.tables:
            h.append(_html_table(t))
            md += [_md_table(t), ""]
        for caption, png in sec.figures:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            h.append(f"<figure><img alt=\"{html.escape(caption)}\" "
                     f"src=\"data:image/png;base64,{data}\"><figcaption>{html.escape(caption)}"
                     "</figcaption></figure>")
            copy = f"images/{k:02d}_{_slug(sec.source.name)}_{png.name}"
            outdir.write_bytes(copy, png.read_bytes())
            md += [f"![{caption}]({copy})", ""]
    h.append("</body></html>")
    outdir.write_text("index.html", "\n".join(h) + "\n")
    outdir.write_text("README.md", "\n".join(md).rstrip() + "\n")
    outdir.finish()
    return out / "index.html", out / "README.md"
