"""Differentiable few-shot ridge-regression meta-objective (Metz et al. 2019, sec. 4.1).

Fit ``Y ~ F W + b`` on the support set in closed form, with ridge penalty
``lam * |W|^2`` and an unpenalised bias, then score the query set by the cosine
distance between predictions and targets.

Derivation. With centred support features ``Fc = F - mean(F)`` and targets
``Yc = Y - mean(Y)``, minimising ``|Yc - Fc W|^2 + lam |W|^2`` gives
``W = (Fc^T Fc + lam I)^-1 Fc^T Yc`` (primal, an f x f solve) or, by the
push-through identity, ``W = Fc^T (Fc Fc^T + lam I)^-1 Yc`` (dual, n x n);
we pick the smaller system statically. The optimal bias is
``b = mean(Y) - mean(F) W``. Both systems are symmetric positive definite for
``lam > 0`` and are solved with a Cholesky factorisation, so the loss is smooth
in the features and hence in everything upstream (the rule's meta-parameters).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from metaunsup.errors import UserError
from metaunsup.types import Array

FEATURE_NORMS = ("none", "l2", "standardize")


@dataclasses.dataclass(frozen=True)
class RidgeConfig:
    """Options of the ridge meta-objective.

    Attributes:
      lam: ridge penalty (released code: 0.1).
      feature_norm: per-example "l2" normalisation, per-feature "standardize"
        (with support statistics), or "none", applied before the fit.
      eps: numerical floor in norms.
    """

    lam: float = 0.1
    feature_norm: str = "l2"
    eps: float = 1e-6

    def __post_init__(self):
        if not self.lam > 0:
            raise UserError(f"ridge lam must be > 0, got {self.lam}")
        if self.feature_norm not in FEATURE_NORMS:
            raise UserError(
                f"feature_norm must be one of {FEATURE_NORMS}, got {self.feature_norm!r}")


def centred_one_hot(labels: Array, num_classes: int) -> Array:
    """One-hot targets minus ``1 / num_classes``: [n] int -> [n, num_classes]."""
    return jax.nn.one_hot(labels, num_classes) - 1.0 / num_classes


def _normalize(f_support: Array, f_query: Array, config: RidgeConfig):
    if config.feature_norm == "l2":
        def l2(f):
            return f / jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True) + config.eps)
        return l2(f_support), l2(f_query)
    if config.feature_norm == "standardize":
        m = jnp.mean(f_support, axis=0)
        s = jnp.sqrt(jnp.var(f_support, axis=0) + config.eps)
        return (f_support - m) / s, (f_query - m) / s
    return f_support, f_query


@jax.custom_jvp
def _spd_solve(a: Array, b: Array) -> Array:
    """``a^-1 b`` for a symmetric positive definite ``a`` (Cholesky).

    Its derivative reuses the forward pass's factor: ``dx = a^-1 (db - da x)``,
    linear in the tangents, so reverse mode (JAX transposes it) costs one more
    pair of triangular solves and a matmul. Differentiating through the
    factorisation instead (JAX's default) cost several times more on CPU, where
    this solve's backward dominated the meta-objective's (experiments/README.md,
    issue 14). Forward mode (Hessian-vector products) still works.
    """
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a, lower=True), b)


@_spd_solve.defjvp
def _spd_solve_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    chol = jax.scipy.linalg.cho_factor(a, lower=True)
    x = jax.scipy.linalg.cho_solve(chol, b)
    return x, jax.scipy.linalg.cho_solve(chol, db - da @ x)


def ridge_fit(features: Array, targets: Array, lam: float) -> tuple[Array, Array]:
    """Closed-form ridge regression with an unpenalised bias.

    Args:
      features: [n, f] support features.
      targets: [n, c] regression targets.
      lam: ridge penalty (> 0).

    Returns:
      ``(w, b)`` with shapes [f, c] and [c].
    """
    n, f = features.shape
    f_mean = jnp.mean(features, axis=0)
    y_mean = jnp.mean(targets, axis=0)
    fc = features - f_mean
    yc = targets - y_mean
    if f <= n:
        w = _spd_solve(fc.T @ fc + lam * jnp.eye(f, dtype=fc.dtype), fc.T @ yc)
    else:
        w = fc.T @ _spd_solve(fc @ fc.T + lam * jnp.eye(n, dtype=fc.dtype), yc)
    return w, y_mean - f_mean @ w


def cosine_distance(pred: Array, target: Array, eps: float = 1e-6) -> Array:
    """Mean over rows of ``1 - cos(pred_i, target_i)``; rows of [n, c] arrays."""
    num = jnp.sum(pred * target, axis=-1)
    den = jnp.sqrt(jnp.sum(pred * pred, axis=-1) * jnp.sum(target * target, axis=-1) + eps)
    return jnp.mean(1.0 - num / den)


def ridge_predict(f_support: Array, y_support: Array, f_query: Array,
                  config: RidgeConfig = RidgeConfig()) -> Array:
    """Fits on the support set and predicts the query set: [m, c]."""
    fs, fq = _normalize(f_support, f_query, config)
    w, b = ridge_fit(fs, y_support, config.lam)
    return fq @ w + b


def ridge_meta_loss(f_support: Array, y_support: Array, f_query: Array, y_query: Array,
                    config: RidgeConfig = RidgeConfig(),
                    num_classes: int | None = None) -> tuple[Array, Array]:
    """The meta-objective: cosine distance of ridge predictions on the query set.

    Args:
      f_support: [n, f] support features.
      y_support: [n, c] support targets (centred one-hot, optionally with extra
        regression columns such as augmentation parameters appended).
      f_query: [m, f] query features.
      y_query: [m, c] query targets.
      config: ridge options.
      num_classes: how many leading target columns are classes (the rest are
        auxiliary regression targets); default: all columns.

    Returns:
      ``(loss, accuracy)``: the scalar cosine-distance loss over all columns,
      and the query accuracy of the argmax over the class columns.
    """
    pred = ridge_predict(f_support, y_support, f_query, config)
    loss = cosine_distance(pred, y_query, config.eps)
    k = y_query.shape[-1] if num_classes is None else num_classes
    acc = jnp.mean(jnp.argmax(pred[:, :k], -1) == jnp.argmax(y_query[:, :k], -1))
    return loss, acc
