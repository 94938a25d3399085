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
- ``synthetic_arcs``: a low-dimensional manifold like two moons (Metz et al.
  2019, sec. 5.2) with more classes: class c is a noisy half circle in the
  plane, rotated by ``pi c / n_classes`` and shifted so that neighbouring arcs
  interleave; the plane is mapped to D dimensions by a random linear map and
  a sigmoid (a curved 2-D sheet in D dimensions).
- ``synthetic_signals``: 1-D signals (as MNIST-1D, Greydanus 2020, but our own
  generator): class c has a template of 4 random Gaussian bumps on [0, 1];
  an example is its template circularly shifted by up to 10 % of its length,
  scaled by 0.7-1.3, plus a random linear trend and white noise, squashed to
  [0, 1]; dimension d is time.

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


def _arcs(rng, dim, n_classes, per_class, noise=0.1):
    t = rng.uniform(0.0, np.pi, size=(n_classes, per_class))
    c = np.arange(n_classes)[:, None]
    # half circle of radius 1; odd classes flipped and shifted, as the two moons
    flip = np.where(c % 2 == 0, 1.0, -1.0)
    x = np.cos(t) + (c % 2) * 1.0
    y = flip * np.sin(t) - (c % 2) * 0.5
    angle = np.pi * (c // 2) / max(1, n_classes // 2)
    pts = np.stack([np.cos(angle) * x - np.sin(angle) * y,
                    np.sin(angle) * x + np.cos(angle) * y], axis=-1).reshape(-1, 2)
    pts = pts + noise * rng.normal(size=pts.shape)
    basis = rng.normal(size=(2, dim)) * 1.5
    z = pts @ basis
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32), np.repeat(np.arange(n_classes), per_class)


def _signals(rng, dim, n_classes, per_class, bumps=4):
    grid = np.linspace(0.0, 1.0, dim, endpoint=False)
    centres = rng.uniform(size=(n_classes, bumps))
    widths = rng.uniform(0.02, 0.08, size=(n_classes, bumps))
    heights = rng.normal(size=(n_classes, bumps))
    gap = (grid[None, None, :] - centres[:, :, None] + 0.5) % 1.0 - 0.5  # circular distance
    templates = np.sum(heights[:, :, None] * np.exp(-0.5 * (gap / widths[:, :, None]) ** 2), 1)
    n = n_classes * per_class
    label = np.repeat(np.arange(n_classes), per_class)
    shift = rng.integers(-dim // 5, dim // 5 + 1, size=n)
    x = np.stack([np.roll(templates[c], s) for c, s in zip(label, shift)])
    x = x * rng.uniform(0.7, 1.3, size=(n, 1))
    x = x + rng.normal(size=(n, 1)) * 0.5 * (grid[None] - 0.5) + 0.3 * rng.normal(size=x.shape)
    return (1.0 / (1.0 + np.exp(-2.0 * x))).astype(np.float32), label


_MAKERS = {"synthetic_sparse": _sparse, "synthetic_gmm": _gmm,
           "synthetic_prototypes": _prototypes, "synthetic_arcs": _arcs,
           "synthetic_signals": _signals}
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
