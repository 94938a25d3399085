"""The meta-learning inner task: a rule training a sampled network on a sampled task.

Implements the truncated-task interface of :mod:`metaunsup.inner.task`
(``init`` / ``unroll`` / meta-loss), so gradient estimators (TBPTT, ES, PES)
never see rules, data or augmentations.

Per inner step: draw an unlabeled batch of the task's dataset, augment it, apply
the task's input permutation, and let the rule update the network; then draw a
labelled episode (``n_way`` classes x ``shots`` support + ``shots`` query),
featurise it with the current network (batch-norm statistics of the unlabeled
batch), and score the few-shot ridge meta-objective (Metz et al. 2019, sec. 4.1)
with the augmentation parameters appended to the targets. The truncation's
meta-loss is the mean over its steps. A task that has reached its sampled total
length is re-initialised (new dataset, permutation, classes, length, network)
at the start of the next truncation.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from metaunsup.inner.task import remat_scan, tree_all_finite
from metaunsup.inner.unroll import InnerState, init_inner_state, inner_step
from metaunsup.objectives import RidgeConfig, centred_one_hot
from metaunsup.rules.base import UpdateRule
from metaunsup.tasks.augment import augment
from metaunsup.tasks.distribution import TaskDistConfig
from metaunsup.tasks.episode import draw_episode, ridge_score
from metaunsup.tasks.pool import DataPool, sample_classes, sample_unlabeled
from metaunsup.types import Array, MetaParams, Metrics, PRNGKey


class RuleTaskState(NamedTuple):
    """Persistent state of one task.

    Attributes:
      inner: the inner loop's carry (network params, rule state, step, key).
      dataset_id: int32 scalar, which dataset of the pool.
      perm: [D] int32 fixed permutation of the input dimensions.
      classes: [n_way] int32 global class ids of the episodes.
      length: int32 scalar, total inner steps before the task resets.
    """

    inner: InnerState
    dataset_id: Array
    perm: Array
    classes: Array
    length: Array


@dataclasses.dataclass(frozen=True, eq=False)
class RuleTask:
    """An inner task for meta-training ``rule`` on tasks drawn from ``pool``.

    Build it inside the jitted function that receives ``pool`` as an argument,
    so the data is an input of the computation rather than a baked-in constant.

    Attributes:
      rule: the rule meta-trained.
      dist: the task distribution.
      pool: the data.
      ridge: the meta-objective's ridge settings.
      episodes_at_end: fresh episodes averaged by :meth:`episode_loss`.
      ref_size: examples of the unlabeled batch whose statistics normalise the
        features in :meth:`episode_loss` (as ``SuiteConfig.ref_size``); within a
        truncation the step's own minibatch does.
    """

    rule: UpdateRule
    dist: TaskDistConfig
    pool: DataPool
    ridge: RidgeConfig = RidgeConfig()
    episodes_at_end: int = 2
    ref_size: int = 256

    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.dist.resolution, self.dist.resolution)

    def init(self, meta_params: MetaParams, key: PRNGKey) -> RuleTaskState:
        """A fresh task: dataset, permutation, classes, length, network."""
        k_ds, k_perm, k_cls, k_len, k_inner = jax.random.split(key, 5)
        dataset_id = jax.random.randint(k_ds, (), 0, self.pool.num_datasets)
        dim = self.pool.dim
        perm = (jax.random.permutation(k_perm, dim) if self.dist.permute_inputs
                else jnp.arange(dim)).astype(jnp.int32)
        classes = sample_classes(k_cls, self.pool, dataset_id, self.dist.n_way)
        lo, hi = self.dist.length_range
        length = jax.random.randint(k_len, (), lo, hi + 1)
        inner = init_inner_state(self.rule, meta_params, key=k_inner)
        return RuleTaskState(inner, dataset_id, perm, classes.astype(jnp.int32), length)

    def _augment(self, key: PRNGKey, x: Array, perm: Array,
                 dataset_id: Array) -> tuple[Array, Array]:
        x_aug, aug = augment(key, x, self.image_shape, self.dist.augment,
                             geometric=self.pool.dataset_image[dataset_id])
        return x_aug[:, perm], aug

    def _score(self, params, x_bn: Array, state: RuleTaskState,
               key: PRNGKey) -> tuple[Array, Array]:
        """Ridge meta-objective of a fresh augmented episode: (loss, accuracy).

        The episode (``shots`` support + ``shots`` query examples per class,
        :func:`metaunsup.tasks.episode.episode`) has the augmentation parameters
        appended to its targets; features use the batch-norm statistics of the
        unlabeled batch ``x_bn``.
        """
        d = self.dist
        ex, labels, aug, order = draw_episode(key, self.pool, state.classes, state.perm,
                                              self.pool.dataset_image[state.dataset_id],
                                              shots=d.shots, query=d.shots,
                                              image_shape=self.image_shape,
                                              augment_config=d.augment)
        targets = jnp.concatenate(
            [centred_one_hot(labels, d.n_way), d.augment.aux_weight * aug], axis=1)
        _, loss, acc = ridge_score(params, self.rule.net, ex, targets, x_bn,
                                   n_support=d.n_way * d.shots, num_classes=d.n_way,
                                   ridge=self.ridge, order=order)
        return loss, acc

    def _batch(self, key: PRNGKey, state: RuleTaskState, size: int) -> Array:
        k_x, k_xa = jax.random.split(key)
        x = sample_unlabeled(k_x, self.pool, state.dataset_id, size)
        return self._augment(k_xa, x, state.perm, state.dataset_id)[0]

    def step_loss(self, meta_params: MetaParams, state: RuleTaskState,
                  key: PRNGKey) -> tuple[RuleTaskState, Array, Array]:
        """One inner step and the meta-objective after it: (state, loss, accuracy)."""
        k_x, k_ep = jax.random.split(key)
        x = self._batch(k_x, state, self.dist.batch_size)
        inner, _ = inner_step(self.rule, meta_params, state.inner, x)
        state = state._replace(inner=inner)
        loss, acc = self._score(inner.params, x, state, k_ep)
        return state, loss, acc

    def episode_loss(self, meta_params: MetaParams, key: PRNGKey,
                     num_steps: Array) -> tuple[Array, Metrics]:
        """A fresh task trained for ``num_steps`` (may be traced) steps, scored at the end.

        The score is the ridge meta-objective averaged over ``episodes_at_end``
        fresh episodes, with batch-norm statistics of an unlabeled batch of
        ``ref_size`` examples. Everything random derives from ``key``, so members of an ES
        population given the same key share the task, the initial network, the
        minibatches and the episodes (common random numbers).
        """
        k_init, k_run, k_ref, k_ep = jax.random.split(key, 4)
        state = self.init(meta_params, k_init)

        def body(t, inner):
            x = self._batch(jax.random.fold_in(k_run, t), state, self.dist.batch_size)
            return inner_step(self.rule, meta_params, inner, x)[0]

        inner = jax.lax.fori_loop(0, num_steps, body, state.inner)
        x_ref = self._batch(k_ref, state, self.ref_size)
        losses, accs = jax.vmap(lambda k: self._score(inner.params, x_ref, state, k))(
            jax.random.split(k_ep, self.episodes_at_end))
        finite = tree_all_finite(inner.params)
        loss = jnp.where(finite, jnp.mean(losses), 2.0)  # cosine loss is at most 2
        acc = jnp.where(finite, jnp.mean(accs), 0.0)
        return loss, {"accuracy": acc, "finite": finite.astype(jnp.float32),
                      "horizon": jnp.asarray(num_steps, jnp.float32)}

    def unroll(self, meta_params: MetaParams, state: RuleTaskState, key: PRNGKey,
               num_steps: int, *, remat: bool | str = False) -> tuple[RuleTaskState, Array, Metrics]:
        """Runs one truncation of ``num_steps`` inner steps.

        With ``remat=True``, each step's activations are recomputed in the
        backward pass (``jax.checkpoint``) instead of stored: one task state per
        step is still kept, so memory stays linear in the steps, with a much
        smaller constant; ``remat="dots"`` also keeps each step's matrix
        products, so the backward pass recomputes only the elementwise work.
        ``remat="nested"`` (``inner.task.nested_scan``) keeps about 2 sqrt(num_steps)
        states instead (measured: experiments/README.md, issue 14).

        Returns:
          The new state, the mean meta-loss over the truncation, and metrics
          (``accuracy``: mean episode accuracy, ``accuracy_first`` /
          ``accuracy_last``: after the first / last step; ``reset``: 1.0 if the
          task was re-initialised at the start of this truncation).
        """
        k_reset, k_steps = jax.random.split(key)
        done = state.inner.step >= state.length
        fresh = self.init(meta_params, k_reset)
        state = optax.tree.where(done, fresh, state)

        def body(s, k):
            s, loss, acc = self.step_loss(meta_params, s, k)
            return s, (loss, acc)

        keys = jax.random.split(k_steps, num_steps)
        # With per-step remat, unrolling two steps per loop iteration measured 1.4x
        # faster backward passes on XLA:CPU (77 -> 56 ms per inner step); without remat
        # it did not help and only lengthens compilation.
        unroll = 2 if remat and num_steps > 1 else 1
        state, (losses, accs) = remat_scan(body, state, keys, remat, unroll=unroll)
        metrics = {"accuracy": jnp.mean(accs), "accuracy_first": accs[0],
                   "accuracy_last": accs[-1], "reset": done.astype(jnp.float32),
                   "inner_step": state.inner.step.astype(jnp.float32)}
        return state, jnp.mean(losses), metrics

    def is_finite(self, state: RuleTaskState) -> Array:
        """Boolean scalar: every network weight is finite (else the task diverged)."""
        return tree_all_finite(state.inner.params)
