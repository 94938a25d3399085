"""Named base-network shapes shared by the task distribution and the validation suite.

Each group fixes widths (bottom to top) and the activation, so that every task of
a group has the same shapes and one compilation serves them all (``vmap``).
"""
from __future__ import annotations

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec

# (name, widths bottom to top, activation, share of the validation tasks). The
# paper's evaluation network gets the largest share.
ARCH_GROUPS: tuple[tuple[str, tuple[int, ...], str, int], ...] = (
    ("paper", (128, 128, 128, 128, 32), "relu", 4),
    ("deep", (128,) * 7 + (32,), "relu", 1),
    ("wide", (512, 512, 32), "relu", 1),
    ("tanh", (128, 128, 128, 128, 32), "tanh", 1),
    ("swish", (128, 128, 128, 128, 32), "swish", 1),
    ("sigmoid", (128, 128, 128, 128, 32), "sigmoid", 1),
    ("step", (128, 128, 128, 128, 32), "step", 1),
    ("leaky_relu", (128, 128, 128, 128, 32), "leaky_relu", 1),
    ("deep_wide", (256,) * 5 + (32,), "relu", 1),
    ("tiny", (32, 16), "relu", 1),  # for tests and smoke runs only
    ("narrow", (64, 64, 64, 64, 32), "relu", 1),  # cheap proxies (experiments/proxy_fidelity)
)
ALL_GROUPS = tuple(g[0] for g in ARCH_GROUPS if g[0] not in ("tiny", "narrow"))
"""Every group but the test-only ``tiny`` and the proxy-only ``narrow``: each
activation of the nonlinearities study, deeper and wider nets."""


def arch_spec(name: str, n_in: int) -> MLPSpec:
    """The base network of architecture group ``name`` (see :data:`ARCH_GROUPS`)."""
    for g in ARCH_GROUPS:
        if g[0] == name:
            return MLPSpec(n_in=n_in, widths=g[1], activation=g[2])
    raise UserError(f"unknown architecture {name!r}; choose one of "
                    f"{', '.join(g[0] for g in ARCH_GROUPS)}")


__all__ = ["ALL_GROUPS", "ARCH_GROUPS", "arch_spec"]
