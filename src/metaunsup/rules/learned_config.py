"""Configuration of the learned neuron-local rule: every constant, and the named presets.

See :mod:`metaunsup.rules.learned` for the rule itself (Metz et al., ICLR 2019,
arXiv 1804.00222) and :mod:`metaunsup.rules.planes` for the update planes.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from metaunsup.errors import UserError
from metaunsup.models import ACTIVATIONS
from metaunsup.rules.planes import (
    CLASSIC_PLANES,
    COMPETITIVE_PLANES,
    HAND_PLANES,
    PLANES,
    plane_labels,
)

MIXINGS = ("batch_stats", "conv")
V_UPDATES = ("same", "none")


@dataclasses.dataclass(frozen=True)
class LearnedRuleConfig:
    """Every constant of the learned rule (static; hashable).

    Attributes:
      hidden_channels: C_h, width of the per-unit hidden state h (paper 64).
      signal_channels: C_d, channels of the backward signal d (paper 32).
      readout_rank: R, read-outs per side of a synapse (paper 4).
      unit_hidden: width of the per-unit net's first layer.
      top_hidden: width of the top error net's first layer.
      planes: which update planes to build (subset of ``planes.PLANES``;
        default ``planes.CLASSIC_PLANES``, without the competition planes).
      mixing: how the per-unit net mixes across examples/units: "batch_stats"
        (order-invariant) or "conv" (the paper's 1-D convolutions).
      conv_width: odd kernel size of the "conv" mixing.
      unit_index_encoding: feed a sin/cos code of the unit index (paper's
        option; breaks permutation equivariance).
      index_frequencies: frequencies of that code (2 * this many features).
      top_unit_context: the top net also reads the mean over top units.
      activation: nonlinearity of the rule's own networks.
      use_unit_net: False replaces h^k by the fixed features [z, a, d] (or
        [z, a] when no backward signal is needed).
      learned_readouts: False fixes the read-outs to the activations
        (c = a^{l-1}, e = a^l, R = 1), so "outer" is plain Hebbian.
      per_kind_mix: add a learned mixing offset per weight-layer kind
        (bottom = reads the inputs, middle, top).
      init_mix: (plane name, initial mixing weight) pairs; other planes start
        at 0. Names of planes not in ``planes`` are ignored. The default
        (-hebb + oja_subspace) starts the rule near Oja's subspace rule.
      init_mix_std: std of the random noise added to initial mixing weights.
      net_init_scale: rule networks' weights start N(0, scale^2 / fan_in).
      zero_bias_readout: the bias read-out starts at zero (no bias update until
        meta-training finds one) instead of random, so that the untrained rule
        does not depend on the initialisation key (a random bias read-out
        moved every bias by a random direction of RMS lr per step and made the
        untrained rule's accuracy range over 20 points across keys).
      delta_init_scale: the same for W_delta (small: d passes down ~ unchanged).
      lr: step size of the bounded step (released code: 1e-4).
      learn_lr: make log(lr) a meta-parameter, clipped to [lr_min, lr_max]
        (no gradient flows while it sits outside that range).
      per_kind_lr: with ``learn_lr``, also learn a log step-size offset per
        weight-layer kind (bottom, middle, top), zero at initialisation.
      lr_min: lower clip of a learned lr.
      lr_max: upper clip of a learned lr.
      v_update: "same" (V gets W's update, as released) or "none".
      normalize_columns: after each step rescale every column of W (and of V
        when it is updated) to its RMS at ``init_state``.
      scale_by_fan_in: dW has RMS 1/sqrt(n_in) (the init scale) instead of 1,
        making the relative step size width-invariant.
      eps: floor inside every RMS normalisation's square root.
      var_eps: floor added to batch variances (standardisation, batch std).
        Features are O(1); near-constant ones would make ``sqrt(var + var_eps)``
        sharply curved (curvature ~ var_eps^-3/2) and meta-gradients erratic,
        so the floor is not tiny.
      comp_tau: initial softmax temperature of the soft_* competition planes;
        ``meta_params["mix"]["log_tau"]`` learns it (clipped to
        [comp_tau_min, comp_tau_max]). SoftHebb (Journe et al., ICLR 2023)
        uses a temperature of order 1 on unit-norm weights.
      comp_tau_min: lower clip of the learned temperature.
      comp_tau_max: upper clip of the learned temperature.
      comp_k: the rank whose unit gets the anti-Hebbian ``-comp_delta`` in
        the rank_* planes (Krotov & Hopfield, PNAS 2019: k = 2..7).
      comp_delta: strength of that anti-Hebbian term (Krotov & Hopfield: 0.4).
    """

    hidden_channels: int = 16
    signal_channels: int = 8
    readout_rank: int = 4
    unit_hidden: int = 16
    top_hidden: int = 16
    planes: tuple[str, ...] = CLASSIC_PLANES
    mixing: str = "batch_stats"
    conv_width: int = 3
    unit_index_encoding: bool = False
    index_frequencies: int = 2
    top_unit_context: bool = True
    activation: str = "leaky_relu"
    use_unit_net: bool = True
    learned_readouts: bool = True
    per_kind_mix: bool = True
    init_mix: tuple[tuple[str, float], ...] = (("hebb", -1.0), ("oja_subspace", 1.0))
    init_mix_std: float = 0.01
    net_init_scale: float = 1.0
    zero_bias_readout: bool = False
    delta_init_scale: float = 0.1
    lr: float = 1e-4
    learn_lr: bool = False
    per_kind_lr: bool = False
    lr_min: float = 1e-6
    lr_max: float = 0.1
    v_update: str = "same"
    normalize_columns: bool = False
    scale_by_fan_in: bool = False
    eps: float = 1e-8
    var_eps: float = 1e-2
    comp_tau: float = 1.0
    comp_tau_min: float = 1e-3
    comp_tau_max: float = 1e3
    comp_k: int = 2
    comp_delta: float = 0.4

    def __post_init__(self):
        for f in ("hidden_channels", "signal_channels", "readout_rank", "unit_hidden",
                  "top_hidden", "conv_width", "index_frequencies", "comp_k"):
            value = getattr(self, f)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"learned rule: {f} must be a positive integer, got {value!r}")
        planes = (self.planes,) if isinstance(self.planes, str) else tuple(self.planes)
        bad = [p for p in planes if p not in PLANES]
        if bad or not planes or len(set(planes)) != len(planes):
            raise UserError(f"learned rule: planes must be distinct names from {PLANES}, "
                            f"got {planes}")
        object.__setattr__(self, "planes", planes)
        init_mix = self.init_mix.items() if isinstance(self.init_mix, dict) else self.init_mix
        init_mix = tuple((str(k), float(v)) for k, v in init_mix)
        if any(k not in PLANES for k, _ in init_mix):
            raise UserError(f"learned rule: init_mix names must be planes from {PLANES}, "
                            f"got {[k for k, _ in init_mix]}")
        object.__setattr__(self, "init_mix", init_mix)
        if self.mixing not in MIXINGS:
            raise UserError(f"learned rule: mixing must be one of {MIXINGS}, got {self.mixing!r}")
        if self.conv_width % 2 != 1:
            raise UserError(f"learned rule: conv_width must be odd, got {self.conv_width}")
        if self.v_update not in V_UPDATES:
            raise UserError(f"learned rule: v_update must be one of {V_UPDATES}, "
                            f"got {self.v_update!r}")
        if self.activation not in ACTIVATIONS:
            raise UserError(f"learned rule: unknown activation {self.activation!r}; choose one "
                            f"of {', '.join(ACTIVATIONS)}")
        if self.per_kind_lr and not self.learn_lr:
            raise UserError("learned rule: per_kind_lr needs learn_lr")
        if not 0.0 < self.lr_min <= self.lr <= self.lr_max < 1.0:
            raise UserError(f"learned rule: need 0 < lr_min <= lr <= lr_max < 1, got lr_min="
                            f"{self.lr_min}, lr={self.lr}, lr_max={self.lr_max}")
        for f in ("eps", "var_eps"):
            if not getattr(self, f) > 0:
                raise UserError(f"learned rule: {f} must be > 0, got {getattr(self, f)}")
        for f in ("init_mix_std", "net_init_scale", "delta_init_scale", "comp_delta"):
            if not getattr(self, f) >= 0:
                raise UserError(f"learned rule: {f} must be >= 0, got {getattr(self, f)}")
        if not 0.0 < self.comp_tau_min <= self.comp_tau <= self.comp_tau_max:
            raise UserError(f"learned rule: need 0 < comp_tau_min <= comp_tau <= comp_tau_max, "
                            f"got {self.comp_tau_min}, {self.comp_tau}, {self.comp_tau_max}")

    @property
    def uses_signals(self) -> bool:
        """Whether anything reads the backward signals d (top net, W_delta, V)."""
        return self.use_unit_net or self.learned_readouts

    @property
    def rank(self) -> int:
        """Read-outs per side actually used (1 when they are the activations)."""
        return self.readout_rank if self.learned_readouts else 1

    @property
    def state_channels(self) -> int:
        """Width of h: C_h, or the fixed features' width without the unit net."""
        if self.use_unit_net:
            return self.hidden_channels
        return 2 + (self.signal_channels if self.uses_signals else 0)

    @property
    def plane_labels(self) -> tuple[str, ...]:
        return plane_labels(self.planes, self.rank)


SMALL = LearnedRuleConfig()
PAPER = LearnedRuleConfig(hidden_channels=64, signal_channels=32, readout_rank=4,
                          unit_hidden=64, top_hidden=64)
CONFIGS: dict[str, LearnedRuleConfig] = {
    "small": SMALL,
    # the paper's widths; mixing="conv" gives its batch/unit convolutions.
    "paper": PAPER,
    # ablation: only the plane mixing weights (and bias read-out) are learned.
    "mix_only": dataclasses.replace(SMALL, use_unit_net=False, learned_readouts=False),
    # ablation: learned mix of the hand-designed terms only.
    "hand_only": dataclasses.replace(SMALL, use_unit_net=False, learned_readouts=False,
                                     planes=HAND_PLANES),
    # "small" plus the planes of a per-example competition across a layer's units.
    "small_competitive": dataclasses.replace(SMALL, planes=CLASSIC_PLANES + COMPETITIVE_PLANES),
    # The compact family for ES (issue 11): a learned mix of the hand-designed and
    # competition planes over the activations (gram_post equals oja_subspace when the
    # read-outs are the activations, and gram_pre costs the most; both left out),
    # per-layer-kind offsets, a learned step size and temperature, and a bias
    # read-out; 57 meta-parameters. Its untrained rule is deterministic: subspace
    # Oja (-hebb + oja_subspace) with column-normalised weights, no bias update.
    "compact": dataclasses.replace(
        SMALL, use_unit_net=False, learned_readouts=False,
        planes=tuple(p for p in CLASSIC_PLANES if p not in ("gram_post", "gram_pre"))
        + COMPETITIVE_PLANES, init_mix_std=0.0, zero_bias_readout=True,
        lr=3e-3, learn_lr=True, lr_max=0.05, normalize_columns=True),
}
# The term pool (issue 19): compact plus a step size per weight-layer kind (60
# meta-parameters). Its untrained rule is compact's exactly (the offsets start at 0);
# rules.residual searches around it.
CONFIGS["pool"] = dataclasses.replace(CONFIGS["compact"], per_kind_lr=True)


def rule_config(name_or_config: str | LearnedRuleConfig = "small",
                **overrides: Any) -> LearnedRuleConfig:
    """A named (:data:`CONFIGS`) or given config with fields overridden."""
    if isinstance(name_or_config, LearnedRuleConfig):
        config = name_or_config
    elif name_or_config in CONFIGS:
        config = CONFIGS[name_or_config]
    else:
        raise UserError(f"unknown learned-rule config {name_or_config!r}; choose one of "
                        f"{', '.join(CONFIGS)} or pass a LearnedRuleConfig")
    fields = {f.name for f in dataclasses.fields(LearnedRuleConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserError(f"unknown learned-rule option(s) {unknown}; valid: {sorted(fields)}")
    return dataclasses.replace(config, **overrides) if overrides else config


__all__ = ["CONFIGS", "LearnedRuleConfig", "MIXINGS", "PAPER", "SMALL", "V_UPDATES", "rule_config"]
