"""Registry of representation methods: anything that turns a dataset into features.

A *method* maps a dataset to features of its train and test splits::

    fn(dataset, *, spec: MLPSpec, seed: int, options: dict) -> (train_features, test_features)

with numpy arrays [N_train, F] and [N_test, F]. A method may use the unlabeled
training inputs (``dataset.x_train``) however it likes (fit PCA, run an update
rule for ``options["steps"]`` inner steps, train an autoencoder), but never the
labels, except methods that say so (``supervised``). ``spec`` describes the
base network (its top width is the representation size a method should aim
for); ``seed`` drives all of the method's own randomness.

A method registered as ``stochastic`` is run once per probe seed with that seed
(a random network is drawn anew for every seed, so the reported interval covers
the network's randomness); a deterministic one runs once.

A *trainable* method (:func:`register_trainable`: ``rule``, ``autoencoder``,
``vae``, ``supervised``) trains the base network for ``options["steps"]``
steps and probes its top layer; it also exposes its training function::

    train(dataset, *, spec, seed, options, curve_every=None, probe_fn=None) -> result

whose result has ``params`` (the trained base network), and ``curve_steps`` /
``curve`` (``probe_fn(params)`` at step 0, every ``curve_every`` steps and at
the end), so accuracy-versus-steps curves come from the same code path.

Built-in methods (``raw``, ``pca``, ``random``) live in
:mod:`metaunsup.baselines`, which is imported on first use of the registry.
Other modules register theirs with :func:`register_method` on import and add
that import to ``metaunsup/baselines/__init__.py``.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

import numpy as np

from metaunsup.errors import UserError

MethodFn = Callable[..., tuple[np.ndarray, np.ndarray]]

# Modules whose import registers the built-in methods.
_BUILTIN_MODULES = ("metaunsup.baselines",)


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
      name: registry key, as typed on the command line.
      fn: ``fn(dataset, *, spec, seed, options) -> (train_features, test_features)``.
      stochastic: whether the features depend on ``seed`` (then one run per seed).
      description: one line for ``--help`` and listings.
      train: for trainable methods, the training function (module doc); else None.
    """

    name: str
    fn: MethodFn
    stochastic: bool = False
    description: str = ""
    train: Callable[..., Any] | None = None


_METHODS: dict[str, Method] = {}
_loaded = False


def register_method(name: str, fn: MethodFn, *, stochastic: bool = False,
                    description: str = "", train: Callable[..., Any] | None = None) -> Method:
    """Registers ``fn`` under ``name`` (replacing any earlier one); returns the entry."""
    if not name or "," in name:
        raise ValueError(f"method names must be non-empty and contain no comma: {name!r}")
    method = Method(name=name, fn=fn, stochastic=stochastic, description=description,
                    train=train)
    _METHODS[name] = method
    return method


def register_trainable(name: str, train: Callable[..., Any], *, description: str = "") -> Method:
    """Registers a method that trains a seeded base network with ``train`` (module doc).

    Its features are the trained network's top layer, with batch-norm statistics
    from a seeded reference batch (:func:`metaunsup.eval.features.network_features`).
    """
    from metaunsup.eval.features import network_features

    def fn(dataset, *, spec, seed: int, options: dict):
        result = train(dataset, spec=spec, seed=seed, options=options)
        return network_features(result.params, spec, dataset.x_train, dataset.x_test, seed=seed)

    return register_method(name, fn, stochastic=True, description=description, train=train)


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def method_names() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_builtins()
    return sorted(_METHODS)


def get_method(name: str) -> Method:
    """The registered method ``name``; a one-line :class:`UserError` if unknown."""
    _load_builtins()
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
