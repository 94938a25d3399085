"""Baseline representations, registered as evaluation methods on import.

Each module below calls :func:`metaunsup.baselines.registry.register_method`; a new
method module adds one import line here. Importing anything from this package
(the registry included) registers them all.
"""
from metaunsup.baselines import simple  # noqa: F401  (registers raw, pca, random)
from metaunsup.baselines import rule  # noqa: F401  (registers rule, autoencoder, vae)
from metaunsup.baselines import supervised  # noqa: F401  (registers supervised)
from metaunsup.baselines import competitive  # noqa: F401  (hand rules, random_wide)
from metaunsup.baselines.simple import pca_features, random_features, raw_features

__all__ = ["pca_features", "random_features", "raw_features"]
