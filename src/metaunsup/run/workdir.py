"""A run's working directory: the one layout every tool reads and writes.

::

    <workdir>/
      config.json         the run's configuration, written once
      metrics.jsonl       one JSON object per line, appended by the driver
      checkpoints/        ckpt_<step>.safetensors (trainer state, resumable)
      rule.safetensors    the rule file a finished run ships (metaunsup.run.rulefile)
      eval/               evaluation results
      report/             plots and tables made from the files above

Resuming: :meth:`Workdir.resume` restores the newest readable checkpoint and
drops every metrics line with a step larger than the restored one, so the
resumed run appends them again and a run that was interrupted writes the same
``metrics.jsonl`` as one that was not. For that to hold, the driver writes the
metrics line of step ``s`` before it saves checkpoint ``s``; a line half
written by a crash is dropped. ``metrics.jsonl`` checks itself
(:mod:`metaunsup.run.jsonl`): a corrupt line before the last one, or a step recorded
twice, is a one-line error naming the line and its repair.

A new workdir must be a missing or empty folder: one that holds other files but none of
``config.json``, ``metrics.jsonl``, ``checkpoints/`` is refused
(:func:`metaunsup.run.outputs.check_run_dir`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from metaunsup.errors import UserError
from metaunsup.run.checkpoint import CheckpointManager, Restored, dumps_json
from metaunsup.run.jsonl import JsonlStore
from metaunsup.run.outputs import atomic_write_bytes, check_run_dir, make_dirs
from metaunsup.types import PyTree

# A folder holding one of these is a workdir (resumed); other non-empty folders are refused.
MARKERS = ("config.json", "metrics.jsonl", "checkpoints")


def _step(record: dict) -> int | None:
    """The identity of a metrics record: its step (each step is recorded once)."""
    s = record.get("step")
    return s if isinstance(s, int) and not isinstance(s, bool) else None


def _normalise(obj: Any) -> Any:
    """JSON round trip: tuples become lists, numpy scalars Python numbers."""
    return json.loads(dumps_json(obj))


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{k}" if prefix else str(k)
            if k not in old or k not in new:
                out.append(name)
            else:
                out.extend(_differences(old[k], new[k], name))
        return out
    return [] if old == new else [prefix or "<root>"]


class Workdir:
    """The files of one run (see module doc).

    Args:
      path: the directory.
      create: create it (and its subdirectories) if missing; with False a
        missing directory is an error (for tools that only read a run).
      keep: checkpoints kept by :attr:`checkpoints`.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, keep: int = 3):
        self.path = Path(path)
        if not self.path.is_dir():
            if self.path.exists():
                raise UserError(f"{self.path}: exists and is not a directory")
            if not create:
                raise UserError(f"{self.path}: no such run directory")
        if create:  # a folder holding other files is refused (run.outputs)
            check_run_dir(self.path, markers=MARKERS, what="meta-training workdir")
            for d in (self.path, self.checkpoint_dir, self.eval_dir, self.report_dir):
                make_dirs(d)
        self.checkpoints = CheckpointManager(self.checkpoint_dir, keep=keep)
        self.metrics = JsonlStore(self.metrics_path, identity=_step, unit="step",
                                  after_repair="a run missing a step's record is not resumed")

    # Layout.
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def rule_path(self) -> Path:
        return self.path / "rule.safetensors"

    @property
    def eval_dir(self) -> Path:
        return self.path / "eval"

    @property
    def report_dir(self) -> Path:
        return self.path / "report"

    # Configuration.
    def read_config(self) -> dict | None:
        """The stored configuration, or None before the first :meth:`write_config`."""
        if not self.config_path.exists():
            return None
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{self.config_path}: not readable JSON ({e})") from None

    def check_config(self, config: Mapping, *, allow_change: bool = False) -> bool:
        """Whether ``config`` differs from the stored one; writes nothing.

        Raises:
          UserError: it differs and ``allow_change`` is False (the message
            lists where, and how to proceed).
        """
        new = _normalise(dict(config))
        old = self.read_config()
        if old is None or old == new:
            return old is None
        if not allow_change:
            diff = _differences(old, new)
            shown = ", ".join(diff[:5]) + (f" (+{len(diff) - 5} more)" if len(diff) > 5 else "")
            raise UserError(f"{self.config_path}: this run was started with a different "
                            f"config (differs at {shown}); use a new --workdir, or continue "
                            "this run under the new config with --allow-config-change (the "
                            "old config is kept as config.previous-<n>.json)")
        return True

    def write_config(self, config: Mapping, *, allow_change: bool = False) -> None:
        """Writes ``config.json`` once; later calls must pass the same config.

        With ``allow_change`` a different stored config is first copied to
        ``config.previous-<n>.json`` (n = 1, 2, ...) and then replaced.

        Raises:
          UserError: a different configuration is already stored and
            ``allow_change`` is False (the message lists where they differ).
        """
        if not self.check_config(config, allow_change=allow_change):
            return
        new = _normalise(dict(config))
        if self.config_path.exists():
            n = 1
            while (self.path / f"config.previous-{n}.json").exists():
                n += 1
            atomic_write_bytes(self.path / f"config.previous-{n}.json",
                               self.config_path.read_bytes())
        atomic_write_bytes(self.config_path,
                           (dumps_json(new, indent=2, sort_keys=True) + "\n").encode())

    # Metrics.
    def append_metrics(self, record: Mapping) -> None:
        """Appends ``record`` (JSON-serialisable; arrays become lists) as one line."""
        if not isinstance(record, Mapping):
            raise UserError(f"a metrics record must be a mapping, got {type(record).__name__}")
        self.metrics.append(record)

    def read_metrics(self) -> list[dict]:
        """Every complete record, in order; a half-written last line is ignored.

        Raises:
          UserError: a corrupt line before the last, or a step recorded twice
            (:mod:`metaunsup.run.jsonl`; the message names the line and its repair).
        """
        return self.metrics.read()

    def truncate_metrics(self, step: int) -> int:
        """Drops records with ``step`` > ``step`` (and a half-written last line).

        Records without a numeric ``step`` field are kept. Returns how many
        records were dropped.
        """
        def kept(record: dict) -> bool:
            s = record.get("step")
            return not isinstance(s, (int, float)) or isinstance(s, bool) or s <= step

        parsed = self.metrics.read_lines()
        keep = [line for line, record in parsed if kept(record)]
        self.metrics.rewrite(keep)
        return len(parsed) - len(keep)

    def missing_steps(self, step: int) -> list[int]:
        """Steps ``1..step`` that have no record in ``metrics.jsonl`` (for a resume at ``step``)."""
        have = {r.get("step") for r in self.read_metrics()} if step > 0 else set()
        return [s for s in range(1, step + 1) if s not in have]

    # Resuming.
    def resume(self, template: PyTree | None = None) -> Restored | None:
        """Restores the newest readable checkpoint and rewinds ``metrics.jsonl`` to it.

        Returns None (and drops every metrics record that has a step) when
        there is no checkpoint: the run starts over.
        """
        restored = self.checkpoints.restore_latest(template)
        if self.metrics_path.exists():
            self.truncate_metrics(restored.step if restored is not None else -1)
        return restored


def validation_history(workdir: str | os.PathLike) -> list[dict]:
    """The validation fields of every validation record in a workdir (step 0 included)."""
    wd = Workdir(workdir, create=False)
    return [{k: v for k, v in r.items() if k == "step" or k.startswith("val_")}
            for r in wd.read_metrics() if "val_accuracy" in r]


class Selected(NamedTuple):
    """One kept checkpoint of a run, chosen by :func:`select_checkpoint`.

    Attributes:
      config: the run's ``config.json``.
      tree: the checkpoint's tree (``meta_params``, ...), numpy leaves.
      step: its step.
      val_accuracy: its validation accuracy, or None (no validation record).
    """

    config: dict
    tree: PyTree
    step: int
    val_accuracy: float | None


def select_checkpoint(workdir: str | os.PathLike, *, step: int | None = None) -> Selected:
    """One kept checkpoint of a run, chosen on its validation split only.

    Never by held-out data: with ``step=None`` the checkpoint at the step of the
    best ``val_accuracy`` among those kept (ties: the later step); else the one
    at ``step``.

    Raises:
      UserError: not a workdir, no checkpoint, no validation record, no such step.
    """
    wd = Workdir(workdir, create=False, keep=10**9)
    data = wd.read_config()
    if data is None:
        raise UserError(f"{workdir}: not a meta-training workdir (no config.json)")
    kept = set(wd.checkpoints.all_steps())
    if not kept:
        raise UserError(f"{workdir}: holds no checkpoint (none in {wd.checkpoint_dir}); "
                        "a run saves one every checkpoint_every outer steps")
    vals = {r["step"]: r["val_accuracy"] for r in validation_history(workdir)}
    if step is None:
        candidates = [s for s in vals if s in kept]
        if not candidates:
            why = ("its metrics.jsonl, which holds the validation records, is missing or empty"
                   if not wd.read_metrics() else "no kept checkpoint has a validation record")
            raise UserError(f"{workdir}: {why}; pass a step (kept: {sorted(kept)})")
        step = max(candidates, key=lambda s: (vals[s], s))
    elif step not in kept:
        raise UserError(f"{workdir}: no checkpoint at step {step} (kept: {sorted(kept)})")
    return Selected(data, wd.checkpoints.restore(step).tree, step, vals.get(step))


def check_workdir(path: str | os.PathLike) -> Path:
    """Checks, writing nothing, that ``path`` can be a meta-training workdir.

    It must be missing, empty, or a workdir already (``config.json``), whose
    ``metrics.jsonl`` is then read and checked (:mod:`metaunsup.run.jsonl`).

    Raises:
      UserError: one line naming the path (or the metrics line) and the problem.
    """
    path = check_run_dir(path, markers=MARKERS, what="meta-training workdir")
    if (path / "config.json").is_file():
        Workdir(path, create=False).read_metrics()
    return path

