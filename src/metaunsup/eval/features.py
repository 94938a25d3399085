"""Features of a base network for probing, with batch-norm statistics held fixed.

The base network normalises with batch statistics. To make an example's
features independent of which other examples share its batch, probes use
statistics computed once on a fixed *reference batch* of unlabeled training
inputs (:func:`metaunsup.models.bn_stats`), then map every train and test
example through the network with those statistics, in jitted chunks of a fixed
size (the last chunk is zero-padded, so one compilation serves all chunks).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.models import MLPSpec, bn_stats, features
from metaunsup.types import Params

REFERENCE_SIZE = 2048
CHUNK_SIZE = 4096


@functools.partial(jax.jit, static_argnames="spec")
def _chunk_features(params, x, spec, stats):
    return features(params, x, spec, stats)


def reference_batch(x_train: np.ndarray, *, seed: int, size: int = REFERENCE_SIZE) -> np.ndarray:
    """A seeded random subset of ``size`` rows of ``x_train`` (all rows if fewer)."""
    n = x_train.shape[0]
    if n <= size:
        return np.asarray(x_train)
    rng = np.random.default_rng([int(seed), 2])
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


def network_features(params: Params, spec: MLPSpec, x_train: np.ndarray, x_test: np.ndarray,
                     *, seed: int, reference_size: int = REFERENCE_SIZE,
                     chunk_size: int = CHUNK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Features of both splits, BN statistics from a seeded reference batch of ``x_train``.

    Args:
      params: the base network.
      spec: its description.
      x_train: [N, n_in] unlabeled training inputs (the reference batch comes from here).
      x_test: [M, n_in] test inputs.
      seed: picks the reference batch.
      reference_size: examples in the reference batch.
      chunk_size: rows per jitted call.

    Returns:
      ``(train_features [N, F], test_features [M, F])`` as float32 numpy arrays.
    """
    ref = jnp.asarray(reference_batch(x_train, seed=seed, size=reference_size), jnp.float32)
    stats = bn_stats(params, ref, spec)
    return (map_features(params, x_train, spec, stats, chunk_size=chunk_size),
            map_features(params, x_test, spec, stats, chunk_size=chunk_size))
