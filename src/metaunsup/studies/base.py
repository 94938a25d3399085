"""What a study is, and the runner that writes, resumes and times it.

A :class:`Study` is a named list of *jobs*; each job computes one row (a method
on one setting, over all seeds) and the runner appends that row to
``rows.jsonl`` in the study's workdir. Layout of a workdir::

    <workdir>/
      study.json     name, settings, command, rule provenance, machine, wall time, figures
      rows.jsonl     one JSON object per finished job (mean, 95% interval, settings, seconds)
      *.png          the study's figures, redrawn from rows.jsonl after every run

Resuming: running the same command again skips every job whose row is already
in ``rows.jsonl`` (a line half written by a crash is dropped), so an interrupted
study continues where it stopped. ``rows.jsonl`` checks itself
(:mod:`metaunsup.run.jsonl`): a corrupt line before the last one, or a job's row
twice, is a one-line error naming the line and its repair. A workdir belongs to
one study with one set of settings; another study or other settings there, or a
folder holding other files, is a one-line error, raised before anything is
written. A new workdir is written when the first row is computed, so a setting
that its data cannot satisfy (more shots than a class holds) writes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax

from metaunsup.errors import UserError
from metaunsup.progress import progress_bar
from metaunsup.run.checkpoint import dumps_json
from metaunsup.run.jsonl import JsonlStore
from metaunsup.run.outputs import atomic_write_bytes, check_run_dir, make_dirs
from metaunsup.studies.methods import init_rule_spec, rule_provenance
from metaunsup.values import cast_value

STUDY_FILE = "study.json"
ROWS_FILE = "rows.jsonl"
FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Job:
    """One row of a study.

    Attributes:
      key: JSON-ready dict naming the row (method and the setting); rows with an
        equal key are the same job, for resuming.
      run: ``() -> dict`` computing the row's results (``mean``, ``ci95``, ...).
      settings: the row's exact settings (network, data, shots, steps, seeds).
    """

    key: dict
    run: Callable[[], dict]
    settings: dict


@dataclasses.dataclass(frozen=True)
class Context:
    """What a study's functions see.

    Attributes:
      settings: the resolved settings (defaults, ``--quick``, ``--set``).
      workdir: the study's folder.
      rule: the rule spec given with ``--rule`` (None: the shipped rule).
      init_rule: the spec of the rule's untrained initialisation.
      progress: whether an outer progress bar is shown.
    """

    settings: Mapping[str, Any]
    workdir: Path
    rule: str | None
    init_rule: str
    progress: bool = False


@dataclasses.dataclass(frozen=True)
class Table:
    """A table for the report: a caption, column names and string cells."""

    caption: str
    columns: list[str]
    cells: list[list[str]]


@dataclasses.dataclass(frozen=True)
class Study:
    """A named study.

    Attributes:
      name: registry key (``metaunsup study NAME``).
      title: one line for listings and the report.
      full_time: the full run's wall time on 2 CPU cores, as measured (a sentence).
      defaults: the full study's settings (their types define what ``--set`` accepts).
      quick: overrides for ``--quick`` (tiny settings, seconds to minutes).
      jobs: ``Context -> list[Job]``; must not load data (it validates only).
      figures: ``(rows, Context) -> list of file names`` written into the workdir.
      tables: ``(rows, settings) -> list[Table]`` for the report.
    """

    name: str
    title: str
    full_time: str
    defaults: Mapping[str, Any]
    quick: Mapping[str, Any]
    jobs: Callable[[Context], list[Job]]
    figures: Callable[[list[dict], Context], list[str]]
    tables: Callable[[list[dict], Mapping[str, Any]], list[Table]]


_STUDIES: dict[str, Study] = {}


def register_study(study: Study) -> Study:
    """Adds ``study`` to the registry (replacing one of the same name)."""
    for key in study.quick:
        if key not in study.defaults:
            raise ValueError(f"study {study.name}: quick setting {key!r} has no default")
    _STUDIES[study.name] = study
    return study


def study_names() -> list[str]:
    return sorted(_STUDIES)


def get_study(name: str) -> Study:
    try:
        return _STUDIES[name]
    except KeyError:
        raise UserError(f"unknown study {name!r}; choose one of {', '.join(study_names())}") \
            from None


# ----------------------------------------------------------------------------- settings

def _cast(key: str, default: Any, value: Any) -> Any:
    """``value`` (a string from the command line, or a Python value) as ``default``'s type
    (:func:`metaunsup.values.cast_value`; a list default types each comma-separated item)."""
    if isinstance(default, (list, tuple)):
        hint: Any = list[type(default[0]) if default else str]
    elif default is None:
        hint = type(None) | str  # "", "none": None; any other text as given
    else:
        hint = type(default)
    return cast_value(value, hint, name=f"setting {key}")


def resolve_settings(study: Study, *, quick: bool = False,
                     overrides: Mapping[str, Any] | None = None) -> dict:
    """Defaults, then ``study.quick`` (if ``quick``), then ``overrides``, type-checked."""
    settings = dict(study.defaults)
    if quick:
        settings.update(study.quick)
    for key, value in (overrides or {}).items():
        if key not in study.defaults:
            raise UserError(f"study {study.name} has no setting {key!r}; its settings: "
                            f"{', '.join(sorted(study.defaults))}")
        settings[key] = _cast(key, study.defaults[key], value)
    for key in ("seeds", "steps", "shots", "batch_size", "max_test"):
        if key in settings and (not isinstance(settings[key], int) or settings[key] <= 0):
            raise UserError(f"setting {key} must be a positive integer, got {settings[key]!r}")
    return settings


def seed_list(settings: Mapping[str, Any]) -> list[int]:
    first = int(settings.get("first_seed", 0))
    return list(range(first, first + int(settings["seeds"])))


# ----------------------------------------------------------------------------- files

def rows_store(workdir: str | os.PathLike) -> JsonlStore:
    """``rows.jsonl`` of a study workdir: one row per job, each job once (:mod:`metaunsup.run.jsonl`)."""
    return JsonlStore(Path(workdir) / ROWS_FILE, unit="job",
                      identity=lambda r: row_key(r["key"]) if "key" in r else None,
                      after_repair="the study recomputes a deleted row")


def read_rows(workdir: str | os.PathLike) -> list[dict]:
    """The complete rows of ``rows.jsonl`` (a torn last line is ignored).

    Raises:
      UserError: a corrupt line before the last one, or a job's row twice (one line
        naming the file, the line and its repair).
    """
    return rows_store(workdir).read()


def read_study(workdir: str | os.PathLike) -> dict | None:
    path = Path(workdir) / STUDY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise UserError(f"{path}: not valid JSON; move it away to start the study afresh") \
            from None


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (dumps_json(obj, indent=1) + "\n").encode())


def row_key(key: Mapping) -> str:
    return dumps_json(key, sort_keys=True)


def machine() -> dict:
    """The machine a study ran on: CPU, cores, platform, Python, JAX and its devices."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count()
    return {"cpu": cpu, "cores": cores, "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()]}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- runner

def run_study(name: str, workdir: str | os.PathLike, *, rule: str | None = None,
              quick: bool = False, overrides: Mapping[str, Any] | None = None,
              progress: bool = True, command: Sequence[str] | None = None,
              compute: bool = True) -> list[dict]:
    """Runs (or resumes) study ``name`` in ``workdir``; returns all its rows.

    Args:
      name: a registered study (:func:`study_names`).
      workdir: its folder (created); re-running resumes it.
      rule: rule spec for the ``rule`` method (a rule file, ``random-init``, ...;
        None: the shipped rule).
      quick: use the study's tiny settings.
      overrides: setting -> value (strings are parsed as the default's type).
      progress: show a progress bar with ETA over the study's jobs.
      command: the command line recorded in ``study.json``.
      compute: False redraws the figures and ``study.json`` from the rows written
        so far (e.g. while the study runs elsewhere) and computes nothing.

    Returns:
      Every row in ``rows.jsonl`` after the run, in file order.
    """
    study = get_study(name)
    settings = resolve_settings(study, quick=quick, overrides=overrides)
    # A folder holding other files, a file, an unwritable path: refused before any write.
    path = check_run_dir(workdir, markers=(STUDY_FILE, ROWS_FILE), what="study workdir")
    provenance = rule_provenance(rule)  # a bad rule fails here, before any write
    old = read_study(path)
    # A redraw keeps the recorded initialisation spec even if the loader now knows another.
    init_rule = old["init_rule"] if not compute and old and "init_rule" in old \
        else init_rule_spec(rule)
    ctx = Context(settings=settings, workdir=path, rule=rule, init_rule=init_rule,
                  progress=progress)
    jobs = study.jobs(ctx)  # validates names and sizes, loads nothing
    identity = {"study": name, "settings": settings, "rule": rule, "init_rule": init_rule}
    if old is not None:
        changed = [k for k, v in identity.items() if old.get(k) != json.loads(row_key(v))]
        if changed:
            raise UserError(f"{path} holds study {old.get('study')!r} with other "
                            f"{', '.join(changed)}; use another --workdir")
    if not compute and old is None:
        raise UserError(f"{path}: no study.json to redraw; run the study first")
    done = read_rows(path)  # a damaged rows.jsonl is refused before any write
    if not compute:
        command = old.get("command")
    info = {"format": FORMAT, **identity, "title": study.title, "full_time": study.full_time,
            "command": list(command) if command else None, "rule_provenance": provenance,
            "machine": machine(), "started": (old or {}).get("started", _now()),
            "figures": (old or {}).get("figures", [])}

    def begin():  # the first write: after the first job computed (it checks its data)
        make_dirs(path)
        _write_json(path / STUDY_FILE, info)

    if compute:
        if progress:  # after every check: an error stays the only line
            print(f"study {name}: {study.title}. Full run: {study.full_time}.",
                  file=sys.stderr, flush=True)
        _run_jobs(path, jobs, name, progress, done=done, begin=begin)
    rows = read_rows(path)
    info["figures"] = study.figures(rows, ctx)
    info["rows"], info["jobs"] = len(rows), len(jobs)
    info["wall_seconds"] = round(sum(float(r.get("seconds", 0.0)) for r in rows), 1)
    info["finished"] = old.get("finished") if not compute and old else _now()
    info["complete"] = {row_key(j.key) for j in jobs} <= {row_key(r["key"]) for r in rows}
    _write_json(path / STUDY_FILE, info)
    return rows


def _run_jobs(path: Path, jobs: list[Job], name: str, progress: bool, *, done: list[dict],
              begin: Callable[[], None]) -> None:
    """Appends the row of every job not yet in ``rows.jsonl``, with a progress bar.

    ``begin()`` runs once, before the first row is written (or at the end if every row
    was there): a job that fails on its data (e.g. more shots than a class holds) leaves
    a new workdir unwritten.
    """
    store = rows_store(path)
    have = {row_key(r["key"]) for r in done if "key" in r}
    todo = [j for j in jobs if row_key(j.key) not in have]
    begun = False
    bar = progress_bar(progress, total=len(jobs), initial=len(jobs) - len(todo), unit="row",
                       desc=f"study {name}", file=sys.stderr)
    try:
        for job in todo:
            bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in job.key.items()))
            start = time.perf_counter()
            result = job.run()
            row = {"key": job.key, **job.key, **result, "settings": job.settings,
                   "seconds": round(time.perf_counter() - start, 3), "finished": _now()}
            if not begun:
                begin()
                begun = True
            store.append(row)
            bar.update(1)
    finally:
        bar.close()
    if not begun:
        begin()
