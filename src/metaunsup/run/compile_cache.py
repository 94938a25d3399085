"""JAX's persistent compilation cache for the ``metaunsup`` command.

Most of a short run's wall time is XLA compiling the same programs again (the
meta-step, the inner unroll, the probes). The command line turns on JAX's own
persistent cache so that a second run of the same recipe, evaluation or demo
loads its executables from disk instead of compiling them.

Location, first match wins:

1. ``$JAX_COMPILATION_CACHE_DIR`` (JAX's own variable; honoured untouched),
2. ``$METAUNSUP_COMPILE_CACHE_DIR``,
3. ``~/.cache/metaunsup/jax``.

Switch it off with ``METAUNSUP_NO_COMPILE_CACHE=1`` or ``metaunsup
--no-compile-cache ...``. Deleting the folder is always safe: JAX keys every
entry on the program, the JAX/XLA version, the backend and the devices, and
compiles again on a miss. Entries that took less than
:data:`MIN_COMPILE_SECONDS` to compile are not written (they load no faster
than they compile).

Library users are not affected: only :func:`enable` (called by the CLI before
any JAX computation) changes JAX's configuration.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import jax

DIR_ENV = "METAUNSUP_COMPILE_CACHE_DIR"
OFF_ENV = "METAUNSUP_NO_COMPILE_CACHE"
JAX_DIR_ENV = "JAX_COMPILATION_CACHE_DIR"
MIN_COMPILE_SECONDS = 0.2


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() not in ("", "0", "false", "no", "off")


def cache_dir() -> Path:
    """Where :func:`enable` puts the cache (see the module doc); not created here."""
    for env in (JAX_DIR_ENV, DIR_ENV):
        value = os.environ.get(env, "").strip()
        if value:
            return Path(value).expanduser()
    return Path.home() / ".cache" / "metaunsup" / "jax"


def enable(*, disabled: bool = False) -> Path | None:
    """Turns on JAX's persistent compilation cache; returns its folder, or None if off.

    Must run before the first JAX compilation of the process (JAX reads the
    setting when it first compiles). A folder that cannot be created leaves the
    cache off rather than failing the command.

    Args:
      disabled: the command line's ``--no-compile-cache``; ``METAUNSUP_NO_COMPILE_CACHE``
        set to a true value (1, true, yes, on) disables it as well.
    """
    if disabled or _truthy(os.environ.get(OFF_ENV)):
        return None
    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # else JAX's own
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path


class Background:
    """``fn(*args)`` started on a daemon thread; :meth:`result` waits for it.

    Used to overlap two cold compilations on a multi-core host (XLA compiles
    one program on one core and releases the GIL while it does): the trainer
    runs its first meta-step, compilation included, while the main thread
    validates the untrained rule. The values are those of running the two in
    sequence; only the wall time changes.
    """

    def __init__(self, fn, *args):
        self._out: tuple = ()
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._out = (True, fn(*args))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            self._out = (False, e)

    def result(self):
        """``fn``'s return value (its exception, raised here)."""
        self._thread.join()
        ok, value = self._out
        if not ok:
            raise value
        return value
