"""Meta-objectives: how good a representation is for few-shot learning."""
from metaunsup.objectives.ridge import (
    FEATURE_NORMS,
    RidgeConfig,
    centred_one_hot,
    cosine_distance,
    ridge_fit,
    ridge_meta_loss,
    ridge_predict,
)

__all__ = ["FEATURE_NORMS", "RidgeConfig", "centred_one_hot", "cosine_distance",
           "ridge_fit", "ridge_meta_loss", "ridge_predict"]
