"""The small networks inside the learned rule: top error net and per-unit net.

Metz et al. 2019 (arXiv 1804.00222), section 3 and appendix B. Both networks
are applied to every unit (and example) with the same weights, so they work for
any width and depth.

Layout: channels first, [C, B, n] (channels, batch, units). A per-unit linear
layer is then one [C_out, C_in] x [C_in, B * n] matrix product with a long
inner dimension, about 3x faster on CPU than the [B, n, C] x [C, C_out] form
whose contraction dimension is tiny; reductions over the batch are over axis 1.

Each network's first layer reads two kinds of input: per-example features
[E, B, n] (activations, incoming signal) and per-unit features [U, n] (weight
statistics, bias, layer kind, optional unit-index code). Broadcasting the
latter over B, concatenating and multiplying by one [E + U, H] matrix equals
``W_ex^T ex + (W_unit^T unit)[:, None, :]``; we compute the second form, which
costs B times less for the per-unit part. The same holds for batch statistics
fed to a second layer.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from metaunsup.models import get_activation
from metaunsup.rules.planes import unit_rms
from metaunsup.types import Array, PRNGKey

LEVEL_KINDS = ("input", "hidden", "top")
"""Kinds of unit levels (level 0 = the pixels, level L = the representation)."""

WEIGHT_STATS = 4
"""Statistics per weight vector: mean |w|, RMS, mean, std."""

TOP_EX_FEATURES = 2  # z, a
TOP_UNIT_FEATURES = 4  # batch mean and std of z and of a


def level_kind(level: int, depth: int) -> int:
    """Index into :data:`LEVEL_KINDS` of unit level ``level`` in a ``depth``-layer net."""
    if level == 0:
        return 0
    return 2 if level == depth else 1


def dense_init(key: PRNGKey, fan_in: int, shape: tuple[int, ...], scale: float) -> Array:
    """Draws N(0, scale^2 / fan_in) weights in float32."""
    return (scale / math.sqrt(fan_in)) * jax.random.normal(key, shape, jnp.float32)


def channel_dense(w: Array, x: Array) -> Array:
    """Applies ``w`` [C_in, C_out] to the channel axis of ``x`` [C_in, ...] -> [C_out, ...]."""
    return jnp.tensordot(w.astype(x.dtype), x, axes=(0, 0))


def weight_stats(w: Array, axis: int, eps: float) -> Array:
    """Per-unit statistics of a weight matrix, scaled to be width-invariant.

    Each entry of ``w`` [n_in, n_out] is O(1 / sqrt(n_in)) at initialisation,
    so every statistic is multiplied by ``sqrt(n_in)`` (the matrix's fan-in).

    Args:
      w: [n_in, n_out] weights.
      axis: 0 for the incoming weights of each post-synaptic unit (columns),
        1 for the outgoing weights of each pre-synaptic unit (rows).
      eps: floor inside the square roots.

    Returns:
      [4, n_out] (axis=0) or [4, n_in] (axis=1): mean |w|, RMS, mean, std.
    """
    scale = math.sqrt(w.shape[0])
    mean = jnp.mean(w, axis=axis)
    mean_sq = jnp.mean(jnp.square(w), axis=axis)
    stats = [jnp.mean(jnp.abs(w), axis=axis), jnp.sqrt(mean_sq + eps), mean,
             jnp.sqrt(jnp.maximum(mean_sq - jnp.square(mean), 0.0) + eps)]
    return scale * jnp.stack(stats)


def index_encoding(n: int, frequencies: int, dtype) -> Array:
    """Sin/cos code of unit positions j / n: [2 * frequencies, n].

    Breaks the permutation symmetry of the units (the paper's option); off by default.
    """
    pos = jnp.arange(n, dtype=dtype)[None, :] / n
    freq = jnp.arange(1, frequencies + 1, dtype=dtype)[:, None]
    angle = 2.0 * math.pi * freq * pos
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)])


def batch_mean_std(u: Array, eps: float) -> tuple[Array, Array]:
    """Mean and std over the batch axis: [C, B, n] -> two [C, n] arrays."""
    mean = jnp.mean(u, axis=1)
    var = jnp.mean(jnp.square(u - mean[:, None, :]), axis=1)
    return mean, jnp.sqrt(var + eps)


def conv_same(u: Array, kernel: Array, axis: int) -> Array:
    """Depthwise 1-D convolution with zero padding along ``axis`` of u [C, B, n].

    ``out[c, .., t, ..] = sum_s kernel[s, c] * u[c, .., t + s - K // 2, ..]``,
    zero outside the array; ``kernel`` is [K, C] with K odd. Depends on the
    order of the entries along ``axis``.
    """
    k = kernel.shape[0]
    half = k // 2
    length = u.shape[axis]
    pad = [(0, 0)] * u.ndim
    pad[axis] = (half, half)
    padded = jnp.pad(u, pad)
    out = jnp.zeros_like(u)
    for s in range(k):
        tap = kernel[s].astype(u.dtype)[:, None, None]
        out = out + tap * jax.lax.slice_in_dim(padded, s, s + length, axis=axis)
    return out


# ----------------------------------------------------------------------------
# Top error network: top-layer activations -> d^L [C_d, B, n_L]
# ----------------------------------------------------------------------------

def init_top_net(key: PRNGKey, *, hidden: int, channels: int, unit_context: bool,
                 scale: float) -> dict[str, Array]:
    """Meta-parameters of the top error network."""
    k = jax.random.split(key, 5)
    fan0 = TOP_EX_FEATURES + TOP_UNIT_FEATURES
    fan1 = (4 if unit_context else 3) * hidden
    p = {
        "w_ex": dense_init(k[0], fan0, (TOP_EX_FEATURES, hidden), scale),
        "w_unit": dense_init(k[1], fan0, (TOP_UNIT_FEATURES, hidden), scale),
        "b0": jnp.zeros((hidden,), jnp.float32),
        "w_self": dense_init(k[2], fan1, (hidden, channels), scale),
        "w_batch": dense_init(k[3], fan1, (2 * hidden, channels), scale),
        "b1": jnp.zeros((channels,), jnp.float32),
    }
    if unit_context:
        p["w_units"] = dense_init(k[4], fan1, (hidden, channels), scale)
    return p


def top_net(p: dict[str, Array], z: Array, a: Array, *, activation: str, eps: float,
            var_eps: float) -> Array:
    """The top-level error signal d^L, RMS-normalised per unit.

    Per top unit j and example b the first layer reads (z, a) and the unit's
    batch mean/std of z and a; the second layer also reads the batch mean/std
    of the first layer's features and (when ``p`` has ``"w_units"``) their
    mean over all top units of the same example, which lets each unit's signal
    depend on the whole representation while staying equivariant to unit
    permutations and invariant to the order of examples. Works for any number
    of top units.

    Args:
      p: meta-parameters from :func:`init_top_net`.
      z: [B, n_L] top pre-activations.
      a: [B, n_L] top post-activations.
      activation: nonlinearity of the net (a name in ``models.ACTIVATIONS``).
      eps: floor inside the RMS of the output.
      var_eps: floor added to batch variances.

    Returns:
      d: [C_d, B, n_L] with unit RMS per unit (over batch and channels).
    """
    act = get_activation(activation)
    ex = jnp.stack([z, a])  # [2, B, n]
    mz, sz = batch_mean_std(z[None], var_eps)
    ma, sa = batch_mean_std(a[None], var_eps)
    unit = jnp.concatenate([mz, sz, ma, sa])  # [4, n]
    b0 = p["b0"].astype(z.dtype)[:, None]
    u = act(channel_dense(p["w_ex"], ex) + (channel_dense(p["w_unit"], unit) + b0)[:, None, :])
    m_u, s_u = batch_mean_std(u, var_eps)  # [H, n] each
    ctx = channel_dense(p["w_batch"], jnp.concatenate([m_u, s_u]))  # [C_d, n]
    d = channel_dense(p["w_self"], u) + (ctx + p["b1"].astype(z.dtype)[:, None])[:, None, :]
    if "w_units" in p:
        d = d + channel_dense(p["w_units"], jnp.mean(u, axis=2, keepdims=True))  # [C_d, B, 1]
    return unit_rms(d, axis=(0, 1), eps=eps)


# ----------------------------------------------------------------------------
# Per-unit network: (z, a, d, weight stats, bias, kind) -> h [C_h, B, n]
# ----------------------------------------------------------------------------

def unit_feature_count(index_frequencies: int) -> int:
    """Width U of the per-unit features: in/out weight stats, bias, kind, index code."""
    return 2 * WEIGHT_STATS + 1 + len(LEVEL_KINDS) + 2 * index_frequencies


def init_unit_net(key: PRNGKey, *, ex_features: int, unit_features: int, hidden: int,
                  channels: int, mixing: str, conv_width: int, scale: float) -> dict[str, Array]:
    """Meta-parameters of the per-unit network (shared by all units and layers)."""
    k = jax.random.split(key, 6)
    fan0 = ex_features + unit_features
    p = {
        "w_ex": dense_init(k[0], fan0, (ex_features, hidden), scale),
        "w_unit": dense_init(k[1], fan0, (unit_features, hidden), scale),
        "b0": jnp.zeros((hidden,), jnp.float32),
        "w_self": dense_init(k[2], 3 * hidden, (hidden, channels), scale),
        "w_ctx": dense_init(k[3], 3 * hidden, (2 * hidden, channels), scale),
        "b1": jnp.zeros((channels,), jnp.float32),
    }
    if mixing == "conv":
        p["k_batch"] = dense_init(k[4], conv_width, (conv_width, hidden), scale)
        p["k_unit"] = dense_init(k[5], conv_width, (conv_width, hidden), scale)
    return p


def unit_net(p: dict[str, Array], ex: Array, unit: Array, *, activation: str, mixing: str,
             var_eps: float) -> Array:
    """Hidden state h of every unit and example of one level.

    ``u = act(W_ex^T ex + W_unit^T unit + b0)``, then
    ``h = act(W_self^T u + W_ctx^T ctx(u) + b1)`` where ``ctx(u)`` mixes
    information across examples and units:

    - ``"batch_stats"``: the per-unit batch mean and std of ``u`` ([2H, n]);
      invariant to the order of examples, equivariant to unit permutations.
    - ``"conv"``: depthwise convolutions of ``u`` along the batch axis and
      along the unit axis ([2H, B, n]), the paper's variant; the result
      depends on the order of examples and of units.

    Args:
      p: meta-parameters from :func:`init_unit_net`.
      ex: [E, B, n] per-example features.
      unit: [U, n] per-unit features.
      activation: nonlinearity name.
      mixing: "batch_stats" or "conv".
      var_eps: floor added to batch variances.

    Returns:
      h: [C_h, B, n].
    """
    act = get_activation(activation)
    dtype = ex.dtype
    b0 = p["b0"].astype(dtype)[:, None]
    u = act(channel_dense(p["w_ex"], ex) + (channel_dense(p["w_unit"], unit) + b0)[:, None, :])
    b1 = p["b1"].astype(dtype)[:, None]
    if mixing == "batch_stats":
        m_u, s_u = batch_mean_std(u, var_eps)
        ctx = channel_dense(p["w_ctx"], jnp.concatenate([m_u, s_u]))  # [C_h, n]
        pre = channel_dense(p["w_self"], u) + (ctx + b1)[:, None, :]
    else:
        mixed = jnp.concatenate([conv_same(u, p["k_batch"], axis=1),
                                 conv_same(u, p["k_unit"], axis=2)])  # [2H, B, n]
        pre = channel_dense(p["w_self"], u) + channel_dense(p["w_ctx"], mixed) + b1[:, :, None]
    return act(pre)


def pass_down(delta: Array, v: Array, eps: float) -> Array:
    """Sends a signal through the backward weights and normalises it per unit.

    ``d[c, b, i] = sum_j delta[c, b, j] V[i, j]``, i.e. ``delta @ V^T`` per
    channel (V, not W: no weight transport), then divided by the unit's RMS
    over batch and channels.

    Args:
      delta: [C, B, n_out] signal at a layer's outputs.
      v: [n_in, n_out] backward weights.
      eps: RMS floor.

    Returns:
      [C, B, n_in].
    """
    d = jnp.einsum("cbj,ij->cbi", delta, v)
    return unit_rms(d, axis=(0, 1), eps=eps)
