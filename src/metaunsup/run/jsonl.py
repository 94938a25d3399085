"""Append-only JSON-lines stores that check themselves: ``metrics.jsonl`` and ``rows.jsonl``.

One JSON object per line. The writer appends each record as one whole line, flushed
and fsynced, and never a second record of the same identity (a run's step, a study's
job). A crash can therefore leave only an unfinished *last* line (text after the last
newline): readers ignore it and the next append removes it. Anything else is damage,
and every reader reports it as one line naming the file and the line:

- ``PATH:N: not a JSON object``: a line in the middle (or a finished last line) that
  does not parse;
- ``PATH:N: repeats step S of line M`` (or the job of line M): a duplicate.

Repair: look at the line (``sed -n 'Np' PATH``), then delete it (``sed -i 'Nd' PATH``)
and rerun. A study recomputes a deleted row. A meta-training run whose history then
lacks a step refuses to resume and says so; ``metaunsup export-rule`` still exports
its checkpoints.
"""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping

from metaunsup.errors import UserError
from metaunsup.run.checkpoint import dumps_json
from metaunsup.run.outputs import atomic_write_bytes


def repair_hint(path: Path, line: int) -> str:
    """The documented repair of one bad line (module doc)."""
    q = shlex.quote(str(path))
    return f"inspect it with sed -n '{line}p' {q}, delete it with sed -i '{line}d' {q}"


class JsonlStore:
    """One JSON-lines file (module doc).

    Args:
      path: the file (need not exist yet).
      identity: ``record -> key`` of records that may occur once only (None: no key).
      unit: what a key is called in messages ("step", "job").
      after_repair: what deleting a line means for this store, appended to errors.
    """

    def __init__(self, path: str | os.PathLike, *,
                 identity: Callable[[dict], Hashable | None] | None = None,
                 unit: str = "record", after_repair: str = ""):
        self.path = Path(path)
        self.identity = identity
        self.unit = unit
        self.after_repair = after_repair
        self._seen: dict[Hashable, int] | None = None  # identity -> line, for append
        self._count = 0  # lines in the file (as of the last read or append)

    def _error(self, line: int, what: str) -> UserError:
        tail = f"; {self.after_repair}" if self.after_repair else ""
        return UserError(f"{self.path}:{line}: {what}; only an unfinished last line is "
                         f"tolerated. Repair: {repair_hint(self.path, line)}, then rerun{tail}")

    def read_lines(self) -> list[tuple[str, dict]]:
        """``(line, record)`` of every finished line; an unfinished last line is left out.

        Raises:
          UserError: a finished line is not a JSON object, or repeats an identity.
        """
        if not self.path.exists():
            self._seen, self._count = {}, 0
            return []
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except OSError as e:
            raise UserError(f"{self.path}: cannot read ({e.strerror or e})") from None
        lines = text.split("\n")
        lines.pop()  # "" after the last newline, or an unfinished line: ignored
        out: list[tuple[str, dict]] = []
        seen: dict[Hashable, int] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise self._error(number, "not a JSON object")
            key = self.identity(record) if self.identity else None
            if key is not None:
                if key in seen:
                    raise self._error(number, f"repeats the {self.unit} of line {seen[key]}"
                                              f" ({self.unit} {_show(key)})")
                seen[key] = number
            out.append((line, record))
        self._seen, self._count = seen, len(lines)
        return out

    def read(self) -> list[dict]:
        """Every finished record, in order (errors as :meth:`read_lines`)."""
        return [record for _, record in self.read_lines()]

    def drop_unfinished(self) -> None:
        """Truncates the file after its last newline (a crash may leave half a line)."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            os.truncate(self.path, data.rfind(b"\n") + 1)

    def append(self, record: Mapping[str, Any]) -> None:
        """Appends ``record`` as one line (flushed and fsynced).

        The first append of this object checks the file and removes an unfinished last
        line; a record whose identity is already stored is refused.
        """
        if not isinstance(record, Mapping):
            raise UserError(f"a record must be a mapping, got {type(record).__name__}")
        if self._seen is None:
            self.drop_unfinished()
            self.read_lines()
        assert self._seen is not None
        key = self.identity(dict(record)) if self.identity else None
        if key is not None and key in self._seen:
            raise UserError(f"{self.path}: already holds {self.unit} {_show(key)} (line "
                            f"{self._seen[key]}); is another process writing here?")
        line = dumps_json(dict(record)) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._count += 1
        if key is not None:
            self._seen[key] = self._count

    def rewrite(self, lines: Iterable[str]) -> None:
        """Atomically replaces the file with ``lines`` (JSON texts, no newlines)."""
        atomic_write_bytes(self.path, "".join(ln + "\n" for ln in lines).encode("utf-8"))
        self._seen = None


def _show(key: Hashable) -> str:
    return str(key) if not isinstance(key, str) else key[:120]


__all__ = ["JsonlStore", "repair_hint"]
