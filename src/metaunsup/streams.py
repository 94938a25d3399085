"""Named random streams: every key and generator derived from a seed, in one table.

Each stream is a function of the seed (and a counter where there is one), so two
callers that need the same draw call the same function, and no module writes a
stream id of its own. The ids are those the code has always used: changing one
changes recorded results (golden files, ``experiments/``), so they are fixed.

- :func:`run_keys`: ``split(PRNGKey(seed), 3)``, a gradient run's (meta-parameter
  init, first tasks, outer loop) keys.
- :func:`meta_init_key`: ``run_keys(seed)[0]``, or ``PRNGKey(init_key)``: a gradient
  run's step-0 theta.
- :func:`residual_start_key`: ``PRNGKey(seed)``, or ``PRNGKey(init_key)``: an evolution
  strategy's start (theta = 0 of its residual).
- :func:`task_reset_key`: ``fold_in(fold_in(PRNGKey(seed), TASK_RESET), step)``: the
  tasks drawn afresh when a run's architecture changes.
- :func:`arch_rng`: ``default_rng([seed, ARCH, group])``: the architecture of a run's
  group ``group``.
- :func:`method_key`, :func:`method_keys`: ``PRNGKey(seed)`` and its two halves, a
  method's (initial network, data order) for probe seed ``seed``: every method of a
  seed starts from the network of the first (``inner.unroll.initial_params``).
- :func:`reference_rng`: ``default_rng([seed, REFERENCE])``: the rows of the
  batch-norm reference batch (:mod:`metaunsup.models.featurize`).
- :func:`query_rng`: ``default_rng([seed, QUERY])``: the seeded subset of test
  examples a probe scores on.
- :func:`task_reference_key`: ``fold_in(key_episode, TASK_REFERENCE)``: a validation
  suite task's batch-norm reference batch.

Per-task streams of the validation suite (``tasks.suite``: ``fold_in(PRNGKey(seed),
task)`` split six ways) and of the evolution strategies (``outer.evolve``) are
documented where they are drawn.
"""
from __future__ import annotations

import jax
import numpy as np

from metaunsup.types import PRNGKey

ARCH = 7
"""Stream id of the architecture groups of a run (numpy)."""
TASK_RESET = 11
"""Stream id of the tasks drawn afresh when a run's architecture changes (JAX)."""
REFERENCE = 2
"""Stream id of the batch-norm reference batch (numpy)."""
QUERY = 1
"""Stream id of a probe's test subset (numpy)."""
TASK_REFERENCE = 1
"""Stream id, within a suite task's episode key, of its batch-norm reference batch (JAX)."""


def run_keys(seed: int) -> tuple[PRNGKey, PRNGKey, PRNGKey]:
    """(meta-parameter init, first tasks, outer loop) keys of a run seeded by ``seed``."""
    k_meta, k_tasks, k_loop = jax.random.split(jax.random.PRNGKey(seed), 3)
    return k_meta, k_tasks, k_loop


def meta_init_key(seed: int, init_key: int = -1) -> PRNGKey:
    """The key of a gradient run's step-0 meta-parameters: from ``seed``, or
    ``PRNGKey(init_key)`` when a recipe sets ``init_key >= 0``."""
    return run_keys(seed)[0] if init_key < 0 else jax.random.PRNGKey(init_key)


def residual_start_key(seed: int, init_key: int = -1) -> PRNGKey:
    """The key of an evolution strategy's starting point (theta = 0 of its residual)."""
    return jax.random.PRNGKey(seed if init_key < 0 else init_key)


def task_reset_key(seed: int, step: int) -> PRNGKey:
    """The key of the tasks a run draws afresh at outer step ``step``."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), TASK_RESET), step)


def arch_rng(seed: int, group: int) -> np.random.Generator:
    """The generator of architecture group ``group`` of a run seeded by ``seed``."""
    return np.random.default_rng([seed, ARCH, group])


def method_key(seed: int) -> PRNGKey:
    """The key a method trains with for probe seed ``seed`` (``inner.train.train(key=...)``)."""
    return jax.random.PRNGKey(int(seed))


def method_keys(seed: int) -> tuple[PRNGKey, PRNGKey]:
    """(initial network, data order) keys of a method run for probe seed ``seed``: the
    halves ``inner.train.train`` splits :func:`method_key` into."""
    k_init, k_data = jax.random.split(method_key(seed))
    return k_init, k_data


def reference_rng(seed: int) -> np.random.Generator:
    """The generator that picks the batch-norm reference batch for ``seed``."""
    return np.random.default_rng([int(seed), REFERENCE])


def query_rng(seed: int) -> np.random.Generator:
    """The generator that picks a probe's test subset for ``seed``."""
    return np.random.default_rng([int(seed), QUERY])


def task_reference_key(key_episode: PRNGKey) -> PRNGKey:
    """The key of a suite task's unlabeled reference batch, from the task's episode key."""
    return jax.random.fold_in(key_episode, TASK_REFERENCE)


def key_data(key: PRNGKey) -> list[int]:
    """A key's two uint32 words, as recorded in a rule file's provenance."""
    return [int(v) for v in np.asarray(jax.random.key_data(key)).reshape(-1)]


def from_key_data(words) -> PRNGKey:
    """The key recorded by :func:`key_data`."""
    return jax.numpy.asarray(np.asarray(words, np.uint32))


__all__ = ["ARCH", "QUERY", "REFERENCE", "TASK_REFERENCE", "TASK_RESET", "arch_rng",
           "from_key_data", "key_data", "meta_init_key", "method_key", "method_keys", "query_rng",
           "reference_rng", "residual_start_key", "run_keys", "task_reference_key",
           "task_reset_key"]
