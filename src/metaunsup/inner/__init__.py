"""The inner loop (what a rule does to a network) and the inner task."""
from metaunsup.inner.unroll import InnerState, init_inner_state, inner_step, unroll, unroll_jit

__all__ = ["InnerState", "init_inner_state", "inner_step", "unroll", "unroll_jit"]
