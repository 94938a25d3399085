"""The accuracy table ``evaluate`` and ``demo`` print: one header, one row per record."""
from __future__ import annotations

HEADER = (f"{'method':<12} {'dataset':<15} {'res':>4} {'shots':>5} {'seeds':>5} "
          f"{'accuracy %':>15} {'time s':>7}")


def row(rec: dict) -> str:
    """One line of a record of :func:`metaunsup.eval.evaluate.evaluate_methods` or the demo."""
    acc = (f"{rec['mean']:.2f} (1 seed)" if rec["ci95"] is None  # no interval from one seed
           else f"{rec['mean']:.2f} ± {rec['ci95']:.2f}")
    res = "-" if rec["resolution"] is None else str(rec["resolution"])
    return (f"{rec['method']:<12} {rec['dataset']:<15} {res:>4} {rec['shots']:>5} "
            f"{len(rec['seeds']):>5} {acc:>15} {rec['seconds']:>7.1f}")
