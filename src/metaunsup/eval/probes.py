"""Few-shot linear probes: how good a representation is, the way the paper measures it.

Protocol (Metz et al. 2019, sec. 5): draw ``shots`` labelled examples per class
from the training split (the *support* set), fit a linear classifier on their
features, and report accuracy on the test split (the *query* set). By default
features are standardised with the support set's mean and standard deviation
(:attr:`ProbeConfig.standardize`), so the probe sees nothing of the query set but
its inputs.

Two probes:

- :func:`logreg_probe`: multinomial logistic regression (scikit-learn, lbfgs,
  L2 penalty ``1 / (2 C)``), the paper's evaluation probe.
- :func:`ridge_probe`: the closed-form ridge regression onto centred one-hot
  targets used by the meta-objective (:func:`metaunsup.objectives.ridge_predict`);
  prediction = argmax over classes.

Randomness: all of it flows from the integer ``seed``. The support draw uses
``default_rng(seed)`` (:func:`metaunsup.data.sample_few_shot`), the query subset
an independent stream (:func:`metaunsup.streams.query_rng`), so changing ``max_test``
never changes the support set.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from metaunsup.data.episodes import few_shot_indices
from metaunsup.errors import UserError
from metaunsup.objectives import RidgeConfig, centred_one_hot, ridge_predict
from metaunsup.streams import query_rng


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """Options shared by the probes.

    Attributes:
      C: inverse L2 strength of logistic regression (scikit-learn's ``C``).
      max_iter: lbfgs iteration cap; the 100-example problems converge in far fewer.
      ridge_lam: ridge penalty of :func:`ridge_probe`.
      max_test: score on a seeded subset of this many test examples (None: all).
      standardize: standardise features with the support set's mean and standard
        deviation (True) or use them as given (False). Standardising makes the
        probe invariant to per-feature scale, but it also gives low-variance
        directions (trailing PCA components, noise) the same weight as the rest.
      std_floor: feature standard deviations below this are treated as 1 (a feature
        constant on the support set, such as a dead ReLU, is then only centred).
    """

    C: float = 1.0
    max_iter: int = 1000
    ridge_lam: float = 0.1
    max_test: int | None = 2000
    standardize: bool = True
    std_floor: float = 1e-6

    def __post_init__(self):
        if not self.C > 0:
            raise UserError(f"probe C must be > 0, got {self.C}")
        if not self.ridge_lam > 0:
            raise UserError(f"ridge lam must be > 0, got {self.ridge_lam}")
        if self.max_test is not None and self.max_test <= 0:
            raise UserError(f"max_test must be a positive integer or None, got {self.max_test}")


def query_indices(n_test: int, max_test: int | None, seed: int) -> np.ndarray:
    if max_test is None or max_test >= n_test:
        return np.arange(n_test)
    rng = query_rng(seed)
    return np.sort(rng.choice(n_test, size=max_test, replace=False))


def _split(train_features, train_labels, test_features, test_labels, shots, seed, config):
    """Support/query arrays (float64), standardised with support statistics if configured."""
    ftr = np.asarray(train_features, dtype=np.float64)
    fte = np.asarray(test_features, dtype=np.float64)
    ytr = np.asarray(train_labels)
    yte = np.asarray(test_labels)
    if ftr.ndim != 2 or fte.ndim != 2 or ftr.shape[1] != fte.shape[1]:
        raise UserError(
            f"features must be [N, F] arrays with the same F, got {ftr.shape} and {fte.shape}")
    if ftr.shape[0] != ytr.shape[0] or fte.shape[0] != yte.shape[0]:
        raise UserError("features and labels disagree on the number of examples")
    if not (np.all(np.isfinite(ftr)) and np.all(np.isfinite(fte))):
        raise UserError("features contain NaN or Inf (the representation diverged)")
    s_idx = few_shot_indices(ytr, shots, seed)
    q_idx = query_indices(fte.shape[0], config.max_test, seed)
    fs, ys = ftr[s_idx], ytr[s_idx]
    fq, yq = fte[q_idx], yte[q_idx]
    fs, fq = _standardize(fs, fq, config)
    return fs, ys, fq, yq


def _standardize(fs: np.ndarray, fq: np.ndarray, config: ProbeConfig):
    """Support and query features scaled with the support's mean and std (if configured)."""
    if not config.standardize:
        return fs, fq
    mean, std = fs.mean(axis=0), fs.std(axis=0)
    std = np.where(std > config.std_floor, std, 1.0)
    return (fs - mean) / std, (fq - mean) / std


def logreg_probe(train_features, train_labels, test_features, test_labels, *, shots: int,
                 seed: int, config: ProbeConfig = ProbeConfig()) -> float:
    """Few-shot logistic-regression accuracy.

    Args:
      train_features: [N, F] features of the training split (support pool).
      train_labels: [N] integer labels.
      test_features: [M, F] features of the test split.
      test_labels: [M] integer labels.
      shots: labelled examples per class in the support set.
      seed: integer seed of the support draw and the query subset.
      config: probe options (C, max_iter, max_test, ...).

    Returns:
      Accuracy on the (subset of the) test split, a fraction in [0, 1].
    """
    fs, ys, fq, yq = _split(train_features, train_labels, test_features, test_labels,
                            shots, seed, config)
    return _fit_logreg(fs, ys, fq, yq, config)


def _fit_logreg(fs, ys, fq, yq, config: ProbeConfig) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=config.C, solver="lbfgs", max_iter=config.max_iter)
    clf.fit(fs, ys)
    return float(np.mean(clf.predict(fq) == yq))


def logreg_accuracy(support, support_labels, query, query_labels, *,
                    config: ProbeConfig = ProbeConfig()) -> float:
    """Logistic-probe accuracy on an episode that is already split into support and query.

    The same classifier and feature standardisation as :func:`logreg_probe`
    (support statistics only), for callers that draw their own episodes (the
    validation suite).
    """
    fs, fq = _standardize(np.asarray(support, np.float64), np.asarray(query, np.float64), config)
    return _fit_logreg(fs, np.asarray(support_labels), fq, np.asarray(query_labels), config)


def ridge_probe(train_features, train_labels, test_features, test_labels, *, shots: int,
                seed: int, config: ProbeConfig = ProbeConfig()) -> float:
    """Few-shot ridge-regression accuracy (the meta-objective's probe, as a classifier).

    Same arguments and sampling as :func:`logreg_probe`; fits
    :func:`metaunsup.objectives.ridge_predict` (penalty ``config.ridge_lam``, no
    further feature normalisation) onto centred one-hot targets.

    Returns:
      Accuracy on the (subset of the) test split, a fraction in [0, 1].
    """
    fs, ys, fq, yq = _split(train_features, train_labels, test_features, test_labels,
                            shots, seed, config)
    classes, ys_idx = np.unique(ys, return_inverse=True)
    targets = centred_one_hot(jnp.asarray(ys_idx), classes.size)
    pred = ridge_predict(jnp.asarray(fs, jnp.float32), targets, jnp.asarray(fq, jnp.float32),
                         RidgeConfig(lam=config.ridge_lam, feature_norm="none"))
    guess = classes[np.asarray(jnp.argmax(pred, axis=-1))]
    return float(np.mean(guess == yq))


PROBES = {"logreg": logreg_probe, "ridge": ridge_probe}


def get_probe(name: str):
    """The probe function called ``name`` ("logreg" or "ridge")."""
    try:
        return PROBES[name]
    except KeyError:
        raise UserError(f"unknown probe {name!r}; choose one of {', '.join(PROBES)}") from None
