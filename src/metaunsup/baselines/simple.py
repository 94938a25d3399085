"""Reference representations that need no learning rule: raw pixels, PCA, a random network.

- ``raw``: the inputs themselves ([N, D]); the floor any representation must beat.
- ``pca``: the top principal components of the unlabeled training inputs, as many
  as the base network's top width (paper: 32), optionally whitened.
- ``random``: the top layer of a randomly initialised base network (what a rule
  starts from; the paper's "random init" curve at step 0). BN statistics come from
  a seeded reference batch of unlabeled training inputs
  (:func:`metaunsup.eval.features.network_features`).

Each has the method signature of :mod:`metaunsup.eval.methods`.
"""
from __future__ import annotations

import jax
import numpy as np

from metaunsup.errors import UserError
from metaunsup.eval.features import REFERENCE_SIZE, network_features
from metaunsup.eval.methods import register_method
from metaunsup.models import MLPSpec, init_params


def raw_features(dataset, *, spec: MLPSpec, seed: int, options: dict):
    """Inputs as features: ``(x_train, x_test)``. ``spec``, ``seed``, ``options`` unused."""
    del spec, seed, options
    return np.asarray(dataset.x_train), np.asarray(dataset.x_test)


def pca_features(dataset, *, spec: MLPSpec, seed: int, options: dict):
    """Projections on the top principal components of the unlabeled training inputs.

    Options:
      components (int): number of components (default: ``spec.widths[-1]``, capped
        at the input dimension and the number of training examples).
      whiten (bool): scale each component to unit variance (default False).
    """
    from sklearn.decomposition import PCA

    x_train = np.asarray(dataset.x_train, np.float32)
    k = int(options.get("components", spec.widths[-1]))
    if k <= 0:
        raise UserError(f"pca components must be positive, got {k}")
    k = min(k, x_train.shape[1], x_train.shape[0])
    pca = PCA(n_components=k, whiten=bool(options.get("whiten", False)), random_state=int(seed))
    train = pca.fit_transform(x_train)
    return train, pca.transform(np.asarray(dataset.x_test, np.float32))


def random_features(dataset, *, spec: MLPSpec, seed: int, options: dict):
    """Top-layer features of the base network drawn by ``init_params(PRNGKey(seed), spec)``.

    Options:
      reference_size (int): examples in the BN reference batch (default 2048).
    """
    params = init_params(jax.random.PRNGKey(int(seed)), spec)
    return network_features(params, spec, dataset.x_train, dataset.x_test, seed=seed,
                            reference_size=int(options.get("reference_size", REFERENCE_SIZE)))


register_method("raw", raw_features, stochastic=False, description="input pixels as features")
register_method("pca", pca_features, stochastic=False,
                description="top principal components of the unlabeled train split")
register_method("random", random_features, stochastic=True,
                description="randomly initialised base network (BN stats from unlabeled data)")
