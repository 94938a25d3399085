"""The base network trained by update rules (Metz et al. 2019, section 3).

A fully connected MLP; each layer computes ``z = BN(x @ W) + b`` and then a
nonlinearity. Batch norm uses the batch's statistics (or statistics passed in),
with no learned scale. Every layer also owns backward weights ``V`` of the same
shape as ``W``, read only by update rules.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from metaunsup.errors import UserError
from metaunsup.models.activations import ACTIVATIONS, get_activation
from metaunsup.types import Array, LayerParams, Params, PRNGKey

PAPER_WIDTHS = (128, 128, 128, 128, 32)


@dataclasses.dataclass(frozen=True)
class MLPSpec:
    """Static description of a base network.

    Attributes:
      n_in: input dimension.
      widths: output width of each layer, bottom to top; the last is the
        representation (paper: 4 x 128 hidden + 32 top).
      activation: name in :data:`metaunsup.models.activations.ACTIVATIONS`.
      bn_eps: added to the batch variance in batch norm.
      init_scale: forward/backward weights are drawn N(0, init_scale^2 / n_in).
    """

    n_in: int
    widths: tuple[int, ...] = PAPER_WIDTHS
    activation: str = "relu"
    bn_eps: float = 1e-4
    init_scale: float = 1.0

    def __post_init__(self):
        if not isinstance(self.n_in, int) or self.n_in <= 0:
            raise UserError(f"n_in must be a positive integer, got {self.n_in!r}")
        widths = tuple(self.widths)
        if not widths:
            raise UserError("widths must list at least one layer")
        for w in widths:
            if not isinstance(w, int) or isinstance(w, bool) or w <= 0:
                raise UserError(f"widths must be positive integers, got {list(widths)}")
        object.__setattr__(self, "widths", widths)
        if self.activation not in ACTIVATIONS:
            get_activation(self.activation)  # raises the one-line error
        if not self.bn_eps > 0:
            raise UserError(f"bn_eps must be > 0, got {self.bn_eps}")

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        dims = (self.n_in,) + self.widths
        return tuple((dims[i], dims[i + 1]) for i in range(len(self.widths)))


def parse_widths(text: str) -> tuple[int, ...]:
    """Parses "128,128,32" into a tuple, with a one-line error on bad input."""
    parts = str(text).split(",")
    if any(not t.strip() for t in parts):  # "128,,32" is a typo, not [128, 32]
        raise UserError(f"widths must be comma-separated integers with none empty, got {text!r}")
    try:
        widths = tuple(int(t) for t in parts)
    except ValueError:
        raise UserError(f"widths must be comma-separated integers, got {text!r}") from None
    if not widths or any(w <= 0 for w in widths):
        raise UserError(f"widths must be positive integers, got {text!r}")
    return widths


class Activations(NamedTuple):
    """Everything a forward pass computes, per layer (bottom to top).

    Attributes:
      inputs: tuple of [B, n_in_l] inputs to each layer (x, then post[l-1]).
      pre: tuple of [B, n_out_l] pre-activations ``BN(x @ W) + b``.
      post: tuple of [B, n_out_l] post-activations ``act(pre)``.
    """

    inputs: tuple[Array, ...]
    pre: tuple[Array, ...]
    post: tuple[Array, ...]


class BNStats(NamedTuple):
    """Per-layer batch-norm statistics of ``x @ W``: tuples of [n_out_l] arrays."""

    mean: tuple[Array, ...]
    var: tuple[Array, ...]


def init_params(key: PRNGKey, spec: MLPSpec) -> Params:
    """Draws W and V ~ N(0, init_scale^2 / n_in) independently; b = 0."""
    keys = jax.random.split(key, 2 * spec.depth)
    layers = []
    for l, (n_in, n_out) in enumerate(spec.layer_shapes):
        std = spec.init_scale / jnp.sqrt(n_in)
        w = std * jax.random.normal(keys[2 * l], (n_in, n_out), jnp.float32)
        v = std * jax.random.normal(keys[2 * l + 1], (n_in, n_out), jnp.float32)
        layers.append(LayerParams(w=w, b=jnp.zeros((n_out,), jnp.float32), v=v))
    return tuple(layers)


def batch_norm(h: Array, eps: float, mean: Array | None = None, var: Array | None = None) -> Array:
    """Normalises each column of ``h`` [B, n] to zero mean, unit variance."""
    if mean is None:
        mean = jnp.mean(h, axis=0)
    if var is None:
        var = jnp.mean(jnp.square(h - mean), axis=0)
    return (h - mean) * jax.lax.rsqrt(var + eps)


def _run(params: Params, x: Array, spec: MLPSpec, stats: BNStats | None):
    act = get_activation(spec.activation)
    inputs, pre, post, means, variances = [], [], [], [], []
    h_in = x
    for l, layer in enumerate(params):
        h = h_in @ layer.w
        if stats is None:
            m = jnp.mean(h, axis=0)
            v = jnp.mean(jnp.square(h - m), axis=0)
        else:
            m, v = stats.mean[l], stats.var[l]
        z = batch_norm(h, spec.bn_eps, m, v) + layer.b
        a = act(z)
        inputs.append(h_in)
        pre.append(z)
        post.append(a)
        means.append(m)
        variances.append(v)
        h_in = a
    acts = Activations(tuple(inputs), tuple(pre), tuple(post))
    return acts, BNStats(tuple(means), tuple(variances))


def forward(params: Params, x: Array, spec: MLPSpec, stats: BNStats | None = None) -> Activations:
    """Runs the network on a batch.

    Args:
      params: per-layer parameters.
      x: [B, n_in] inputs.
      spec: the network's description (activation, bn_eps).
      stats: optional fixed batch-norm statistics (see :func:`bn_stats`); by
        default each layer normalises with the statistics of this batch.

    Returns:
      :class:`Activations` with every layer's inputs, pre- and post-activations.
    """
    return _run(params, x, spec, stats)[0]


def bn_stats(params: Params, x: Array, spec: MLPSpec) -> BNStats:
    """Batch-norm statistics of every layer on a reference batch ``x`` [B, n_in].

    Feature extraction for probes uses statistics of the unlabeled data, so a
    test example's features do not depend on what else is in its batch.
    """
    return _run(params, x, spec, None)[1]


def features(params: Params, x: Array, spec: MLPSpec, stats: BNStats | None = None) -> Array:
    """The representation: post-activations of the top layer, [B, widths[-1]]."""
    return forward(params, x, spec, stats).post[-1]
