"""Features of a base network for probing, with batch-norm statistics held fixed: the one place.

The base network normalises with batch statistics. To make an example's
features independent of which other examples share its batch, probes use
statistics computed once on a fixed *reference batch* of unlabeled training
inputs (:func:`metaunsup.models.bn_stats`), then map every train and test
example through the network with those statistics, in jitted chunks of a fixed
size (the last chunk is zero-padded, so one compilation serves all chunks).

Where the reference batch comes from is :class:`FeatureConfig`: ``reference_size``
rows of the unlabeled training split, picked by the seed's reference stream
(:func:`metaunsup.streams.reference_rng`). Every method, the demo, the studies and
:func:`metaunsup.train` use it. Inside meta-training and the validation suite the
reference batch is an unlabeled batch of the task itself, drawn in JAX
(``SuiteConfig.ref_size``, ``RuleTask.ref_size``: 256 examples).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.errors import UserError
from metaunsup.models.mlp import MLPSpec, bn_stats, features
from metaunsup.streams import reference_rng
from metaunsup.types import Params

REFERENCE_SIZE = 2048
CHUNK_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """How a network's features of a data set are computed.

    Attributes:
      reference_size: rows of the batch-norm reference batch, drawn without
        replacement from the unlabeled training inputs (all of them when there
        are fewer); 2048 estimates each unit's mean and variance to about 2%.
      chunk_size: rows per jitted call (bounds device memory; the result does
        not depend on it).
    """

    reference_size: int = REFERENCE_SIZE
    chunk_size: int = CHUNK_SIZE

    def __post_init__(self):
        for f in ("reference_size", "chunk_size"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise UserError(f"{f} must be a positive integer, got {v!r}")


@functools.partial(jax.jit, static_argnames="spec")
def _chunk_features(params, x, spec, stats):
    return features(params, x, spec, stats)


def reference_batch(x_train: np.ndarray, *, seed: int, size: int = REFERENCE_SIZE) -> np.ndarray:
    """A seeded random subset of ``size`` rows of ``x_train`` (all rows if fewer)."""
    n = x_train.shape[0]
    if n <= size:
        return np.asarray(x_train)
    rng = reference_rng(seed)
    return np.asarray(x_train)[np.sort(rng.choice(n, size=size, replace=False))]


def map_features(params: Params, x: np.ndarray, spec: MLPSpec, stats,
                 *, chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """Top-layer features of every row of ``x`` [N, n_in] with fixed BN ``stats``: [N, F]."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    chunk = min(chunk_size, max(n, 1))
    out = []
    for start in range(0, n, chunk):
        block = x[start:start + chunk]
        rows = block.shape[0]
        if rows < chunk:
            block = np.concatenate([block, np.zeros((chunk - rows, x.shape[1]), np.float32)])
        out.append(np.asarray(_chunk_features(params, jnp.asarray(block), spec, stats))[:rows])
    if not out:
        return np.zeros((0, spec.widths[-1]), np.float32)
    return np.concatenate(out)


def reference_stats(params: Params, spec: MLPSpec, x_train: np.ndarray, *, seed: int,
                    config: FeatureConfig = FeatureConfig()):
    """Batch-norm statistics of the seeded reference batch of ``x_train`` (FeatureConfig)."""
    ref = jnp.asarray(reference_batch(x_train, seed=seed, size=config.reference_size),
                      jnp.float32)
    return bn_stats(params, ref, spec)


def network_features(params: Params, spec: MLPSpec, x_train: np.ndarray, x_test: np.ndarray,
                     *, seed: int, config: FeatureConfig = FeatureConfig()
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Features of both splits, BN statistics from a seeded reference batch of ``x_train``.

    Args:
      params: the base network.
      spec: its description.
      x_train: [N, n_in] unlabeled training inputs (the reference batch comes from here).
      x_test: [M, n_in] test inputs.
      seed: picks the reference batch.
      config: the reference batch's size and the chunk size.

    Returns:
      ``(train_features [N, F], test_features [M, F])`` as float32 numpy arrays.
    """
    stats = reference_stats(params, spec, x_train, seed=seed, config=config)
    return (map_features(params, x_train, spec, stats, chunk_size=config.chunk_size),
            map_features(params, x_test, spec, stats, chunk_size=config.chunk_size))


__all__ = ["CHUNK_SIZE", "FeatureConfig", "REFERENCE_SIZE", "map_features", "network_features",
           "reference_batch", "reference_stats"]
