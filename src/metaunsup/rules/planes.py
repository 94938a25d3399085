"""Candidate weight-update directions ("planes") of the learned rule.

Metz et al. 2019 (arXiv 1804.00222), section 3 and appendix B: the update of a
weight matrix ``W`` [n_in, n_out] is a learned linear mix of a few candidate
directions, each an [n_in, n_out] array built from quantities local to the two
ends of each synapse. Every plane is divided by its own RMS before mixing, so
the learned mixing weights compare directions, not magnitudes, and the mixed
update is divided by its RMS again (a bounded step).

Notation, per layer: ``c`` [R, B, n_in] and ``e`` [R, B, n_out] are R read-outs
of the pre- and post-synaptic units' hidden states, ``a_in`` [B, n_in] and
``a_out`` [B, n_out] the layer's input and output activations, and
``w~ = W / rms(W)``. The planes (``O_r = c_r^T e_r / B``):

=============  =============================================  ==========
name           plane                                          how many
=============  =============================================  ==========
outer          ``O_r``                                        R
outer_w        ``O_r * w~``                                   R
outer_gauss    ``O_r * exp(-w~^2)``                           R
gram_post      ``W @ (sum_r e_r^T e_r / B)``  (PSD, post)     1
gram_pre       ``(sum_r c_r^T c_r / B) @ W``  (PSD, pre)      1
decorr         ``W @ corr(a_out)``                            1
hebb           ``std(a_in)^T std(a_out) / B``                 1
oja            ``W * mean_b(a_out^2)`` (column scaling)       1
oja_subspace   ``W @ (a_out^T a_out / B)``                    1
decay          ``W``                                          1
soft_hebb      ``x^T g / B``, ``g = softmax(s / tau)``        1
soft_decay     ``W * (sum_b g * s) / B`` (column scaling)     1
soft_count     ``W * (sum_b g) / B`` (column scaling)         1
rank_hebb      ``x^T g / B``, ``g`` rank-coded (below)        1
rank_decay     ``W * (sum_b g * s) / B``, ``g`` rank-coded     1
=============  =============================================  ==========

``std(.)`` standardises each unit over the batch. With the rule's step
``W <- (1 - lr) W - lr dW``, Oja's subspace rule ``dW/dt = x^T y - W y^T y``
corresponds to mixing weights -1 on (raw) Hebbian and +1 on ``oja_subspace``.
Every plane is a sum over the batch axis, so it does not depend on the order of
the examples, and it commutes with permutations of either side's units.

Competition planes (the last five). Every other plane is a batch sum of
products of two units' signals; these make the units of a layer compete for
each example. With ``x = a_in - mean_b(a_in)`` the layer's input centred by
its minibatch mean (on non-negative inputs such as pixels or ReLU outputs,
without centring the unit best aligned with the input mean wins nearly every
example) and ``s = x @ W`` [B, n_out] each unit's drive, ``g`` [B, n_out] is
either

- soft: ``g = softmax(s / tau)`` across the layer's units, ``tau`` a learned
  temperature (``meta_params["mix"]["log_tau"]``); or
- rank-coded: per example ``g = +1`` for the unit with the largest drive,
  ``-Delta`` for the ``k``-th largest, 0 for the others (ranks carry no
  gradient; ``k`` is clipped to the layer's width, and a layer of one unit
  gets only the +1).

SoftHebb (Moraitis et al. 2022; Journe, Rodriguez, Guo & Moraitis, "Hebbian
deep learning without feedback", ICLR 2023) is
``dW = x^T y - W diag(sum_b y * u)`` with ``y = softmax(u / tau)``: the
direction ``B (soft_decay - soft_hebb)``, which the step ``W <- (1 - lr) W -
lr dW`` follows with mixing weights ``(-rms(soft_hebb), +rms(soft_decay))``.
Krotov & Hopfield ("Unsupervised learning by competing hidden units", PNAS
2019) with p = 2 is the same with the rank code: ``B (rank_decay -
rank_hebb)``, up to its normalisation by ``max |dW|`` (a positive factor).
``soft_count`` (``W`` scaled by each unit's share of the batch) lets the rule
shrink or grow units by how often they win. Softmax across units and ranks
commute with permutations of the units, so these planes keep the
equivariance above (ties in the rank code aside).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from metaunsup.types import Array

CLASSIC_PLANES = ("outer", "outer_w", "outer_gauss", "gram_post", "gram_pre", "decorr",
                  "hebb", "oja", "oja_subspace", "decay")
"""The planes of Metz et al.'s rule (the learned rule's default)."""

SOFT_PLANES = ("soft_hebb", "soft_decay", "soft_count")
"""Competition planes with the softmax code (they need the temperature tau)."""

RANK_PLANES = ("rank_hebb", "rank_decay")
"""Competition planes with the rank code (top unit +1, k-th -Delta)."""

COMPETITIVE_PLANES = SOFT_PLANES + RANK_PLANES
"""Planes built from a per-example competition across a layer's units."""

PLANES = CLASSIC_PLANES + COMPETITIVE_PLANES
"""Every plane name, in the order planes are stacked (new ones appended, so a
saved mixing vector keeps its meaning)."""

RANKED_PLANES = ("outer", "outer_w", "outer_gauss")
"""Planes that come once per read-out rank r."""

HAND_PLANES = ("decorr", "hebb", "oja", "oja_subspace", "decay")
"""Planes that need no learned read-out (hand-designed terms)."""


def plane_labels(planes: tuple[str, ...], rank: int) -> tuple[str, ...]:
    """Names of the stacked planes, e.g. ``("outer[0]", ..., "decay")``.

    Args:
      planes: plane names (a subset of :data:`PLANES`); stacked in
        :data:`PLANES` order whatever their order here.
      rank: R, the number of read-outs per side.
    """
    labels = []
    for name in PLANES:
        if name not in planes:
            continue
        if name in RANKED_PLANES:
            labels.extend(f"{name}[{r}]" for r in range(rank))
        else:
            labels.append(name)
    return tuple(labels)


def unit_rms(x: Array, axis, eps: float) -> Array:
    """``x / sqrt(mean(x^2 over axis) + eps)``: unit RMS over ``axis`` (smooth at 0)."""
    return x * jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps))


def standardize(a: Array, eps: float) -> Array:
    """Zero mean, unit variance over the batch (axis 0): [B, n] -> [B, n]."""
    mean = jnp.mean(a, axis=0)
    var = jnp.mean(jnp.square(a - mean), axis=0)
    return (a - mean) * jnp.reciprocal(jnp.sqrt(var + eps))


def centred_drive(w: Array, a_in: Array) -> tuple[Array, Array]:
    """``(x, s)``: centred input ``a_in - mean_b(a_in)`` [B, n_in], drive ``x @ w`` [B, n_out]."""
    x = a_in - jnp.mean(a_in, axis=0)
    return x, x @ w


def soft_code(s: Array, tau: Array) -> Array:
    """``softmax(s / tau)`` across units (last axis): [B, n] -> [B, n], rows sum to 1."""
    return jax.nn.softmax(s / tau, axis=-1)


def rank_code(s: Array, k: int, delta: float) -> Array:
    """Krotov-Hopfield's rank code [B, n]: +1 at each row's largest ``s``, ``-delta`` at its k-th.

    ``k`` is clipped to the number of units n; with n = 1 only the +1 remains.
    The code is piecewise constant in ``s`` (no gradient through the ranks).
    """
    n = s.shape[-1]
    k = min(k, n)
    # k masked maxima instead of lax.top_k, which XLA:CPU runs as a sort
    # (measured: 7 of the compact rule's 9 ms per inner step); max-reductions and
    # comparisons fuse. Exact ties (measure zero for real-valued drives) would
    # mark every tied unit.
    # optimization_barrier: the maxima and the comparisons read one materialised s, so
    # that XLA cannot recompute s in two fusions with different rounding (seen at -O0
    # in float64: no row then matched its own maximum).
    s = jax.lax.optimization_barrier(jax.lax.stop_gradient(s))
    first = s == jnp.max(s, axis=-1, keepdims=True)
    hit = first
    for _ in range(k - 1):
        s = jnp.where(hit, -jnp.inf, s)
        hit = s == jnp.max(s, axis=-1, keepdims=True)
    return first.astype(s.dtype) - (delta * hit.astype(s.dtype) if k >= 2 else 0.0)


def competition_codes(w: Array, a_in: Array, planes, tau, comp_k: int, comp_delta: float):
    """(centred input, drive, codes) that the competitive planes among ``planes`` read.

    ``codes`` maps "soft" / "rank" to the [B, n_out] codes of the planes present; with no
    competitive plane the result is (None, None, {}).
    """
    if not any(p in planes for p in COMPETITIVE_PLANES):
        return None, None, {}
    x_c, drive = centred_drive(w, a_in)
    codes = {}
    if any(p in planes for p in SOFT_PLANES):
        codes["soft"] = soft_code(drive, tau)
    if any(p in planes for p in RANK_PLANES):
        codes["rank"] = rank_code(drive, comp_k, comp_delta)
    return x_c, drive, codes


def weight_planes(w: Array, c: Array, e: Array, a_in: Array, a_out: Array, *,
                  planes: tuple[str, ...], eps: float, var_eps: float,
                  tau: Array | float = 1.0, comp_k: int = 2, comp_delta: float = 0.4) -> Array:
    """Stacks the raw (unnormalised) planes of one layer.

    Args:
      w: [n_in, n_out] forward weights.
      c: [R, B, n_in] pre-synaptic read-outs.
      e: [R, B, n_out] post-synaptic read-outs.
      a_in: [B, n_in] layer inputs.
      a_out: [B, n_out] layer outputs.
      planes: names of the planes to build (see :func:`plane_labels` for order).
      eps: floor inside the square root of ``rms(w)``.
      var_eps: floor added to batch variances when standardising activations.
      tau: temperature of the softmax competition (soft_* planes).
      comp_k: rank whose unit gets ``-comp_delta`` in the rank code (rank_* planes).
      comp_delta: strength of that anti-Hebbian term.

    Returns:
      [P, n_in, n_out] with P = ``len(plane_labels(planes, R))``.
    """
    batch = a_in.shape[0]
    out = []
    need_outer = any(p in planes for p in RANKED_PLANES)
    if need_outer:
        # O_r[i, j] = (1/B) sum_b c[r, b, i] e[r, b, j]: a rank-B Hebbian-like
        # outer product per read-out channel (a batched matmul over r).
        outer = jnp.einsum("rbi,rbj->rij", c, e) / batch
        w_tilde = w * jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(w)) + eps))
    x_c, drive, codes = competition_codes(w, a_in, planes, tau, comp_k, comp_delta)
    for name in PLANES:
        if name not in planes:
            continue
        if name in COMPETITIVE_PLANES:
            # g [B, n_out]: the per-example competition; W * v scales column j by v_j.
            code, kind = codes[name.split("_")[0]], name.split("_")[1]
            if kind == "hebb":
                out.append((x_c.T @ code / batch)[None])
            elif kind == "decay":
                out.append((w * (jnp.sum(code * drive, axis=0) / batch))[None])
            else:  # count
                out.append((w * (jnp.sum(code, axis=0) / batch))[None])
        elif name == "outer":
            out.append(outer)
        elif name == "outer_w":
            out.append(outer * w_tilde)
        elif name == "outer_gauss":
            out.append(outer * jnp.exp(-jnp.square(w_tilde)))
        elif name == "gram_post":
            # sum_r e_r^T e_r / B = E^T E / B with E = e as [R * B, n_out]: a PSD
            # [n_out, n_out] matrix over post units.
            flat = e.reshape(-1, e.shape[-1])
            out.append((w @ (flat.T @ flat / batch))[None])
        elif name == "gram_pre":
            flat = c.reshape(-1, c.shape[-1])
            out.append(((flat.T @ flat / batch) @ w)[None])
        elif name == "decorr":
            s_out = standardize(a_out, var_eps)
            out.append((w @ (s_out.T @ s_out / batch))[None])
        elif name == "hebb":
            out.append((standardize(a_in, var_eps).T @ standardize(a_out, var_eps) / batch)[None])
        elif name == "oja":
            out.append((w * jnp.mean(jnp.square(a_out), axis=0))[None])
        elif name == "oja_subspace":
            out.append((w @ (a_out.T @ a_out / batch))[None])
        elif name == "decay":
            out.append(w[None])
    return jnp.concatenate(out, axis=0)


def mix_planes(planes: Array, mix: Array, eps: float) -> Array:
    """Normalises each plane, mixes them, renormalises: the update direction.

    ``dW = M / sqrt(mean(M^2) + eps)`` with ``M = sum_p mix_p P_p / sqrt(mean(P_p^2) + eps)``,
    so ``rms(dW) < 1`` for any mixing weights (the bound the step relies on).

    Args:
      planes: [P, n_in, n_out] raw planes.
      mix: [P] mixing weights.
      eps: floor inside the square roots.

    Returns:
      [n_in, n_out] update direction with RMS just below 1.
    """
    normed = unit_rms(planes, axis=(1, 2), eps=eps)
    mixed = jnp.einsum("p,pij->ij", mix, normed)
    return unit_rms(mixed, axis=None, eps=eps)
