"""The library's optimizers: optax transformations that run under any dtype-promotion mode.

optax's Adam corrects its moments by ``decay ** count``: a Python float raised to an
int32 count, which JAX's strict dtype promotion (``jax_numpy_dtype_promotion =
"strict"``, on for the whole test suite) refuses. :func:`promotion_safe` runs a
transformation's ``init`` and ``update`` under standard promotion, so the code
around it stays strict; the numbers are those of the transformation itself.
"""
from __future__ import annotations

import jax
import optax


def promotion_safe(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` with its ``init`` and ``update`` traced under standard dtype promotion."""
    def init(params):
        with jax.numpy_dtype_promotion("standard"):
            return tx.init(params)

    def update(updates, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(init, update)


def adam(learning_rate: float, **kwargs) -> optax.GradientTransformation:
    """``optax.adam(learning_rate, **kwargs)``, promotion-safe."""
    return promotion_safe(optax.adam(learning_rate, **kwargs))


__all__ = ["adam", "promotion_safe"]
