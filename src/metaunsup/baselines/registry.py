"""Registry of representation methods: anything that turns a dataset into features.

A *method* maps a dataset to features of its train and test splits::

    fn(dataset, *, spec: MLPSpec, seed: int, options: dict) -> (train_features, test_features)

with numpy arrays [N_train, F] and [N_test, F]. A method may use the unlabeled
training inputs (``dataset.x_train``) however it likes (fit PCA, run an update
rule for ``options["steps"]`` inner steps, train an autoencoder), but never the
labels, except methods that say so (``supervised``). ``spec`` describes the
base network (its top width is the representation size a method should aim
for); ``seed`` drives all of the method's own randomness, and every method of a
seed that uses the base network starts from the same one
(:func:`metaunsup.streams.method_keys`), so differences between methods are paired.

A method registered as ``stochastic`` is run once per probe seed with that seed
(a random network is drawn anew for every seed, so the reported interval covers
the network's randomness); a deterministic one runs once.

A *trainable* method (:func:`register_trainable`: ``rule``, ``autoencoder``,
``vae``, ``supervised``, the hand-designed rules) trains the base network for
``options["steps"]`` steps and probes its top layer; it also exposes its
training function::

    train(dataset, *, spec, seed, options, curve_every=None, probe_fn=None) -> result

whose result has ``params`` (the trained base network), and ``curve_steps`` /
``curve`` (``probe_fn(params)`` at step 0, every ``curve_every`` steps and at
the end), so accuracy-versus-steps curves come from the same code path.

Each method declares the options it reads and their types (``options=``);
:func:`check_options` types a user's ``KEY=VALUE`` words against them. The
methods of :mod:`metaunsup.baselines` register here when that package is
imported; the registry itself imports none of them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from metaunsup.errors import UserError
from metaunsup.models.featurize import network_features
from metaunsup.values import cast_value, guess_value

MethodFn = Callable[..., tuple[np.ndarray, np.ndarray]]

TRAINING_OPTIONS = {"steps": int, "batch_size": int, "progress": bool}
"""Options every trainable method reads (:mod:`metaunsup.baselines.rule`)."""
IMPLICIT = ("shots", "progress", "steps", "rule")
"""Options the command line sets itself for every method: not a user's ``--option``."""


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
      name: registry key, as typed on the command line.
      fn: ``fn(dataset, *, spec, seed, options) -> (train_features, test_features)``.
      stochastic: whether the features depend on ``seed`` (then one run per seed).
      description: one line for ``--help`` and listings.
      train: for trainable methods, the training function (module doc); else None.
      options: ``{option: type}`` the method reads, or None (undeclared: any option
        is passed through, typed by its spelling).
    """

    name: str
    fn: MethodFn
    stochastic: bool = False
    description: str = ""
    train: Callable[..., Any] | None = None
    options: Mapping[str, type] | None = None


_METHODS: dict[str, Method] = {}


def register_method(name: str, fn: MethodFn, *, stochastic: bool = False,
                    description: str = "", train: Callable[..., Any] | None = None,
                    options: Mapping[str, type] | None = None) -> Method:
    """Registers ``fn`` under ``name`` (replacing any earlier one); returns the entry."""
    if not name or "," in name:
        raise ValueError(f"method names must be non-empty and contain no comma: {name!r}")
    method = Method(name=name, fn=fn, stochastic=stochastic, description=description,
                    train=train, options=None if options is None else dict(options))
    _METHODS[name] = method
    return method


def register_trainable(name: str, train: Callable[..., Any], *, description: str = "",
                       options: Mapping[str, type] | None = None) -> Method:
    """Registers a method that trains a seeded base network with ``train`` (module doc).

    Its features are the trained network's top layer, with batch-norm statistics
    from a seeded reference batch (:func:`metaunsup.models.featurize.network_features`).
    It reads :data:`TRAINING_OPTIONS` and ``options``.
    """
    def fn(dataset, *, spec, seed: int, options: dict):
        result = train(dataset, spec=spec, seed=seed, options=options)
        return network_features(result.params, spec, dataset.x_train, dataset.x_test, seed=seed)

    return register_method(name, fn, stochastic=True, description=description, train=train,
                           options={**TRAINING_OPTIONS, **(options or {})})


def method_names() -> list[str]:
    """Names of all registered methods, sorted."""
    return sorted(_METHODS)


def get_method(name: str) -> Method:
    """The registered method ``name``; a one-line :class:`UserError` if unknown."""
    try:
        return _METHODS[name]
    except KeyError:
        raise UserError(
            f"unknown method {name!r}; choose one of {', '.join(sorted(_METHODS))}") from None


def compute_features(name: str, dataset, *, spec, seed: int,
                     options: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Runs method ``name`` and checks what it returns.

    Returns:
      ``(train_features, test_features)`` as numpy arrays [N_train, F], [N_test, F].
    """
    method = get_method(name)
    train, test = method.fn(dataset, spec=spec, seed=int(seed), options=dict(options or {}))
    train, test = np.asarray(train), np.asarray(test)
    n_train, n_test = len(dataset.y_train), len(dataset.y_test)
    if train.ndim != 2 or test.ndim != 2 or train.shape[0] != n_train or test.shape[0] != n_test:
        raise RuntimeError(
            f"method {name!r} returned features of shapes {train.shape}, {test.shape}; "
            f"expected [{n_train}, F] and [{n_test}, F]")
    return train, test


def _cast(key: str, value: Any, kind: type) -> Any:
    typed = cast_value(value, kind, name=f"--option {key}")
    if kind in (int, float) and not typed > 0:
        raise UserError(f"--option {key}={value}: must be > 0")
    return typed


def check_options(methods: Iterable[str], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` typed by the methods that read them; a key none of them reads is an error.

    Values are typed by :func:`metaunsup.values.cast_value` (``bool``:
    true/false/yes/no/on/off/1/0); ``int`` and ``float`` must be positive. If a
    method does not declare its options, every option is passed as given (typed
    by its spelling, :func:`metaunsup.values.guess_value`).

    Args:
      methods: the selected method names.
      options: ``{key: value}`` as given by the user (strings or parsed values).
    """
    declared = [get_method(m).options for m in methods]
    if any(d is None for d in declared):  # an undeclared method: accept as given
        return {k: guess_value(v) if isinstance(v, str) else v for k, v in options.items()}
    methods = list(methods)
    out = {}
    for key, value in options.items():
        kinds = {d[key] for d in declared if key in d}
        if not kinds:
            known = sorted({k for d in declared for k in d} - set(IMPLICIT))
            raise UserError(f"--option {key}: not read by method{'s' if len(methods) > 1 else ''} "
                            f"{', '.join(methods)} (their options: "
                            f"{', '.join(known) if known else 'none'})")
        out[key] = _cast(key, value, kinds.pop())
    return out


__all__ = ["IMPLICIT", "Method", "TRAINING_OPTIONS", "check_options", "compute_features",
           "get_method", "method_names", "register_method", "register_trainable"]
