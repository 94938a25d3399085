"""Base networks trained by update rules."""
from metaunsup.models.activations import ACTIVATIONS, get_activation
from metaunsup.models.mlp import (
    PAPER_WIDTHS,
    Activations,
    BNStats,
    MLPSpec,
    batch_norm,
    bn_stats,
    features,
    forward,
    init_params,
    parse_widths,
)

__all__ = [
    "ACTIVATIONS", "PAPER_WIDTHS", "Activations", "BNStats", "MLPSpec", "batch_norm",
    "bn_stats", "features", "forward", "get_activation", "init_params", "parse_widths",
]
