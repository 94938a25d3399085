"""Figures of study rows (PNG, drawn by :func:`metaunsup.eval.report.new_figure`).

Accuracies are percent with 95% intervals drawn as bands or error bars; methods
whose features do not depend on the network (``key`` value None) are dashed
horizontal lines.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from metaunsup.eval.report import new_figure, save_figure


def _ci(row: Mapping) -> float:
    return 0.0 if row.get("ci95") is None else float(row["ci95"])


def _ylim(ax) -> None:
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 100.0))


def plot_sweep(rows: Sequence[Mapping], axis: str, path, *, xlabel: str, log_x: bool,
               title: str = "") -> Path:
    """Accuracy against the swept setting, one panel per dataset, one line per method.

    Args:
      rows: study rows with ``dataset``, ``method``, ``axis`` (None for flat methods),
        ``mean`` and ``ci95``.
      axis: the swept key; numeric values are placed on a (log) axis, others
        (activations) evenly in first-seen order.
      path: PNG path.
    """
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig = new_figure(4.6 * len(datasets) + 0.6, 3.8)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets):
        sub = [r for r in rows if r["dataset"] == ds]
        values = list(dict.fromkeys(r[axis] for r in sub if r[axis] is not None))
        numeric = all(isinstance(v, (int, float)) for v in values)
        pos = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
        for k, method in enumerate(dict.fromkeys(r["method"] for r in sub)):
            color = f"C{k % 10}"
            mine = [r for r in sub if r["method"] == method]
            if len(mine) == 1 and mine[0][axis] is None:
                r = mine[0]
                ax.axhline(r["mean"], ls="--", lw=1.2, color=color, label=method)
                ax.axhspan(r["mean"] - _ci(r), r["mean"] + _ci(r), color=color, alpha=0.1, lw=0)
                continue
            mine.sort(key=lambda r: pos[r[axis]])
            x = np.array([pos[r[axis]] for r in mine])
            m = np.array([r["mean"] for r in mine])
            c = np.array([_ci(r) for r in mine])
            ax.plot(x, m, marker="o", ms=3, color=color, label=method)
            ax.fill_between(x, m - c, m + c, color=color, alpha=0.18, lw=0)
        if numeric and log_x:
            ax.set_xscale("log", base=2)
        if numeric:
            ax.set_xticks([pos[v] for v in values], [str(v) for v in values])
        else:
            ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=20)
        ax.set_title(ds)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("probe accuracy (%)")
        ax.grid(alpha=0.3)
        _ylim(ax)
        ax.legend(fontsize="x-small", loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_bars(rows: Sequence[Mapping], group: str, path, *, chance: float | None = None,
              title: str = "") -> Path:
    """Grouped bars: one group per value of ``group``, one bar per method, 95% error bars."""
    groups = list(dict.fromkeys(r[group] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    index = {(r[group], r["method"]): r for r in rows}
    fig = new_figure(1.2 + 0.55 * len(groups) * len(methods), 3.8)
    ax = fig.subplots()
    width = 0.8 / max(len(methods), 1)
    for k, m in enumerate(methods):
        xs, ys, es = [], [], []
        for g_i, g in enumerate(groups):
            r = index.get((g, m))
            if r is not None and r.get("mean") is not None:
                xs.append(g_i + (k - (len(methods) - 1) / 2) * width)
                ys.append(r["mean"])
                es.append(_ci(r))
        ax.bar(xs, ys, width=width, yerr=es, capsize=2, color=f"C{k % 10}", label=m)
    if chance is not None:
        ax.axhline(chance, color="k", lw=0.8, ls=":", label="chance")
    ax.set_xticks(range(len(groups)), [f"{group} {g}" for g in groups])
    ax.set_ylabel("probe accuracy (%)")
    lows = [r["mean"] - _ci(r) for r in rows if r.get("mean") is not None]
    ax.set_ylim(max(0.0, min(lows + [chance or 100.0]) - 5.0), 100.0)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="x-small", ncol=2)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_lines(series: Mapping[str, Mapping], path, *, xlabel: str, ylabel: str,
               title: str = "", log_x: bool = False, right: Mapping[str, Mapping] | None = None,
               right_label: str = "", percent: bool = True) -> Path:
    """Lines ``name -> {"x", "mean", "ci95" (optional)}`` with bands; optional right axis.

    ``right`` series (e.g. a training loss) are drawn dashed against a second y axis.
    """
    fig = new_figure(6.0, 3.8)
    ax = fig.subplots()
    k = 0
    for k, (name, s) in enumerate(series.items()):
        x = np.asarray(s["x"], float)
        m = np.asarray(s["mean"], float)
        ax.plot(x, m, marker="o", ms=3, color=f"C{k % 10}", label=name)
        if s.get("ci95") is not None:
            c = np.array([0.0 if v is None else float(v) for v in s["ci95"]])
            ax.fill_between(x, m - c, m + c, color=f"C{k % 10}", alpha=0.18, lw=0)
    if log_x:
        ax.set_xscale("symlog", linthresh=max(1.0, min(
            [v for s in series.values() for v in s["x"] if v > 0] or [1.0])))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if percent:
        _ylim(ax)
    handles, labels = ax.get_legend_handles_labels()
    if right:
        ax2 = ax.twinx()
        for j, (name, s) in enumerate(right.items()):
            ax2.plot(s["x"], s["mean"], ls="--", marker="x", ms=3,
                     color=f"C{(k + 1 + j) % 10}", label=name)
        ax2.set_ylabel(right_label)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize="x-small", loc="best")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_scatters(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], path, *,
                  title: str = "") -> Path:
    """Small scatter plots ``(caption, points [N, 2], labels [N])`` side by side."""
    n = len(panels)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = new_figure(2.6 * cols + 0.2, 2.6 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    for ax, (caption, pts, labels) in zip(axes, panels):
        pts = np.asarray(pts, float)
        ax.scatter(pts[:, 0], pts[:, 1], c=np.asarray(labels), cmap="coolwarm", s=4,
                   alpha=0.7, lw=0)
        ax.set_title(caption, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
