"""A residual parameterisation of a rule around a fixed, hand-designed starting point.

Small-compute searches over learning rules do best in a few well-chosen
dimensions around a good hand-designed rule (Confavreux et al., NeurIPS 2020;
Shervani-Tabar & Rosenbaum, arXiv:2210.16414). Here the search variable is a
vector ``theta`` [n] and the rule's meta-parameters are::

    meta_params(theta) = start + sum_i theta_i * scale_i * e_i

where ``e_i`` is the unit vector of one scalar of the meta-parameter tree
(a :class:`Coordinate`). ``theta = 0`` is the start exactly. Every scalar of
a learned rule's tree gets a readable name (:func:`coordinates`), e.g.
``mix[soft_hebb]`` (a plane's mixing weight in every layer),
``mix[top:decay]`` (its offset in the top layer only), ``log_lr``,
``log_lr[bottom]``, ``log_tau``, ``bias[z]``; a search picks a subset by name.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.errors import UserError
from metaunsup.types import Array, MetaParams

KINDS = ("bottom", "middle", "top")
"""Weight-layer kinds of the learned rule's per-kind offsets (``learned._weight_kind``)."""
_BIAS_INPUTS = ("z", "a")  # the bias read-out's inputs without a unit net


@dataclasses.dataclass(frozen=True)
class Coordinate:
    """One scalar of a meta-parameter tree.

    Attributes:
      name: readable name (module docstring).
      path: dict keys from the root of the tree to the leaf.
      index: index of the scalar within the leaf (``()`` for a scalar leaf).
      scale: meta-parameter change per unit of theta.
    """

    name: str
    path: tuple[str, ...]
    index: tuple[int, ...]
    scale: float = 1.0


def _leaf(tree: MetaParams, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def coordinates(config, meta_params: MetaParams) -> tuple[Coordinate, ...]:
    """Every scalar of a learned rule's ``meta_params``, named (``config``: its
    :class:`~metaunsup.rules.learned_config.LearnedRuleConfig`).

    Rules with a unit net or learned read-outs have too many scalars to name one
    by one; only the mixing, step-size, temperature and bias parts are named and
    any other leaf is an error.
    """
    labels = [lab[:-3] if config.rank == 1 and lab.endswith("[0]") else lab
              for lab in config.plane_labels]
    named = {("mix", "w"), ("mix", "kind"), ("mix", "log_tau"), ("log_lr",), ("log_lr_kind",),
             ("bias", "w"), ("bias", "b")}
    leaves = [tuple(str(getattr(k, "key", k)) for k in path)
              for path, _ in jax.tree_util.tree_flatten_with_path(meta_params)[0]]
    other = [p for p in leaves if p not in named]
    if other:
        raise UserError(f"residual search: cannot name meta-parameter {'/'.join(other[0])}; "
                        "use a rule without a unit net and learned read-outs (e.g. 'pool')")
    out = []
    for i, lab in enumerate(labels):
        out.append(Coordinate(f"mix[{lab}]", ("mix", "w"), (i,)))
    if ("mix", "kind") in leaves:
        for k, kind in enumerate(KINDS):
            for i, lab in enumerate(labels):
                out.append(Coordinate(f"mix[{kind}:{lab}]", ("mix", "kind"), (k, i)))
    if ("mix", "log_tau") in leaves:
        out.append(Coordinate("log_tau", ("mix", "log_tau"), ()))
    if ("log_lr",) in leaves:
        out.append(Coordinate("log_lr", ("log_lr",), ()))
    if ("log_lr_kind",) in leaves:
        out.extend(Coordinate(f"log_lr[{kind}]", ("log_lr_kind",), (k,))
                   for k, kind in enumerate(KINDS))
    width = int(np.shape(_leaf(meta_params, ("bias", "w")))[0])
    names = _BIAS_INPUTS if width == len(_BIAS_INPUTS) else [str(i) for i in range(width)]
    out.extend(Coordinate(f"bias[{n}]", ("bias", "w"), (i,)) for i, n in enumerate(names))
    out.append(Coordinate("bias[const]", ("bias", "b"), ()))
    return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class Residual:
    """``theta -> start + sum_i theta_i scale_i e_i`` (pure; jit- and vmap-able).

    Attributes:
      start: the meta-parameters at ``theta = 0``.
      coords: the searched coordinates, in theta order.
    """

    start: MetaParams
    coords: tuple[Coordinate, ...]

    @property
    def size(self) -> int:
        return len(self.coords)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.coords)

    def zeros(self) -> Array:
        return jnp.zeros((self.size,), jnp.float32)

    def __call__(self, theta: Array) -> MetaParams:
        """The meta-parameters of ``theta`` [n] (a tree shaped like ``start``)."""
        theta = jnp.asarray(theta, jnp.float32)
        if theta.shape != (self.size,):
            raise UserError(f"residual: theta must have shape ({self.size},), got {theta.shape}")
        tree = jax.tree_util.tree_map(jnp.asarray, self.start)
        flat = dict(_flatten(tree))
        for i, c in enumerate(self.coords):
            leaf = flat[c.path]
            flat[c.path] = leaf.at[c.index].add((c.scale * theta[i]).astype(leaf.dtype))
        return _unflatten(tree, flat)

    def select(self, names: Sequence[str]) -> "Residual":
        """The same start, searching only the coordinates ``names`` (in that order)."""
        by_name = {c.name: c for c in self.coords}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UserError(f"residual: unknown direction {missing[0]!r}; known: "
                            f"{', '.join(by_name)}")
        if len(set(names)) != len(names):
            raise UserError(f"residual: directions must be distinct, got {list(names)}")
        return Residual(self.start, tuple(by_name[n] for n in names))

    def scaled(self, scales: dict[str, float]) -> "Residual":
        """The same directions with the scales of some replaced (name -> scale)."""
        return Residual(self.start, tuple(dataclasses.replace(c, scale=float(scales[c.name]))
                                          if c.name in scales else c for c in self.coords))


def _flatten(tree: MetaParams, prefix: tuple[str, ...] = ()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _unflatten(template: MetaParams, flat: dict, prefix: tuple[str, ...] = ()) -> MetaParams:
    return {k: (_unflatten(v, flat, prefix + (k,)) if isinstance(v, dict) else flat[prefix + (k,)])
            for k, v in template.items()}


def residual_around(rule, start: MetaParams, names: Sequence[str] = ()) -> Residual:
    """The residual search of a learned ``rule`` around ``start`` over ``names``
    (default: every named coordinate)."""
    full = Residual(start, coordinates(rule.config, start))
    return full.select(names) if names else full


__all__ = ["Coordinate", "KINDS", "Residual", "coordinates", "residual_around"]
