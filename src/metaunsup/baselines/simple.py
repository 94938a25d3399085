"""Reference representations that need no learning rule: raw pixels, PCA, a random network.

- ``raw``: the inputs themselves ([N, D]); the floor any representation must beat.
- ``pca``: the top principal components of the unlabeled training inputs, as many
  as the base network's top width (paper: 32), optionally whitened.
- ``random``: the top layer of the base network every trained method of the seed
  starts from (:func:`metaunsup.inner.unroll.initial_params` of the seed's network
  key, :func:`metaunsup.streams.method_keys`), untrained: the paper's "random init"
  curve at step 0, paired with the trained methods. BN statistics come from a
  seeded reference batch of unlabeled training inputs
  (:func:`metaunsup.models.featurize.network_features`).

Each has the method signature of :mod:`metaunsup.baselines.registry`.
"""
from __future__ import annotations

import numpy as np

from metaunsup.baselines.registry import register_method
from metaunsup.errors import UserError
from metaunsup.inner.unroll import initial_params
from metaunsup.models import MLPSpec
from metaunsup.models.featurize import REFERENCE_SIZE, FeatureConfig, network_features
from metaunsup.streams import method_keys


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
    from sklearn.decomposition import PCA  # heavy import; only this method needs it

    x_train = np.asarray(dataset.x_train, np.float32)
    k = int(options.get("components", spec.widths[-1]))
    if k <= 0:
        raise UserError(f"pca components must be positive, got {k}")
    k = min(k, x_train.shape[1], x_train.shape[0])
    pca = PCA(n_components=k, whiten=bool(options.get("whiten", False)), random_state=int(seed))
    train = pca.fit_transform(x_train)
    return train, pca.transform(np.asarray(dataset.x_test, np.float32))


def network_at_init(params, dataset, *, spec: MLPSpec, seed: int, options: dict):
    """Top-layer features of the untrained network ``params`` (BN from the reference batch).

    Options:
      reference_size (int): examples in the BN reference batch (default 2048).
    """
    config = FeatureConfig(reference_size=int(options.get("reference_size", REFERENCE_SIZE)))
    return network_features(params, spec, dataset.x_train, dataset.x_test, seed=seed,
                            config=config)


def random_features(dataset, *, spec: MLPSpec, seed: int, options: dict):
    """Top-layer features of the seed's untrained base network, the one every trained
    method of ``seed`` starts from (paired). Options: ``reference_size``."""
    params = initial_params(method_keys(seed)[0], spec)
    return network_at_init(params, dataset, spec=spec, seed=seed, options=options)


register_method("raw", raw_features, stochastic=False, description="input pixels as features",
                options={})
register_method("pca", pca_features, stochastic=False,
                description="top principal components of the unlabeled train split",
                options={"components": int, "whiten": bool})
register_method("random", random_features, stochastic=True,
                description="the untrained base network every trained method of the seed "
                            "starts from (BN stats from unlabeled data)",
                options={"reference_size": int})
