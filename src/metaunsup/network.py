"""Base networks (:class:`~metaunsup.models.network.Network`) in files, and the public names.

:class:`Network` (defined in :mod:`metaunsup.models.network`) is what
:func:`metaunsup.train` returns and what :func:`metaunsup.features` reads: a JAX
pytree of the layers, the batch-norm statistics of the data it was trained on and
the static spec.

Saving: :func:`save_network` writes one safetensors file (tensors named
``params/0/w``, ``bn/mean/0``, ...) with a JSON header holding the spec;
:func:`load_network` checks every name, shape and dtype against that spec.
No pickle.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metaunsup.errors import UserError
from metaunsup.models import BNStats, MLPSpec, init_params
from metaunsup.models.network import Network, check_network, init_network, spec_of, with_bn_stats
from metaunsup.run.checkpoint import check_format, read_tree, write_tree
from metaunsup.types import LayerParams

NETWORK_FORMAT = "metaunsup-network"
NETWORK_FORMAT_VERSION = 1


def _spec_dict(spec: MLPSpec) -> dict:
    return dataclasses.asdict(spec)


def save_network(path: str | os.PathLike, network: Network, **provenance: Any) -> None:
    """Writes ``network`` to ``path`` (safetensors + JSON header; see the module doc)."""
    check_network(network)
    header = {"format": NETWORK_FORMAT, "format_version": NETWORK_FORMAT_VERSION,
              "spec": _spec_dict(network.spec), "has_bn": network.bn is not None,
              "provenance": provenance}
    write_tree(path, {"params": network.params, "bn": network.bn or {}}, header)


def load_network(path: str | os.PathLike) -> Network:
    """Reads a file written by :func:`save_network`, checking every tensor against its spec."""
    if not isinstance(path, (str, os.PathLike)):
        raise UserError(f"path must be a file path, got {type(path).__name__}")
    if not Path(path).is_file():
        raise UserError(f"{path}: no such network file")
    _, header = read_tree(path)
    check_format(path, header, NETWORK_FORMAT, NETWORK_FORMAT_VERSION)
    try:
        spec = MLPSpec(**{**header["spec"], "widths": tuple(header["spec"]["widths"])})
        has_bn = bool(header["has_bn"])
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: invalid network header ({e})") from None
    template = jax.eval_shape(lambda: init_params(jax.random.PRNGKey(0), spec))
    zeros = tuple(jax.ShapeDtypeStruct((w,), np.float32) for w in spec.widths)
    tree = {"params": template, "bn": BNStats(zeros, zeros) if has_bn else {}}
    restored, _ = read_tree(path, tree)
    params = tuple(LayerParams(*(jax.numpy.asarray(a) for a in layer))
                   for layer in restored["params"])
    bn = (BNStats(*(tuple(jax.numpy.asarray(a) for a in part) for part in restored["bn"]))
          if has_bn else None)
    return Network(params, bn, spec)


__all__ = ["NETWORK_FORMAT", "Network", "check_network", "init_network", "load_network",
           "save_network", "spec_of", "with_bn_stats"]
