"""Where commands write: one check for every output path, atomic writes, and output
folders that record what metaunsup wrote into them.

Every command that writes follows these rules, and checks them before its first write
(each failure is one line naming the path, exit status 2, nothing written):

- **A file** (``export-rule --out``, ``train --out``, ``features --out``,
  ``report --screenshot``; :func:`check_output_file`): its folder must exist and be
  writable and the path must not be a folder. An existing file is replaced only with
  ``--force``, and then only if it is that command's own kind of file (a metaunsup rule
  file, network file, ``.npy`` array, PNG image) and not one of the command's inputs.
- **An output folder** (``report --out``, ``demo --report``; :func:`open_output_dir`):
  created with its parents if missing. Every file metaunsup writes there is recorded,
  with its SHA-256, in the folder's ``.metaunsup-output.json``. A folder that holds
  anything else (a file a user put there, or one of ours that was edited since) is
  refused; ``--force`` writes beside such files, still never replacing one of them.
  Our own files of an earlier run that this run does not write again are removed.
- **A run folder** (``meta-train --workdir``, ``study --workdir``; :func:`check_run_dir`):
  created with its parents if missing; an existing one must be empty or already hold
  that kind of run (its ``config.json`` / ``study.json``), which is then resumed.

Atomic writes (:func:`atomic_write_bytes`): the data goes to a temporary
``.NAME.XXXXXXXX.tmp`` beside the target, is fsynced and renamed over it, so readers see
the old file or the new one. A temporary file left by a kill between the write and the
rename is removed by the next write of NAME.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from metaunsup.errors import UserError

MANIFEST = ".metaunsup-output.json"
MANIFEST_FORMAT = "metaunsup-output"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _write_error(path: Path, e: OSError) -> UserError:
    reason = _one_line(e.strerror or e)
    if isinstance(e, (NotADirectoryError, FileExistsError)):
        reason = "a component of the path is a file"
    return UserError(f"{path}: cannot write ({reason})")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(base: Path, path: Path) -> None:
    """Raises unless a file can be created in the existing folder ``base`` (left as found)."""
    if not base.is_dir():
        raise UserError(f"{path}: cannot be created because {base} is a file")
    try:  # os.access says yes to root on read-only and pseudo file systems
        fd, tmp = tempfile.mkstemp(dir=base, prefix=".metaunsup-probe-", suffix=".tmp")
    except OSError as e:
        raise UserError(f"{path}: cannot write there ({base}: "
                        f"{_one_line(e.strerror or e)})") from None
    os.close(fd)
    os.unlink(tmp)


def check_writable(path: str | os.PathLike, *, directory: bool = False) -> Path:
    """Raises a one-line :class:`UserError` unless ``path`` can be created or written.

    Checks that an existing ``path`` has the right kind (file or ``directory``), that its
    nearest existing ancestor is a folder (not a file) and that a file can be created
    there; missing folders on the way are allowed (they are created when written).
    """
    path = Path(path)
    if path.exists():
        if directory and not path.is_dir():
            raise UserError(f"{path}: exists and is not a directory")
        if not directory and path.is_dir():
            raise UserError(f"{path}: is a directory, expected a file path")
    _probe(_nearest_existing(path if directory else path.parent), path)
    return path


@dataclasses.dataclass(frozen=True)
class FileKind:
    """What a command writes to one file: how to say it, and how to recognise one."""

    description: str
    matches: Callable[[Path], bool]


def _starts_with(magic: bytes) -> Callable[[Path], bool]:
    def matches(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                return f.read(len(magic)) == magic
        except OSError:
            return False
    return matches


NPY = FileKind("a .npy array file", _starts_with(b"\x93NUMPY"))
PNG = FileKind("a PNG image", _starts_with(b"\x89PNG\r\n\x1a\n"))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(path: str | os.PathLike, *, force: bool = False,
                      kind: FileKind | None = None, inputs: Iterable = (),
                      option: str = "--out") -> Path:
    """The one check of a command's output file (module doc); writes nothing.

    Args:
      path: where the command will write.
      force: replace an existing file (of ``kind`` only).
      kind: what the command writes, to recognise a file it may replace.
      inputs: paths the command reads; the output may not be one of them.
      option: how the path was given, for the messages.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a file path for {option}")
    parent = path.parent
    if not parent.is_dir():
        base = _nearest_existing(parent)
        if base.exists() and not base.is_dir():
            raise UserError(f"{path}: cannot be created because {base} is a file")
        raise UserError(f"{path}: its folder {parent} does not exist; create it first")
    for source in inputs:
        if source is not None and path.exists() and _same_file(path, Path(source)):
            raise UserError(f"{path}: is also an input of this command; write {option} "
                            "elsewhere")
    if path.exists() or path.is_symlink():
        if not force:
            raise UserError(f"{path}: exists; pass --force to replace it")
        if kind is not None and not (path.is_file() and kind.matches(path)):
            raise UserError(f"{path}: exists and is not {kind.description}; metaunsup does "
                            "not replace it, even with --force")
    _probe(parent, path)
    return path


def make_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p`` with a one-line :class:`UserError` (not an OSError traceback) on failure."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if path.exists() and not path.is_dir():
            raise UserError(f"{path}: exists and is not a directory") from None
        raise _write_error(path, e) from None
    return path


def _tmp_pattern(name: str) -> re.Pattern:
    # tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") draws 8 characters of [a-z0-9_].
    return re.compile(r"\." + re.escape(name) + r"\.[a-z0-9_]{8}\.tmp")


def _is_tmp(name: str) -> bool:
    return re.fullmatch(r"\..+\.[a-z0-9_]{8}\.tmp", name) is not None


def remove_stale_tmp(path: str | os.PathLike) -> None:
    """Deletes temporary files of earlier atomic writes of ``path`` (a kill left them)."""
    path = Path(path)
    pattern = _tmp_pattern(path.name)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if pattern.fullmatch(name):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one.

    Raises:
      UserError: the file cannot be written (one line: a parent is a file, a
        read-only or full file system, ...).
    """
    path = Path(path)
    make_dirs(path.parent)
    remove_stale_tmp(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise
    with contextlib.suppress(OSError):  # make the rename durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# ----------------------------------------------------------------------------- folders

def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _files(folder: Path) -> list[str]:
    """Every file (or link) below ``folder``, as sorted relative POSIX paths; no folders."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            out.append(Path(root, name).relative_to(folder).as_posix())
    return sorted(out)


def _read_manifest(folder: Path) -> dict[str, list[str]]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"] if data.get("format") == MANIFEST_FORMAT else {}
        return {str(k): [str(h) for h in v] for k, v in files.items()}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}  # none, or unreadable: nothing in the folder counts as ours


class OutputDir:
    """An output folder opened by :func:`open_output_dir`: write files, then :meth:`finish`.

    The record is updated before each file is written (listing the file's old and new
    checksums), so a kill at any moment leaves only files the record accounts for.
    """

    def __init__(self, path: Path, record: dict[str, list[str]], foreign: set[str]):
        self.path, self._record, self._foreign = path, record, foreign
        self._written: dict[str, str] = {}

    def _save_record(self, files: dict[str, list[str]]) -> None:
        data = {"format": MANIFEST_FORMAT, "format_version": 1,
                "note": "files metaunsup wrote here (name: SHA-256); it replaces only these",
                "files": dict(sorted(files.items()))}
        atomic_write_bytes(self.path / MANIFEST, (json.dumps(data, indent=1) + "\n").encode())

    def _check_ours(self, name: str) -> Path:
        target = self.path / name
        if name in self._foreign or (target.exists() and name not in self._record):
            raise UserError(f"{target}: exists and was not written by metaunsup; not replaced "
                            "(move it away or choose another output folder)")
        return target

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Writes ``data`` to ``folder/name`` (``name`` relative, ``/``-separated)."""
        target = self._check_ours(name)
        digest = hashlib.sha256(data).hexdigest()
        self._record[name] = sorted(set(self._record.get(name, [])) | {digest})
        self._save_record(self._record)
        atomic_write_bytes(target, data)
        self._written[name] = digest
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_with(self, name: str, make: Callable[[Path], object]) -> Path:
        """Writes ``folder/name`` with ``make(path)``, a function that writes a file there
        (e.g. a figure's ``savefig``), by way of a private temporary folder."""
        self._check_ours(name)
        with tempfile.TemporaryDirectory(prefix="metaunsup-") as tmp:
            scratch = Path(tmp) / Path(name).name
            make(scratch)
            return self.write_bytes(name, scratch.read_bytes())

    def finish(self) -> Path:
        """Removes our files of an earlier run not written again; records this run's files."""
        for name in sorted(set(self._record) - set(self._written)):
            target = self.path / name
            if target.is_file() and _sha256(target) in self._record[name]:
                target.unlink()
            with contextlib.suppress(OSError):  # a folder we emptied (e.g. images/)
                parent = target.parent
                while parent != self.path and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
        for name in self._record:  # a kill mid-write of an earlier run left these
            remove_stale_tmp(self.path / name)
        self._record = {name: [digest] for name, digest in self._written.items()}
        self._save_record(self._record)
        return self.path


def open_output_dir(path: str | os.PathLike, *, force: bool = False,
                    planned: Iterable[str] = (), option: str = "--out") -> OutputDir:
    """Checks an output folder (module doc) before anything is written there.

    Args:
      path: the folder (created on the first write, with its parents).
      force: write beside files metaunsup did not write (never replacing them).
      planned: names (relative) the command will write, if known: a clash with a file
        metaunsup did not write is refused now rather than at that write.
      option: how the folder was given, for the messages.
    """
    path = Path(path)
    check_writable(path, directory=True)
    record: dict[str, list[str]] = {}
    foreign: set[str] = set()
    if path.is_dir():
        record = _read_manifest(path)
        for name in _files(path):
            if name == MANIFEST or _is_tmp(Path(name).name):
                continue
            if name not in record or _sha256(path / name) not in record[name]:
                foreign.add(name)
    if foreign and not force:
        shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(f"{path}: holds {len(foreign)} file(s) that metaunsup did not write "
                        f"({shown}); choose another {option}, or pass --force to write beside "
                        "them (metaunsup replaces only its own files)")
    clash = sorted(foreign & set(planned))
    if clash:
        raise UserError(f"{path / clash[0]}: exists and was not written by metaunsup; not "
                        f"replaced, even with --force (move it away or choose another {option})")
    return OutputDir(path, record, foreign)


def check_run_dir(path: str | os.PathLike, *, markers: tuple[str, ...], what: str,
                  option: str = "--workdir") -> Path:
    """Checks a run folder (module doc): missing, empty, or holding one of ``markers``
    (the names of that kind of run's own files, e.g. ``config.json``)."""
    path = Path(path)
    check_writable(path, directory=True)
    if path.is_dir() and not any((path / m).exists() for m in markers):
        others = [n for n in _files(path) if not _is_tmp(Path(n).name)]
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise UserError(f"{path}: is not empty and not a {what} (no {markers[0]}; holds "
                            f"{shown}); metaunsup does not write into a folder holding other "
                            f"files: choose a new or empty {option}")
    return path


__all__ = ["FileKind", "MANIFEST", "NPY", "OutputDir", "PNG", "atomic_write_bytes",
           "check_output_file", "check_run_dir", "check_writable", "make_dirs",
           "open_output_dir", "remove_stale_tmp"]
