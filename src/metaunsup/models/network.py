"""A base network as one pytree: its layers, its batch-norm statistics and its static spec.

:class:`Network` is what :func:`metaunsup.train` returns and what
:func:`metaunsup.features` reads. It is a JAX pytree (``params`` and ``bn``
are leaves, ``spec`` is static), so it goes through ``jax.jit``,
``jax.vmap`` and ``jax.tree.map`` like any other tree. It keeps the
batch-norm statistics of the data it was trained on (per layer, the mean and
variance of ``x @ W`` over a seeded reference batch), never the data itself.
Saving and loading: :mod:`metaunsup.network`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import numpy as np

from metaunsup.errors import UserError, check_positive_int
from metaunsup.models.mlp import PAPER_WIDTHS, BNStats, MLPSpec, bn_stats, init_params
from metaunsup.types import Params


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Network:
    """A base network.

    Attributes:
      params: tuple of :class:`~metaunsup.types.LayerParams` (w, b, v), bottom to top.
      bn: :class:`~metaunsup.models.BNStats` used to map inputs to features, or
        None (then :func:`features` uses statistics of the inputs it is given).
      spec: the static :class:`~metaunsup.models.MLPSpec` (not a pytree leaf).
    """

    params: Params
    bn: BNStats | None
    spec: MLPSpec = dataclasses.field(metadata=dict(static=True))


def spec_of(params: Any, activation: str = "relu") -> MLPSpec:
    """The :class:`MLPSpec` of a tuple of (w, b, v) layers, with its shapes checked."""
    if not isinstance(params, (tuple, list)) or not params:
        raise UserError(f"params must be a non-empty tuple of (w, b, v) layers, got "
                        f"{type(params).__name__}")
    dims = []
    for i, layer in enumerate(params):
        try:
            w, b, v = layer.w, layer.b, layer.v
        except AttributeError:
            raise UserError(f"params[{i}] must have fields w, b, v (LayerParams), got "
                            f"{type(layer).__name__}") from None
        if np.ndim(w) != 2 or np.shape(v) != np.shape(w) or np.shape(b) != np.shape(w)[1:]:
            raise UserError(f"params[{i}]: expected w and v [n_in, n_out] and b [n_out], got "
                            f"{np.shape(w)}, {np.shape(v)}, {np.shape(b)}")
        if dims and np.shape(w)[0] != dims[-1]:
            raise UserError(f"params[{i}] takes {np.shape(w)[0]} inputs but layer {i - 1} "
                            f"has {dims[-1]} outputs")
        dims.append(int(np.shape(w)[1]))
    return MLPSpec(n_in=int(np.shape(params[0].w)[0]), widths=tuple(dims), activation=activation)


def init_network(n_in: int, widths: Sequence[int] = PAPER_WIDTHS, activation: str = "relu",
                 *, key) -> Network:
    """A fresh base network: W, V ~ N(0, 1 / fan_in), b = 0, no BN statistics yet.

    Args:
      n_in: input dimension D.
      widths: layer widths, bottom to top (paper: 128, 128, 128, 128, 32).
      activation: nonlinearity name (:data:`metaunsup.models.ACTIVATIONS`).
      key: PRNG key.
    """
    n_in = check_positive_int(n_in, name="n_in")
    if isinstance(widths, (int, str)) or not isinstance(widths, Sequence):
        raise UserError(f"widths must be a sequence of positive integers, got {widths!r}")
    spec = MLPSpec(n_in=n_in, widths=tuple(widths), activation=activation)
    return Network(init_params(key, spec), None, spec)


def with_bn_stats(network: Network, reference) -> Network:
    """``network`` with batch-norm statistics of the batch ``reference`` [B, n_in]."""
    ref = jax.numpy.asarray(reference, jax.numpy.float32)
    return dataclasses.replace(network, bn=bn_stats(network.params, ref, network.spec))


def check_network(network: Any, *, name: str = "network") -> Network:
    if not isinstance(network, Network):
        raise UserError(f"{name} must be a metaunsup Network (from metaunsup.train, "
                        f"init_network or load_network), got {type(network).__name__}")
    return network


__all__ = ["Network", "check_network", "init_network", "spec_of", "with_bn_stats"]
