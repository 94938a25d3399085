"""Hand-designed competitive Hebbian rules and BCM: the local rules researchers cite.

Four rules in the :class:`~metaunsup.rules.base.UpdateRule` interface, applied
to every layer of the base network independently (any depth, width and
activation), all layers from one forward pass:

- ``krotov_hopfield``: D. Krotov & J. J. Hopfield, "Unsupervised learning by
  competing hidden units", PNAS 116 (2019).
- ``softhebb``: A. Journe, H. G. Rodriguez, Q. Guo & T. Moraitis, "Hebbian deep
  learning without feedback", ICLR 2023 (SoftHebb; T. Moraitis et al.,
  "SoftHebb: Bayesian inference in unsupervised Hebbian soft winner-take-all
  networks", Neuromorphic Computing and Engineering 2022).
- ``wta``: hard winner-take-all competitive learning (online k-means; D. E.
  Rumelhart & D. Zipser, "Feature discovery by competitive learning", Cognitive
  Science 1985).
- ``bcm``: E. L. Bienenstock, L. N. Cooper & P. W. Munro, "Theory for the
  development of neuron selectivity", J. Neurosci. 1982, with the sliding
  threshold ``theta = E[y^2]`` of N. Intrator & L. N. Cooper, Neural Networks
  1992.

Notation, per layer: ``W`` [n_in, n_out] (unit j is column ``w_j``), ``a`` [B,
n_in] the layer's input in the forward pass, ``x = a - mean_b(a)`` when
``center`` (else ``x = a``), ``y`` [B, n_out] the layer's output, ``n = n_out``.
Our columns are the sources' rows, so their ``dW = g^T x - diag(sum_b g u) W``
reads ``dW = x^T g - W diag(sum_b g u)`` here.

Why centre. Pixels and ReLU outputs are non-negative: without centring, the
unit best aligned with the input mean wins nearly every example (1-4 distinct
winners per layer were measured here). Batch norm already removes the mean of
``a W`` in the forward pass, so centring changes what the rule learns from,
not what the network computes.

Units that never win. Each competitive rule can add a conscience (D. DeSieno,
"Adding a conscience to competitive learning", ICNN 1988) to the score the
units compete with: ``s_j + c * rms(u) * (1 - n p_j)``, ``p_j`` the running
fraction of examples unit j wins (an exponential average with rate
``win_rate``), ``rms(u)`` the RMS of the layer's drive over the batch: a unit
that wins less than its share 1/n is favoured, one that wins more is held back.
SoftHebb's own bias (a log prior, below) and Krotov-Hopfield's anti-Hebbian
k-th unit are the sources' mechanisms; the conscience is ours to turn on.

None of the rules has meta-parameters; none touches the backward weights V or
the network's bias b (added after batch norm): the competition biases,
thresholds and win rates live in the rule state.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from metaunsup.models import MLPSpec, forward
from metaunsup.rules.base import register_rule
from metaunsup.rules.competitive_config import (BCMConfig, CompetitiveConfig,
                                                KrotovHopfieldConfig, SoftHebbConfig, WTAConfig)
from metaunsup.rules.hand import with_config
from metaunsup.rules.planes import rank_code
from metaunsup.types import Array, MetaParams, Metrics, Params, PRNGKey


class LayerState(NamedTuple):
    """Per-layer state of a competitive rule (every field [n_out]; unused ones carried).

    Attributes:
      bias: SoftHebb's competition bias (a scaled log prior).
      win_freq: running fraction of examples each unit wins (for the conscience).
      theta: BCM's sliding threshold.
    """

    bias: Array
    win_freq: Array
    theta: Array


class CompetitiveState(NamedTuple):
    """``step`` (int32 scalar, steps taken) and one :class:`LayerState` per layer."""

    step: Array
    layers: tuple[LayerState, ...]


def centred(a: Array, center: bool) -> Array:
    return a - jnp.mean(a, axis=0) if center else a


def conscience_bias(u: Array, win_freq: Array, strength: float) -> Array:
    """DeSieno's conscience [n]: ``strength * rms(u) * (1 - n p_j)`` (0 when strength is 0)."""
    if strength == 0:
        return jnp.zeros_like(win_freq)
    n = u.shape[-1]
    return strength * jnp.sqrt(jnp.mean(jnp.square(u))) * (1.0 - n * win_freq)


def update_win_freq(win_freq: Array, score: Array, rate: float) -> Array:
    """Exponential average of the fraction of the batch each unit wins (argmax of ``score``)."""
    wins = jnp.mean(jax.nn.one_hot(jnp.argmax(score, axis=1), score.shape[1],
                                   dtype=score.dtype), axis=0)
    return (1.0 - rate) * win_freq + rate * wins


def competitive_delta(x: Array, w: Array, g: Array, u: Array) -> Array:
    """``x^T g - W diag(sum_b g u)`` [n_in, n_out]: Hebbian on the code g, Oja-like decay."""
    return x.T @ g - w * jnp.sum(g * u, axis=0)


def max_normalized(d: Array) -> Array:
    """``d / max|d|`` (Krotov & Hopfield's and SoftHebb's normalisation of a step)."""
    return d / (jnp.max(jnp.abs(d)) + 1e-30)


@dataclasses.dataclass(frozen=True)
class CompetitiveRule:
    """Base of the four rules: the layer loop, the state and the step-size schedule.

    Subclasses define ``_layer(cfg, w, a, y, layer_state, lr) -> (new_w,
    new_layer_state)`` for one layer (``a`` its input, ``y`` its output).
    Metrics: ``update_rms`` (RMS of W_new - W over all layers) and
    ``winners/{l}`` (how many units won at least one example of the batch;
    for ``bcm`` the units with y above threshold somewhere).
    """

    name: ClassVar[str] = "competitive"
    net: MLPSpec
    config: CompetitiveConfig = CompetitiveConfig()

    def init_meta_params(self, key: PRNGKey) -> MetaParams:
        del key
        return {}

    def init_state(self, meta_params: MetaParams, params: Params, *,
                   key: PRNGKey) -> CompetitiveState:
        del meta_params, key
        layers = []
        for p in params:
            n = p.w.shape[1]
            layers.append(LayerState(
                bias=jnp.full((n,), self._bias_init(n), jnp.float32),
                win_freq=jnp.full((n,), 1.0 / n, jnp.float32),
                theta=jnp.full((n,), getattr(self.config, "theta_init", 0.0), jnp.float32)))
        return CompetitiveState(jnp.zeros((), jnp.int32), tuple(layers))

    def _bias_init(self, n: int) -> float:
        del n
        return 0.0

    def learning_rate(self, step: Array) -> Array:
        cfg = self.config
        if cfg.anneal_steps == 0:
            return jnp.asarray(cfg.lr, jnp.float32)
        return cfg.lr * jnp.maximum(0.0, 1.0 - step.astype(jnp.float32) / cfg.anneal_steps)

    def step(self, meta_params: MetaParams, params: Params, state: CompetitiveState, x: Array, *,
             key: PRNGKey) -> tuple[Params, CompetitiveState, Metrics]:
        del meta_params, key
        acts = forward(params, x, self.net)
        lr = self.learning_rate(state.step).astype(x.dtype)
        new_params, new_layers, metrics, sq, n_el = [], [], {}, 0.0, 0
        for l, (layer, a, y, ls) in enumerate(zip(params, acts.inputs, acts.post, state.layers)):
            new_w, new_ls, winners = self._layer(self.config, layer.w, a, y, ls, lr)
            new_params.append(layer._replace(w=new_w))
            new_layers.append(new_ls)
            metrics[f"winners/{l}"] = winners
            sq = sq + jnp.sum(jnp.square(new_w - layer.w))
            n_el += new_w.size
        metrics["update_rms"] = jnp.sqrt(sq / n_el)
        return tuple(new_params), CompetitiveState(state.step + 1, tuple(new_layers)), metrics


def _count_winners(score: Array) -> Array:
    won = jnp.max(jax.nn.one_hot(jnp.argmax(score, axis=1), score.shape[1]), axis=0)
    return jnp.sum(won).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class KrotovHopfieldRule(CompetitiveRule):
    """Per layer: ``u = x (sgn(W) |W|^(p-1))``, ``s = u + conscience``, ``g`` the rank
    code of ``s`` (+1 at each example's top unit, ``-delta`` at its k-th),
    ``dW = x^T g - W diag(sum_b g u)``, ``W <- W + lr_t dW / max|dW|``."""

    name: ClassVar[str] = "krotov_hopfield"
    config: KrotovHopfieldConfig = KrotovHopfieldConfig()

    def _layer(self, cfg, w, a, y, ls, lr):
        del y
        x = centred(a, cfg.center)
        u = x @ (jnp.sign(w) * jnp.abs(w) ** (cfg.p - 1))
        s = u + conscience_bias(u, ls.win_freq, cfg.conscience)
        g = rank_code(s, cfg.k, cfg.delta)
        new_w = w + lr * max_normalized(competitive_delta(x, w, g, u))
        return new_w, ls._replace(win_freq=update_win_freq(ls.win_freq, s, cfg.win_rate)), \
            _count_winners(s)


@dataclasses.dataclass(frozen=True)
class SoftHebbRule(CompetitiveRule):
    """Per layer: ``u = x W``, ``s = u + b + conscience``, ``y = softmax(s / tau)``
    across units; with ``anti_hebbian`` ``g = y`` at each example's winner and
    ``-y`` elsewhere (else ``g = y``); ``dW = x^T g - W diag(sum_b g u)``;
    ``W_j <- W_j + lr (|r_j - 1| + 1e-10)^lr_power dW_j / max|dW|``.
    Bias (their code): ``db = (sum_b y - B e^(b/tau)) / e^(b/tau)``,
    ``b <- b + lr tau db / max|db|``, from ``b = tau log(1/n)`` (uniform prior).
    """

    name: ClassVar[str] = "softhebb"
    config: SoftHebbConfig = SoftHebbConfig()

    def _bias_init(self, n: int) -> float:
        return self.config.tau * math.log(1.0 / n) if self.config.bias else 0.0

    def _layer(self, cfg, w, a, y_out, ls, lr):
        del y_out
        x = centred(a, cfg.center)
        u = x @ w
        s = u + ls.bias + conscience_bias(u, ls.win_freq, cfg.conscience)
        y = jax.nn.softmax(s / cfg.tau, axis=1)
        g = y
        if cfg.anti_hebbian:
            winner = jax.nn.one_hot(jnp.argmax(s, axis=1), s.shape[1], dtype=y.dtype)
            g = y * (2.0 * winner - 1.0)
        r = jnp.sqrt(jnp.sum(jnp.square(w), axis=0))
        unit_lr = lr * (jnp.abs(r - 1.0) + 1e-10) ** cfg.lr_power
        new_w = w + unit_lr * max_normalized(competitive_delta(x, w, g, u))
        bias = ls.bias
        if cfg.bias:
            prior = jnp.exp(bias / cfg.tau)
            db = (jnp.sum(y, axis=0) - x.shape[0] * prior) / prior
            bias = bias + lr * cfg.tau * max_normalized(db)
        new_ls = ls._replace(bias=bias,
                             win_freq=update_win_freq(ls.win_freq, s, cfg.win_rate))
        return new_w, new_ls, _count_winners(s)


@dataclasses.dataclass(frozen=True)
class WTARule(CompetitiveRule):
    """Per layer: nearest prototype ``s = x W - |w_j|^2 / 2 + conscience``,
    ``g = onehot(argmax s)``, ``W <- W + lr (x^T g - W diag(sum_b g)) / B``: each
    winner moves toward the mean of the examples it won (its share of the
    batch times ``lr`` of the way), so prototypes converge to cluster centres
    (of the centred inputs when ``center``)."""

    name: ClassVar[str] = "wta"
    config: WTAConfig = WTAConfig()

    def _layer(self, cfg, w, a, y, ls, lr):
        del y
        x = centred(a, cfg.center)
        u = x @ w
        s = u - 0.5 * jnp.sum(jnp.square(w), axis=0) + \
            conscience_bias(u, ls.win_freq, cfg.conscience)
        g = jax.nn.one_hot(jnp.argmax(s, axis=1), s.shape[1], dtype=x.dtype)
        new_w = w + lr * (x.T @ g - w * jnp.sum(g, axis=0)) / x.shape[0]
        return new_w, ls._replace(win_freq=update_win_freq(ls.win_freq, s, cfg.win_rate)), \
            _count_winners(s)


@dataclasses.dataclass(frozen=True)
class BCMRule(CompetitiveRule):
    """Per layer, ``y`` the layer's output: ``theta <- theta + theta_rate (mean_b y^2 -
    theta)``, then ``W <- W + lr x^T (y (y - theta)) / B``, then (``normalize``)
    every column to unit L2 norm."""

    name: ClassVar[str] = "bcm"
    config: BCMConfig = BCMConfig()

    def _layer(self, cfg, w, a, y, ls, lr):
        x = centred(a, cfg.center)
        theta = ls.theta + cfg.theta_rate * (jnp.mean(jnp.square(y), axis=0) - ls.theta)
        new_w = w + lr * x.T @ (y * (y - theta)) / x.shape[0]
        if cfg.normalize:
            new_w = new_w / jnp.sqrt(jnp.sum(jnp.square(new_w), axis=0) + 1e-12)
        active = jnp.sum(jnp.any(y > theta, axis=0)).astype(jnp.float32)
        return new_w, ls._replace(theta=theta), active


RULES: dict[str, tuple[type, type]] = {
    "krotov_hopfield": (KrotovHopfieldRule, KrotovHopfieldConfig),
    "softhebb": (SoftHebbRule, SoftHebbConfig),
    "wta": (WTARule, WTAConfig),
    "bcm": (BCMRule, BCMConfig),
}
"""Rule name -> (rule class, config class)."""


def _factory(name: str):
    rule_cls, config_cls = RULES[name]

    def make(net: MLPSpec, config=None, **overrides: Any):
        return rule_cls(net, with_config(config_cls, config, overrides, name))

    make.__doc__ = f"The {name!r} rule; ``overrides`` replace fields of its config."
    return make


for _name in RULES:
    register_rule(_name, _factory(_name))
