"""Figures and tables for a run's ``report/`` folder; the one figure writer.

Every figure (here and in :mod:`metaunsup.studies.plots`) is a
:class:`matplotlib.figure.Figure` on an Agg canvas made by :func:`new_figure` and
written by :func:`save_figure`, so no display (and no global pyplot state) is ever
needed; matplotlib is imported on the first figure (start-up time of commands
that draw none).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from metaunsup.errors import UserError

_DPI = 120
_YLABEL = "10-shot probe accuracy (%)"


def new_figure(width: float, height: float):
    """A display-free figure on an Agg canvas (every figure of metaunsup starts here)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path) -> Path:
    """Writes ``fig`` as a PNG at ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


def _is_missing(x) -> bool:
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x))


def _band(mean: Sequence[float], ci: Sequence) -> tuple[np.ndarray, np.ndarray] | None:
    """Returns (low, high) of mean +- ci, or None when every ci is missing."""
    half = np.array([np.nan if _is_missing(c) else float(c) for c in ci], dtype=float)
    if half.size == 0 or np.all(np.isnan(half)):
        return None
    m = np.asarray(mean, dtype=float)
    return m - half, m + half  # NaN halves leave gaps in the band


def plot_curves(curves: Mapping[str, Mapping[str, Mapping]], path, *,
                flat: Mapping[str, Mapping[str, tuple]] | None = None,
                title: str = "") -> Path:
    """Plots probe accuracy against inner training steps, one panel per dataset.

    Args:
      curves: dataset -> method -> {"steps": [T] ints, "mean": [T] floats (%),
        "ci95": [T] floats or None (95% half-widths)}.
      path: where the PNG is written (parent folders are created).
      flat: optional dataset -> method -> (mean, ci95) for methods that do not
        train (raw pixels, PCA, random init); drawn as dashed horizontal lines.
      title: figure title.

    Returns:
      The path of the written PNG.
    """
    flat = flat or {}
    datasets = list(dict.fromkeys([*curves, *flat]))
    if not datasets:
        raise UserError("plot_curves: no datasets to plot")
    fig = new_figure(4.2 * len(datasets) + 0.6, 3.6)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets):
        all_steps = []
        for k, (method, c) in enumerate(curves.get(ds, {}).items()):
            steps = np.asarray(c["steps"], dtype=float)
            color = f"C{k % 10}"
            ax.plot(steps, c["mean"], marker="o", ms=3, color=color, label=method)
            band = _band(c["mean"], c.get("ci95") or [None] * len(steps))
            if band is not None:
                ax.fill_between(steps, *band, color=color, alpha=0.2, lw=0)
            all_steps.extend(steps.tolist())
        offset = len(curves.get(ds, {}))
        for k, (method, (mean, ci)) in enumerate(flat.get(ds, {}).items()):
            color = f"C{(offset + k) % 10}"
            ax.axhline(mean, ls="--", color=color, lw=1.2, label=method)
            if not _is_missing(ci):
                ax.axhspan(mean - ci, mean + ci, color=color, alpha=0.12, lw=0)
        _set_step_scale(ax, all_steps)
        ax.set_title(ds)
        ax.set_xlabel("inner steps")
        ax.set_ylabel(_YLABEL)
        ax.grid(alpha=0.3)
        low, high = ax.get_ylim()  # accuracies: wide intervals must not stretch past 0-100
        ax.set_ylim(max(low, 0.0), min(high, 100.0))
        ax.legend(fontsize="small", loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def _set_step_scale(ax, steps: Sequence[float]) -> None:
    """Linear x axis unless positive steps span >= 2 decades; then symlog.

    Symlog is linear below the smallest positive step (so step 0 is drawn) and
    logarithmic above it.
    """
    pos = [s for s in steps if s > 0]
    if len(pos) >= 2 and max(pos) / min(pos) >= 100:
        ax.set_xscale("symlog", linthresh=min(pos), linscale=0.5)
        # Autoscale margins would otherwise open a meaningless negative region.
        ax.set_xlim(min(steps), max(pos) * 1.4)


def plot_filters(w, path, *, image_shape: tuple[int, ...], max_filters: int = 64,
                 title: str = "") -> Path:
    """Tiles first-layer filters as grayscale images.

    Args:
      w: [n_in, n_units] weight matrix; column j is unit j's filter.
      path: where the PNG is written (parent folders are created).
      image_shape: (height, width) the n_in inputs reshape to; n_in must equal
        its product.
      max_filters: at most this many columns (the first ones) are shown.
      title: figure title.

    Returns:
      The path of the written PNG.
    """
    w = np.asarray(w, dtype=float)
    shape = tuple(int(s) for s in image_shape)
    if w.ndim != 2:
        raise UserError(f"plot_filters: expected a 2-D weight matrix, got shape {w.shape}")
    if w.shape[0] != math.prod(shape):
        raise UserError(f"plot_filters: weight rows {w.shape[0]} != prod(image_shape "
                        f"{shape}) = {math.prod(shape)}")
    n = min(w.shape[1], int(max_filters))
    if n <= 0:
        raise UserError("plot_filters: no filters to show")
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = new_figure(1.0 * cols + 0.2, 1.0 * rows + (0.4 if title else 0.2))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for j, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= n:
            ax.set_axis_off()
            continue
        tile = w[:, j].reshape(shape)
        m = float(np.max(np.abs(tile))) or 1.0  # an all-zero filter draws grey
        ax.imshow(tile, cmap="gray", vmin=-m, vmax=m, interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02,
                        top=0.9 if title else 0.98, wspace=0.08, hspace=0.08)
    return save_figure(fig, path)


def _cell(rec: Mapping | None) -> str:
    if rec is None or _is_missing(rec.get("mean")):
        return "-"
    ci = rec.get("ci95")
    ci_text = "n/a" if ci is None else f"{float(ci):.1f}"  # NaN formats as "nan"
    return f"{float(rec['mean']):.1f} ± {ci_text}"


def write_markdown_table(records: Sequence[Mapping], path, *, title: str,
                         notes: Sequence[str] = ()) -> Path:
    """Writes a methods x datasets accuracy table as markdown.

    Args:
      records: dicts with "method", "dataset", "mean", "ci95", "seeds" (list)
        and optionally "steps". Rows and columns keep first-seen order; a
        later record for the same (method, dataset) replaces an earlier one.
      path: where the .md file is written (parent folders are created).
      title: the heading.
      notes: lines written after the table.

    Returns:
      The path of the written file. Cells read "mean ± ci95" (one decimal),
      "-" when missing; the best mean of each dataset is bold.
    """
    methods = list(dict.fromkeys(r["method"] for r in records))
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    table = {(r["method"], r["dataset"]): r for r in records}
    best = {}
    for ds in datasets:
        means = [float(table[m, ds]["mean"]) for m in methods
                 if (m, ds) in table and not _is_missing(table[m, ds]["mean"])]
        best[ds] = max(means) if means else None
    lines = [f"# {title}", "", "| method | " + " | ".join(datasets) + " |",
             "|---|" + "---|" * len(datasets)]
    for m in methods:
        cells = []
        for ds in datasets:
            rec = table.get((m, ds))
            text = _cell(rec)
            if text != "-" and float(rec["mean"]) == best[ds]:
                text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(notes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    return path
