"""Progress bars on a terminal only: the one place every loop gets its bar from.

A bar redrawn with carriage returns is for a person watching a terminal. Written to
a log (stderr redirected to a file or a pipe), every redraw and every finished bar
stays in the file, one per seed or task: so :func:`progress_bar` draws nothing
unless stderr is a terminal. What a log should show is written by the loops
themselves (``metrics.jsonl``, ``rows.jsonl``, the printed tables).
``METAUNSUP_PROGRESS=1`` forces bars on (``0`` off) whatever stderr is.
"""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def bars_wanted(requested: bool = True) -> bool:
    """Whether to draw: ``requested``, and stderr is a terminal (or forced, module doc)."""
    forced = os.environ.get("METAUNSUP_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return requested and forced == "1"
    return requested and sys.stderr.isatty()


def progress_bar(requested: bool = True, **kwargs) -> tqdm:
    """A tqdm bar (``total``, ``desc``, ``unit``, ...), disabled off a terminal (module doc)."""
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(disable=not bars_wanted(requested), **kwargs)


__all__ = ["bars_wanted", "progress_bar"]
