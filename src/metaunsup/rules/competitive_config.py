"""Configurations of the competitive rules and BCM (:mod:`metaunsup.rules.competitive`).

Every constant of a rule is a field here, documented with its meaning and the
value the source uses (or the one tuned on the validation split).
"""
from __future__ import annotations

import dataclasses

from metaunsup.errors import UserError


@dataclasses.dataclass(frozen=True)
class CompetitiveConfig:
    """Options shared by the competitive rules.

    Attributes:
      lr: step size (its meaning per rule is in the rule's docstring).
      anneal_steps: when > 0, the step size decays linearly to 0 over this
        many steps, ``lr_t = lr * max(0, 1 - t / anneal_steps)`` (Krotov &
        Hopfield's schedule); 0 keeps it constant.
      center: subtract each layer's minibatch input mean first (module doc).
      conscience: strength c of the conscience bias (module doc); 0 = off.
      win_rate: rate of the running average of each unit's win fraction.
    """

    lr: float = 0.02
    anneal_steps: int = 0
    center: bool = True
    conscience: float = 0.0
    win_rate: float = 0.01

    def __post_init__(self):
        if not self.lr > 0:
            raise UserError(f"{type(self).__name__}: lr must be > 0, got {self.lr}")
        if not isinstance(self.anneal_steps, int) or self.anneal_steps < 0:
            raise UserError(f"anneal_steps must be an integer >= 0, got {self.anneal_steps!r}")
        if not self.conscience >= 0:
            raise UserError(f"conscience must be >= 0, got {self.conscience}")
        if not 0 < self.win_rate <= 1:
            raise UserError(f"win_rate must be in (0, 1], got {self.win_rate}")


@dataclasses.dataclass(frozen=True)
class KrotovHopfieldConfig(CompetitiveConfig):
    """Krotov & Hopfield (PNAS 2019). Their MNIST settings: p = 3, k = 7,
    Delta = 0.4, lr 0.02 decaying linearly to 0 over training; p = 2..3,
    k = 2..7 elsewhere. Our defaults (p = 2, k = 2, lr = 0.001 annealed over
    1000 steps, conscience 1) scored best on the validation split
    (experiments/README.md); larger steps collapse the paper network.

    Attributes:
      p: the Lebesgue exponent; the drive is ``u = x (sgn(W) |W|^(p-1))`` and
        each unit's p-norm ``sum_i |W_ij|^p`` converges to 1.
      k: the rank whose unit gets the anti-Hebbian ``-delta`` (k >= 2).
      delta: strength of that anti-Hebbian term.
    """

    lr: float = 0.001
    anneal_steps: int = 1000
    conscience: float = 1.0
    p: float = 2.0
    k: int = 2
    delta: float = 0.4

    def __post_init__(self):
        super().__post_init__()
        if not self.p >= 1:
            raise UserError(f"krotov_hopfield: p must be >= 1, got {self.p}")
        if not isinstance(self.k, int) or self.k < 2:
            raise UserError(f"krotov_hopfield: k must be an integer >= 2, got {self.k!r}")
        if not self.delta >= 0:
            raise UserError(f"krotov_hopfield: delta must be >= 0, got {self.delta}")


@dataclasses.dataclass(frozen=True)
class SoftHebbConfig(CompetitiveConfig):
    """SoftHebb (Journe et al., ICLR 2023; their code's defaults in brackets).
    Our defaults (tau = 0.03, lr = 0.01) scored best on the validation split.

    Attributes:
      tau: softmax temperature (the code's ``1 / t_invert``; t_invert = 12,
        i.e. tau = 0.083).
      anti_hebbian: every unit but the winner learns with ``-y`` (the
        paper's anti-Hebbian plasticity; their "mode 0").
      lr_power: each unit's step is ``lr * (|r_j - 1| + 1e-10)^lr_power`` with
        ``r_j = |w_j|`` (0.5), so the step vanishes as its norm reaches 1.
      bias: learn the log-prior bias ``b_j`` added to the drive before the
        softmax, toward ``exp(b_j / tau) = mean_b y_j`` (True).
    """

    lr: float = 0.01
    tau: float = 0.03
    anti_hebbian: bool = True
    lr_power: float = 0.5
    bias: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.tau > 0:
            raise UserError(f"softhebb: tau must be > 0, got {self.tau}")
        if not self.lr_power >= 0:
            raise UserError(f"softhebb: lr_power must be >= 0, got {self.lr_power}")


@dataclasses.dataclass(frozen=True)
class WTAConfig(CompetitiveConfig):
    """Hard winner-take-all (online k-means). ``lr`` is the fraction of the way
    each winner moves toward the mean of the examples it won, times its share
    of the batch (0.1 scored best on the validation split)."""

    lr: float = 0.1


@dataclasses.dataclass(frozen=True)
class BCMConfig(CompetitiveConfig):
    """BCM with the sliding threshold of Intrator & Cooper (1992).

    Without lateral inhibition every unit of a layer drifts toward the same few
    selective directions: on the validation split any lr >= 1e-4 scored below
    the untrained network, so the default (1e-5) leaves it nearly as drawn.

    Attributes:
      theta_rate: rate of the running average ``theta_j <- theta_j + rate
        (mean_b y_j^2 - theta_j)`` (a time constant of 1 / rate steps).
      theta_init: the threshold before any data (0.5 = E[relu(z)^2] for a
        standard normal z, what batch norm makes a ReLU unit's input).
      normalize: rescale every column of W to unit L2 norm after each step.
        Batch norm makes the forward pass invariant to column scales, so this
        only keeps the effective step size from shrinking as W grows.
    """

    lr: float = 1e-5
    theta_rate: float = 0.1
    theta_init: float = 0.5
    normalize: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.theta_rate <= 1:
            raise UserError(f"bcm: theta_rate must be in (0, 1], got {self.theta_rate}")


__all__ = ["BCMConfig", "CompetitiveConfig", "KrotovHopfieldConfig", "SoftHebbConfig",
           "WTAConfig"]
