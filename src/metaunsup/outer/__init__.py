"""Outer loop: meta-gradient estimators (TBPTT, ES, PES) over truncated inner tasks."""
from metaunsup.outer.estimators import (
    PESState,
    es_full,
    gaussian_like,
    pes,
    pes_accumulate,
    pes_init,
    tbptt,
    tbptt_init,
)

__all__ = ["PESState", "es_full", "gaussian_like", "pes", "pes_accumulate", "pes_init",
           "tbptt", "tbptt_init"]
