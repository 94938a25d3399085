"""Nonlinearities of the base network, by name.

The step function (Heaviside) has zero derivative almost everywhere; learned
rules never differentiate through it (they use their own backward signals).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from metaunsup.errors import UserError

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=0.01),
    "swish": jax.nn.swish,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "step": lambda x: (x > 0).astype(x.dtype),
    "identity": lambda x: x,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Returns the activation function called ``name``."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise UserError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
