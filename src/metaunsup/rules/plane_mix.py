"""The update direction of the learned rule, computed without stacking its planes.

:func:`mixed_update` equals ``planes.mix_planes(planes.weight_planes(...), mix)`` (up to
float rounding; tested), the update of Metz et al.'s rule (arXiv 1804.00222, appendix B),
but builds each plane once, folds the column-scaling planes into one vector and, when the
read-outs are the activations themselves, shares the products between planes (see the
docstrings). Measured: see ``benchmarks/bench_inner_step.py`` (``learned-compact``,
``learned-pool``).
"""
from __future__ import annotations

import jax.numpy as jnp

from metaunsup.rules.planes import (
    COMPETITIVE_PLANES,
    PLANES,
    RANK_PLANES,
    RANKED_PLANES,
    SOFT_PLANES,
    competition_codes,
    rank_code,
    soft_code,
    standardize,
    unit_rms,
)
from metaunsup.types import Array


def _rms(x: Array, eps: float) -> Array:
    return jnp.sqrt(jnp.mean(jnp.square(x)) + eps)


def mixed_update(w: Array, c: Array | None, e: Array | None, a_in: Array, a_out: Array,
                 mix: Array, *, planes: tuple[str, ...], eps: float, var_eps: float,
                 tau: Array | float = 1.0, comp_k: int = 2,
                 comp_delta: float = 0.4) -> Array:
    """``mix_planes(weight_planes(...), mix, eps)`` without stacking the planes.

    The same direction (equal up to float rounding; tested against the
    two-step form), computed the cheap way:

    - the column-scaling planes (oja, decay, soft_decay, soft_count,
      rank_decay) are ``W * v_p`` for a vector ``v_p`` [n_out]; their RMS is
      ``sqrt(mean_j v_pj^2 mean_i W_ij^2 + eps)`` and together they
      contribute ``W * sum_p (m_p / rms_p) v_p``: one elementwise product
      instead of five [n_in, n_out] planes;
    - the other planes are built once each and summed with weights
      ``m_p / rms_p`` in one fused elementwise expression (no [P, n_in, n_out]
      stack, no mixing matmul).

    - with ``c = e = None`` (the read-outs are the activations themselves,
      R = 1) the planes share their products: with centred ``x`` [B, n_in] and
      ``y`` [B, n_out], one matmul ``x^T [y | g_soft | g_rank]`` gives
      hebb ``= D_in x^T y D_out / B``, outer ``= x^T y / B + mu_in mu_out^T``
      and the competition planes; one Gram ``K = y^T y`` gives decorr
      (``W D K D / B``) and oja_subspace (``W (K / B + mu mu^T)``), both from
      one matmul ``W [D K D | K + B mu mu^T] / B``.

    Args: as :func:`weight_planes` (``c``, ``e`` may be None: the
    activations), plus ``mix`` [P] mixing weights in :func:`plane_labels` order.

    Returns:
      [n_in, n_out] update direction with RMS just below 1.
    """
    if c is None or e is None:
        return _mixed_update_activations(w, a_in, a_out, mix, planes=planes, eps=eps,
                                         var_eps=var_eps, tau=tau, comp_k=comp_k,
                                         comp_delta=comp_delta)
    batch = a_in.shape[0]
    rank = c.shape[0]
    col_ms = jnp.mean(jnp.square(w), axis=0)  # [n_out]: mean_i W_ij^2
    full: list[tuple[Array, Array]] = []  # (coefficient, plane)
    scale = jnp.zeros_like(col_ms)  # sum_p (m_p / rms_p) v_p over column-scaling planes
    i = 0

    def add_full(plane):
        nonlocal i
        full.append((mix[i] / _rms(plane, eps), plane))
        i += 1

    def add_col(v):
        nonlocal i, scale
        r = jnp.sqrt(jnp.mean(jnp.square(v) * col_ms) + eps)
        scale = scale + (mix[i] / r) * v
        i += 1

    if any(p in planes for p in RANKED_PLANES):
        outer = jnp.einsum("rbi,rbj->rij", c, e) / batch
        w_tilde = w * jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(w)) + eps))
    x_c, drive, codes = competition_codes(w, a_in, planes, tau, comp_k, comp_delta)
    for name in PLANES:
        if name not in planes:
            continue
        if name in COMPETITIVE_PLANES:
            code, kind = codes[name.split("_")[0]], name.split("_")[1]
            if kind == "hebb":
                add_full(x_c.T @ code / batch)
            elif kind == "decay":
                add_col(jnp.sum(code * drive, axis=0) / batch)
            else:  # count
                add_col(jnp.sum(code, axis=0) / batch)
        elif name in RANKED_PLANES:
            for r in range(rank):
                if name == "outer":
                    add_full(outer[r])
                elif name == "outer_w":
                    add_full(outer[r] * w_tilde)
                else:
                    add_full(outer[r] * jnp.exp(-jnp.square(w_tilde)))
        elif name == "gram_post":
            flat = e.reshape(-1, e.shape[-1])
            add_full(w @ (flat.T @ flat / batch))
        elif name == "gram_pre":
            flat = c.reshape(-1, c.shape[-1])
            add_full((flat.T @ flat / batch) @ w)
        elif name == "decorr":
            s_out = standardize(a_out, var_eps)
            add_full(w @ (s_out.T @ s_out / batch))
        elif name == "hebb":
            add_full(standardize(a_in, var_eps).T @ standardize(a_out, var_eps) / batch)
        elif name == "oja":
            add_col(jnp.mean(jnp.square(a_out), axis=0))
        elif name == "oja_subspace":
            add_full(w @ (a_out.T @ a_out / batch))
        elif name == "decay":
            add_col(jnp.ones_like(col_ms))
    mixed = w * scale
    for coef, plane in full:
        mixed = mixed + coef * plane
    return unit_rms(mixed, axis=None, eps=eps)


def _mixed_update_activations(w, a_in, a_out, mix, *, planes, eps, var_eps, tau, comp_k,
                              comp_delta):
    """:func:`mixed_update` when the read-outs are the activations (shared products)."""
    batch = a_in.shape[0]
    n_out = w.shape[1]
    col_ms = jnp.mean(jnp.square(w), axis=0)
    mu_in, mu_out = jnp.mean(a_in, axis=0), jnp.mean(a_out, axis=0)
    x, y = a_in - mu_in, a_out - mu_out
    d_in = jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(x), axis=0) + var_eps))
    d_out = jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + var_eps))
    has = set(planes)
    # one matmul for every x^T (.) product the planes need
    right, slots = [], {}
    if has & {"outer", "outer_w", "outer_gauss", "hebb"}:
        slots["y"] = len(right)
        right.append(y)
    drive = x @ w if has & set(COMPETITIVE_PLANES) else None
    if has & set(SOFT_PLANES):
        g_soft = soft_code(drive, tau)
        if "soft_hebb" in has:
            slots["soft"] = len(right)
            right.append(g_soft)
    if has & set(RANK_PLANES):
        g_rank = rank_code(drive, comp_k, comp_delta)
        if "rank_hebb" in has:
            slots["rank"] = len(right)
            right.append(g_rank)
    cross = (x.T @ jnp.concatenate(right, axis=1)) / batch if right else None

    def block(name):
        return cross[:, slots[name] * n_out:(slots[name] + 1) * n_out]

    gram_terms = {}
    if has & {"decorr", "oja_subspace", "gram_post"}:
        k = (y.T @ y) / batch  # [n_out, n_out]
        mats = []
        if "decorr" in has:
            gram_terms["decorr"] = len(mats)
            mats.append(d_out[:, None] * k * d_out[None, :])
        if has & {"oja_subspace", "gram_post"}:  # the same plane when e = a_out
            gram_terms["oja_subspace"] = gram_terms["gram_post"] = len(mats)
            mats.append(k + jnp.outer(mu_out, mu_out))
        wk = w @ jnp.concatenate(mats, axis=1)  # [n_in, len(mats) * n_out]
    if has & {"outer", "outer_w", "outer_gauss"}:
        outer = block("y") + jnp.outer(mu_in, mu_out)
        w_tilde = w * jnp.reciprocal(jnp.sqrt(jnp.mean(jnp.square(w)) + eps))
    full, scale, i = [], jnp.zeros_like(col_ms), 0
    for name in PLANES:
        if name not in has:
            continue
        v = None
        if name == "outer":
            plane = outer
        elif name == "outer_w":
            plane = outer * w_tilde
        elif name == "outer_gauss":
            plane = outer * jnp.exp(-jnp.square(w_tilde))
        elif name == "hebb":
            plane = d_in[:, None] * block("y") * d_out[None, :]
        elif name in gram_terms:
            j = gram_terms[name]
            plane = wk[:, j * n_out:(j + 1) * n_out]
        elif name == "gram_pre":
            plane = ((x.T @ x) / batch + jnp.outer(mu_in, mu_in)) @ w
        elif name == "soft_hebb":
            plane = block("soft")
        elif name == "rank_hebb":
            plane = block("rank")
        elif name == "oja":
            v = jnp.mean(jnp.square(a_out), axis=0)
        elif name == "decay":
            v = jnp.ones_like(col_ms)
        elif name == "soft_decay":
            v = jnp.sum(g_soft * drive, axis=0) / batch
        elif name == "soft_count":
            v = jnp.sum(g_soft, axis=0) / batch
        elif name == "rank_decay":
            v = jnp.sum(g_rank * drive, axis=0) / batch
        if v is None:
            full.append((mix[i] / _rms(plane, eps), plane))
        else:
            scale = scale + (mix[i] / jnp.sqrt(jnp.mean(jnp.square(v) * col_ms) + eps)) * v
        i += 1
    mixed = w * scale
    for coef, plane in full:
        mixed = mixed + coef * plane
    return unit_rms(mixed, axis=None, eps=eps)


__all__ = ["mixed_update"]
