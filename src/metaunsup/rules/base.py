"""The interface every update rule implements, and the rule registry.

A rule is a frozen (hashable) dataclass holding its static configuration and
the base network's :class:`~metaunsup.models.MLPSpec`; it can therefore be a
static argument of ``jax.jit``. All its methods are pure functions of explicit
pytrees (as optax's ``init``/``update`` pairs are):

- ``init_meta_params(key) -> meta_params``: the rule's own parameters (theta);
  an empty dict for hand-designed rules. They never depend on the base
  network's widths or depth, so one ``meta_params`` serves any network.
- ``init_state(meta_params, params, *, key) -> rule_state``: anything the rule
  carries across inner steps (a pytree with fixed structure, shapes, dtypes).
- ``step(meta_params, params, rule_state, x, *, key) -> (params, rule_state,
  metrics)``: one unsupervised update from an unlabeled batch ``x`` [B, n_in].

To apply a rule to another network, ``dataclasses.replace(rule, net=spec)``.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec
from metaunsup.types import Array, MetaParams, Metrics, Params, PRNGKey, PyTree


@runtime_checkable
class UpdateRule(Protocol):
    name: ClassVar[str]
    net: MLPSpec

    def init_meta_params(self, key: PRNGKey) -> MetaParams: ...

    def init_state(self, meta_params: MetaParams, params: Params, *, key: PRNGKey) -> PyTree: ...

    def step(self, meta_params: MetaParams, params: Params, state: PyTree, x: Array, *,
             key: PRNGKey) -> tuple[Params, PyTree, Metrics]: ...


_RULES: dict[str, Callable[..., UpdateRule]] = {}


def register_rule(name: str, factory: Callable[..., UpdateRule]) -> None:
    """Registers ``factory(net, **options) -> UpdateRule`` under ``name``."""
    _RULES[name] = factory


def rule_names() -> list[str]:
    return sorted(_RULES)


def make_rule(name: str, net: MLPSpec, **options: Any) -> UpdateRule:
    """Builds the registered rule ``name`` for the network ``net``."""
    if name not in _RULES:
        raise UserError(f"unknown rule {name!r}; choose one of {', '.join(rule_names())}")
    return _RULES[name](net, **options)
