"""The glossary of metaunsup, in one place.

- ``params``: the base network's parameters, a tuple of :class:`LayerParams`,
  one per layer, bottom to top.
- ``meta_params``: the update rule's parameters (theta), a nested dict of arrays
  whose leaves are named by their path ("top/w0", ...). Independent of the base
  network's widths and depth.
- ``rule_state``: whatever a rule carries between inner steps (a pytree).
- ``inner_state``: :class:`metaunsup.inner.InnerState`, params + rule_state +
  step counter + PRNG key: the carry of the inner loop.
- ``unlabeled``: the batches the rule trains on (no labels).
- ``support`` / ``query``: labelled examples used to fit / score a probe.
- ``task``: a dataset x augmentation x architecture x inner length.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax

Array = jax.Array
PRNGKey = jax.Array
PyTree = Any
MetaParams = dict[str, Any]
Metrics = dict[str, Array]


class LayerParams(NamedTuple):
    """One layer of the base network: ``z = BN(x @ w) + b``.

    Attributes:
      w: [n_in, n_out] forward weights.
      b: [n_out] bias (added after batch norm).
      v: [n_in, n_out] backward weights; only update rules read them, to send
        signals down (no weight transport).
    """

    w: Array
    b: Array
    v: Array


Params = tuple[LayerParams, ...]
