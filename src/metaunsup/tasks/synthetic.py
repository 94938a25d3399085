"""Labelled synthetic non-image data for the meta-training distribution.

So that a rule is not tuned to pixels alone, the meta-training pool can hold
data sets generated on the fly (seeded) with the same [N, D] layout in [0, 1]
as the image sets. Each generator returns ``(x, y)`` with ``n_classes``
classes of ``per_class`` examples:

- ``synthetic_sparse``: sparse binary vectors; each class has a random support
  of active dimensions, an example switches each on with probability 0.6 and
  any other dimension with probability 0.02 (bag-of-words-like).
- ``synthetic_gmm``: Gaussian mixtures in a random low-dimensional subspace
  (dimension 8): class means and noise live in the subspace, then a random
  linear map to D dimensions and a squashing to [0, 1].
- ``synthetic_prototypes``: non-negative mixtures of random prototypes; an
  example is a Dirichlet-weighted mix of its class's 3 prototypes plus small
  noise, clipped to [0, 1].

The names are accepted in ``TaskDistConfig.datasets`` (they are never held out).
"""
from __future__ import annotations

import numpy as np

from metaunsup.errors import UserError

def _sparse(rng, dim, n_classes, per_class):
    xs, ys = [], []
    for c in range(n_classes):
        support = rng.random(dim) < 0.1
        on = rng.random((per_class, dim)) < np.where(support, 0.6, 0.02)
        xs.append(on.astype(np.float32))
        ys.append(np.full(per_class, c))
    return np.concatenate(xs), np.concatenate(ys)


def _gmm(rng, dim, n_classes, per_class, sub=8):
    basis = rng.normal(size=(sub, dim)) / np.sqrt(sub)
    means = rng.normal(size=(n_classes, sub)) * 1.5
    z = means.repeat(per_class, axis=0) + rng.normal(size=(n_classes * per_class, sub))
    x = 1.0 / (1.0 + np.exp(-(z @ basis)))
    return x.astype(np.float32), np.repeat(np.arange(n_classes), per_class)


def _prototypes(rng, dim, n_classes, per_class, k=3):
    protos = rng.random((n_classes, k, dim)) ** 3  # sparse-ish, non-negative
    w = rng.dirichlet(np.ones(k), size=(n_classes, per_class))  # [C, P, k]
    x = np.einsum("cpk,ckd->cpd", w, protos).reshape(-1, dim)
    x = np.clip(x + 0.02 * rng.normal(size=x.shape), 0.0, 1.0)
    return x.astype(np.float32), np.repeat(np.arange(n_classes), per_class)


_MAKERS = {"synthetic_sparse": _sparse, "synthetic_gmm": _gmm,
           "synthetic_prototypes": _prototypes}
SYNTHETIC = tuple(_MAKERS)
"""Names of the generators (accepted as meta-training data sets)."""


def generate(name: str, *, dim: int, n_classes: int = 10, per_class: int = 200,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x [n_classes * per_class, dim] float32 in [0, 1], y int)`` of generator ``name``."""
    if name not in _MAKERS:
        raise UserError(f"unknown synthetic data set {name!r}; choose one of {', '.join(SYNTHETIC)}")
    if dim <= 0 or n_classes < 2 or per_class <= 0:
        raise UserError(f"synthetic data needs dim > 0, n_classes >= 2, per_class > 0; got "
                        f"{dim}, {n_classes}, {per_class}")
    rng = np.random.default_rng([seed, SYNTHETIC.index(name)])
    return _MAKERS[name](rng, dim, n_classes, per_class)


__all__ = ["SYNTHETIC", "generate"]
