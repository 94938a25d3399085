"""A population of rules scored on shared tasks: the fitness of evolution strategies.

Every member of a population (M meta-parameter trees stacked on a leading axis)
trains the same T tasks: the same data family, input permutation, classes,
initial network, minibatches and few-shot episodes (common random numbers).
The tasks are built like the validation suite's (:mod:`metaunsup.tasks.suite`,
``build_suite`` + ``run_task``: one episode builder for training and
validation) but from the *training* split of the meta-training families, with
a new seed every generation. All M x T inner runs of one architecture group are
one compiled program (``vmap`` over members of ``vmap`` over tasks), whatever
the horizon (it is traced).

Fitness is *paired*: a member's score minus a reference member's (the search's
starting point) on the same tasks, averaged over tasks, so the task-to-task
spread, which dwarfs the differences between nearby rules, cancels.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.errors import UserError
from metaunsup.eval.probes import ProbeConfig, logreg_accuracy
from metaunsup.tasks.pool import DataPool
from metaunsup.tasks.suite import SuiteConfig, SuiteGroup, TaskScores, episode_labels, run_task
from metaunsup.types import MetaParams

MEASURES = ("ridge_loss", "ridge_accuracy", "probe")
"""Fitness measures (lower is better for all, as scored here): the ridge
meta-objective's cosine loss, minus its accuracy, or minus the logistic-probe
accuracy of the held-out protocol (computed on the host)."""


@partial(jax.jit, static_argnums=(0, 1))
def _scores_jit(config: SuiteConfig, rule, members: MetaParams, pool: DataPool, dataset_id, perm,
                classes, key_init, key_data, key_episode, horizons) -> TaskScores:
    def member(mp):
        return jax.vmap(lambda *a: run_task(config, rule, mp, pool, *a, horizons=horizons))(
            dataset_id, perm, classes, key_init, key_data, key_episode)

    return jax.vmap(member)(members)


def population_scores(config: SuiteConfig, rule, members: MetaParams, pool: DataPool,
                      group: SuiteGroup, horizons) -> TaskScores:
    """Scores of every member on every task of ``group`` at ``horizons``.

    Args:
      config: the suite settings (episode sizes, batch size, augmentation).
      rule: the rule built for ``group.spec``.
      members: meta-parameter trees stacked on a leading axis M.
      pool: the data the tasks draw from.
      group: the tasks (``tasks.suite.build_suite``).
      horizons: increasing inner-step counts at which to score (traced: any
        values reuse one compilation for the same number of horizons).

    Returns:
      :class:`~metaunsup.tasks.suite.TaskScores` with leading axes [M, T, H].
    """
    if rule.net != group.spec:
        raise UserError(f"rule built for {rule.net}, group needs {group.spec}")
    horizons = jnp.asarray(horizons, jnp.int32)
    return _scores_jit(config, rule, members, pool, group.dataset_id, group.perm, group.classes,
                       group.key_init, group.key_data, group.key_episode, horizons)


def member_loss(config: SuiteConfig, scores: TaskScores, measure: str,
                probe: ProbeConfig = ProbeConfig()) -> np.ndarray:
    """[M, T] loss of every member on every task (mean over horizons; lower is better).

    A diverged run (non-finite parameters or features) scores as chance: ridge
    loss 1 (the cosine loss of a zero prediction), accuracy ``1 / n_way``.
    """
    if measure not in MEASURES:
        raise UserError(f"fitness measure must be one of {MEASURES}, got {measure!r}")
    s = jax.device_get(scores)
    ok = np.asarray(s.finite, bool) & np.isfinite(s.ridge_loss)
    chance = 1.0 / config.n_way
    if measure == "ridge_loss":
        values = np.where(ok, s.ridge_loss, 1.0)
    elif measure == "ridge_accuracy":
        values = -np.where(ok, s.ridge_accuracy, chance)
    else:
        ys, yq = episode_labels(config)
        values = np.empty(ok.shape)
        for idx in np.ndindex(ok.shape):
            fs, fq = s.support[idx], s.query[idx]
            good = ok[idx] and np.all(np.isfinite(fs)) and np.all(np.isfinite(fq))
            values[idx] = -(logreg_accuracy(fs, ys, fq, yq, config=probe) if good else chance)
    return np.asarray(values, np.float64).mean(axis=-1)


def paired_fitness(losses: np.ndarray, reference: int) -> np.ndarray:
    """[M] mean over tasks of each member's loss minus member ``reference``'s (lower is better)."""
    return np.mean(losses - losses[reference][None, :], axis=1)


def stack_members(trees: list[MetaParams]) -> MetaParams:
    """Stacks meta-parameter trees on a new leading axis."""
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *trees)


__all__ = ["MEASURES", "member_loss", "paired_fitness", "population_scores", "stack_members"]
