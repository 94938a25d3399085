"""The few-shot episode every task is scored on, and its ridge score: one builder for all.

Meta-training (:mod:`metaunsup.tasks.rule_task`), the validation and transfer suites
(:mod:`metaunsup.tasks.suite`) and the evolution strategies' fitness tasks
(:mod:`metaunsup.outer.population`, through the suite) draw and score episodes here.

An episode: ``shots + query`` distinct examples of each of the task's ``n_way``
classes (:func:`metaunsup.tasks.pool.sample_episode`), augmented per example,
passed through the task's input permutation, and ordered support first (class by
class), then query. Its score: the network's top-layer features with batch-norm
statistics of an unlabeled reference batch, and the ridge meta-objective
(:func:`metaunsup.objectives.ridge_meta_loss`) fitted on the support rows and
scored on the query rows.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from metaunsup.models import MLPSpec, bn_stats, features
from metaunsup.objectives import RidgeConfig, ridge_meta_loss
from metaunsup.tasks.augment import AugmentConfig, augment
from metaunsup.tasks.pool import DataPool, sample_episode
from metaunsup.types import Array, Params, PRNGKey


def draw_episode(key: PRNGKey, pool: DataPool, classes: Array, perm: Array, geometric, *,
                 shots: int, query: int, image_shape: tuple[int, int],
                 augment_config: AugmentConfig) -> tuple[Array, Array, Array, Array]:
    """An augmented episode of ``classes``, grouped by class, and its support-first order.

    Args:
      key: PRNG key (split into the examples' draw and their augmentation).
      pool: the data.
      classes: [n_way] global class ids.
      perm: [D] the task's input permutation.
      geometric: 1 for image families, 0 otherwise (:func:`metaunsup.tasks.augment.augment`).
      shots, query: examples per class in the support and query sets.
      image_shape: (H, W) of the flattened images.
      augment_config: the augmentation.

    Returns:
      ``(x, labels, aug, order)``: [n_way * (shots + query), D] examples, grouped
      by class (the first ``shots`` of each class are its support examples), their
      labels ``0..n_way-1``, [.., 4] augmentation parameters, and the row order
      that puts the support set (class by class) first, then the query set.
    """
    k_ep, k_aug = jax.random.split(key)
    per = shots + query
    x, labels = sample_episode(k_ep, pool, classes, per)
    x, aug = augment(k_aug, x, image_shape, augment_config, geometric=geometric)
    x = x[:, perm]
    is_support = (jnp.arange(labels.shape[0]) % per) < shots
    order = jnp.argsort(~is_support, stable=True)  # support first, grouped by class
    return x, labels, aug, order


def episode(key: PRNGKey, pool: DataPool, classes: Array, perm: Array, geometric, *,
            shots: int, query: int, image_shape: tuple[int, int],
            augment_config: AugmentConfig) -> tuple[Array, Array, Array]:
    """:func:`draw_episode`'s ``(x, labels, aug)`` with the support rows first."""
    x, labels, aug, order = draw_episode(key, pool, classes, perm, geometric, shots=shots,
                                         query=query, image_shape=image_shape,
                                         augment_config=augment_config)
    return x[order], labels[order], aug[order]


def ridge_score(params: Params, net: MLPSpec, x: Array, targets: Array, reference: Array, *,
                n_support: int, num_classes: int, ridge: RidgeConfig = RidgeConfig(),
                order: Array | None = None) -> tuple[Array, Array, Array]:
    """Features of ``x`` (BN statistics of ``reference``) and the ridge meta-objective.

    ``order`` (optional) permutes the rows of the features and ``targets`` after the
    network, so that the support rows come first (:func:`draw_episode`); the features
    of a row do not depend on the others, so it equals reordering ``x`` before, up to
    the last bits of the matrix products (meta-training keeps its recorded numbers
    this way).

    Returns:
      ``(features [N, F], loss, accuracy)``: the ridge fitted on the first
      ``n_support`` rows' ``targets`` and scored on the rest.
    """
    f = features(params, x, net, bn_stats(params, reference, net))
    if order is not None:
        f, targets = f[order], targets[order]
    loss, acc = ridge_meta_loss(f[:n_support], targets[:n_support], f[n_support:],
                                targets[n_support:], ridge, num_classes=num_classes)
    return f, loss, acc


__all__ = ["draw_episode", "episode", "ridge_score"]
