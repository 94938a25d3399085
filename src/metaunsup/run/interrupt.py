"""Ctrl-C during a long run: exit promptly with status 130, never in the middle of a write.

A SIGINT that arrives while the main thread is inside XLA (compiling a
meta-step takes a minute or more) reaches no Python handler until XLA returns,
and a ``KeyboardInterrupt`` raised at an arbitrary point of JAX's Python code
has crashed the interpreter on its way out (SIGSEGV, with no checkpoint). So
the command line handles Ctrl-C outside the main thread:

- Python's C-level signal handler writes the signal number to a pipe
  (:func:`signal.set_wakeup_fd`) whichever thread the signal hits; a watcher
  thread blocks on that pipe.
- The driver does every write that belongs together (a metrics line and its
  checkpoint) while holding :data:`WRITE_LOCK`.
- On SIGINT the watcher takes the lock (so a write in progress finishes),
  prints what the run directory now holds (:func:`interrupted_message`) and
  ends the process with ``os._exit(130)``: no Python teardown runs while XLA
  threads are busy. The run directory is then exactly as after ``kill -9``
  between two writes, which resuming is built for.

Library callers (no :func:`exit_on_sigint`) get Python's usual
``KeyboardInterrupt``; :data:`WRITE_LOCK` is then an uncontended lock.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator
from metaunsup.run.checkpoint import CheckpointManager

WRITE_LOCK = threading.RLock()
EXIT_STATUS = 130  # 128 + SIGINT, what shells report for Ctrl-C


def interrupted_message(workdir: str | os.PathLike, outer_steps: int | None = None) -> str:
    """One line: the newest checkpoint in ``workdir`` and where a re-run resumes."""
    path = Path(workdir)
    steps = CheckpointManager(path / "checkpoints").all_steps()
    of = f" of {outer_steps}" if outer_steps else ""
    recorded = [0]
    with contextlib.suppress(OSError):
        for line in (path / "metrics.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                recorded.append(int(json.loads(line)["step"]))
    if not steps:
        return (f"metaunsup: interrupted; {path}: no checkpoint written yet, so re-running the "
                f"same command starts from step 0{of}")
    last = steps[-1]
    extra = (f"; metrics.jsonl records after step {last} will be recomputed"
             if max(recorded) > last else "")
    return (f"metaunsup: interrupted; {path}: newest checkpoint is step {last}{of}{extra}; "
            f"re-run the same command to resume from step {last}")


@contextlib.contextmanager
def exit_on_sigint(describe: Callable[[], str], *, status: int = EXIT_STATUS) -> Iterator[None]:
    """Within the block, Ctrl-C prints ``describe()`` and exits with ``status`` (module doc).

    Outside the main thread (where signal handlers cannot be set) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    stop = threading.Event()

    def watch() -> None:
        while True:
            try:
                data = os.read(read_fd, 1)
            except OSError:
                return
            if stop.is_set() or not data:
                return
            if data[0] != signal.SIGINT:
                continue
            with WRITE_LOCK:  # a metrics line + checkpoint being written is finished first
                try:
                    message = describe()
                except Exception as e:  # noqa: BLE001 - the exit must happen regardless
                    message = f"metaunsup: interrupted ({type(e).__name__}: {e})"
                prefix = "\n" if sys.stderr.isatty() else ""
                with contextlib.suppress(OSError):
                    os.write(2, (prefix + message + "\n").encode())
                os._exit(status)

    old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    old_handler = signal.signal(signal.SIGINT, lambda signum, frame: None)  # the watcher acts
    watcher = threading.Thread(target=watch, name="metaunsup-sigint", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_handler)
        signal.set_wakeup_fd(old_fd)
        stop.set()
        with contextlib.suppress(OSError):
            os.write(write_fd, b"\0")
        watcher.join(timeout=5)
        for fd in (read_fd, write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


__all__ = ["EXIT_STATUS", "WRITE_LOCK", "exit_on_sigint", "interrupted_message"]
