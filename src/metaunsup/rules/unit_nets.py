"""The small networks inside the learned rule: top error net and per-unit net.

Metz et al. 2019 (arXiv 1804.00222), section 3 and appendix B. Both networks
are applied to every unit (and example) with the same weights, so they work for
any width and depth. Arrays are laid out [B, n, C]: batch, units, channels.

Each network's first layer reads two kinds of input: per-example features
[B, n, E] (activations, incoming signal) and per-unit features [n, U] (weight
statistics, bias, layer kind, optional unit-index code). Concatenating them
after broadcasting and multiplying by one [E + U, H] matrix equals
``ex @ W_ex + (unit @ W_unit)[None]``; we compute the second form, which costs
B times less for the per-unit part. The same holds for batch statistics fed
to a second layer.
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
      [n_out, 4] (axis=0) or [n_in, 4] (axis=1): mean |w|, RMS, mean, std.
    """
    scale = math.sqrt(w.shape[0])
    mean = jnp.mean(w, axis=axis)
    mean_sq = jnp.mean(jnp.square(w), axis=axis)
    stats = [jnp.mean(jnp.abs(w), axis=axis), jnp.sqrt(mean_sq + eps), mean,
             jnp.sqrt(jnp.maximum(mean_sq - jnp.square(mean), 0.0) + eps)]
    return scale * jnp.stack(stats, axis=-1)


def index_encoding(n: int, frequencies: int, dtype) -> Array:
    """Sin/cos code of unit positions j / n: [n, 2 * frequencies].

    Breaks the permutation symmetry of the units (the paper's option); off by default.
    """
    pos = jnp.arange(n, dtype=dtype)[:, None] / n
    freq = jnp.arange(1, frequencies + 1, dtype=dtype)[None, :]
    angle = 2.0 * math.pi * pos * freq
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)


def batch_mean_std(u: Array, eps: float) -> tuple[Array, Array]:
    """Mean and std over the batch axis: [B, n, C] -> two [n, C] arrays."""
    mean = jnp.mean(u, axis=0)
    var = jnp.mean(jnp.square(u - mean), axis=0)
    return mean, jnp.sqrt(var + eps)


def conv_same(u: Array, kernel: Array, axis: int) -> Array:
    """Depthwise 1-D convolution with zero padding along ``axis`` of u [B, n, C].

    ``out[.., t, .., c] = sum_s kernel[s, c] * u[.., t + s - K // 2, .., c]``,
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
        out = out + kernel[s] * jax.lax.slice_in_dim(padded, s, s + length, axis=axis)
    return out


# ----------------------------------------------------------------------------
# Top error network: top-layer activations -> d^L [B, n_L, C_d]
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
    of the first layer's features and (``unit_context``) their mean over all
    top units of the same example, which lets each unit's signal depend on the
    whole representation while staying equivariant to unit permutations and
    invariant to the order of examples. Works for any number of top units.
    The unit context is used iff ``p`` has a ``"w_units"`` entry.

    Args:
      p: meta-parameters from :func:`init_top_net`.
      z: [B, n_L] top pre-activations.
      a: [B, n_L] top post-activations.
      activation: nonlinearity of the net (a name in ``models.ACTIVATIONS``).
      eps: floor inside the RMS of the output.
      var_eps: floor added to batch variances.

    Returns:
      d: [B, n_L, C_d] with unit RMS per unit (over batch and channels).
    """
    act = get_activation(activation)
    ex = jnp.stack([z, a], axis=-1)  # [B, n, 2]
    mz, sz = batch_mean_std(z[..., None], var_eps)
    ma, sa = batch_mean_std(a[..., None], var_eps)
    unit = jnp.concatenate([mz, sz, ma, sa], axis=-1)  # [n, 4]
    u = act(ex @ p["w_ex"] + (unit @ p["w_unit"] + p["b0"]))  # [B, n, H]
    m_u, s_u = batch_mean_std(u, var_eps)  # [n, H] each
    ctx = jnp.concatenate([m_u, s_u], axis=-1) @ p["w_batch"]  # [n, C_d]
    d = u @ p["w_self"] + ctx + p["b1"]
    if "w_units" in p:
        d = d + jnp.mean(u, axis=1, keepdims=True) @ p["w_units"]  # [B, 1, C_d]
    return unit_rms(d, axis=(0, 2), eps=eps)


# ----------------------------------------------------------------------------
# Per-unit network: (z, a, d, weight stats, bias, kind) -> h [B, n, C_h]
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

    ``u = act(ex @ W_ex + unit @ W_unit + b0)``, then
    ``h = act(u @ W_self + ctx(u) @ W_ctx + b1)`` where ``ctx(u)`` mixes
    information across examples and units:

    - ``"batch_stats"``: the per-unit batch mean and std of ``u`` ([n, 2H]);
      invariant to the order of examples, equivariant to unit permutations.
    - ``"conv"``: depthwise convolutions of ``u`` along the batch axis and
      along the unit axis ([B, n, 2H]), the paper's variant; the result
      depends on the order of examples and of units.

    Args:
      p: meta-parameters from :func:`init_unit_net`.
      ex: [B, n, E] per-example features.
      unit: [n, U] per-unit features.
      activation: nonlinearity name.
      mixing: "batch_stats" or "conv".
      var_eps: floor added to batch variances.

    Returns:
      h: [B, n, C_h].
    """
    act = get_activation(activation)
    u = act(ex @ p["w_ex"] + (unit @ p["w_unit"] + p["b0"]))  # [B, n, H]
    if mixing == "batch_stats":
        m_u, s_u = batch_mean_std(u, var_eps)
        ctx = jnp.concatenate([m_u, s_u], axis=-1)  # [n, 2H], broadcast over B
    else:
        ctx = jnp.concatenate([conv_same(u, p["k_batch"], axis=0),
                               conv_same(u, p["k_unit"], axis=1)], axis=-1)  # [B, n, 2H]
    return act(u @ p["w_self"] + ctx @ p["w_ctx"] + p["b1"])


def pass_down(delta: Array, v: Array, eps: float) -> Array:
    """Sends a signal through the backward weights and normalises it per unit.

    ``d[b, i, c] = sum_j delta[b, j, c] V[i, j]``, i.e. ``delta @ V^T`` per
    channel (V, not W: no weight transport), then divided by the unit's RMS
    over batch and channels.

    Args:
      delta: [B, n_out, C] signal at a layer's outputs.
      v: [n_in, n_out] backward weights.
      eps: RMS floor.

    Returns:
      [B, n_in, C].
    """
    d = jnp.einsum("bjc,ij->bic", delta, v)
    return unit_rms(d, axis=(0, 2), eps=eps)
