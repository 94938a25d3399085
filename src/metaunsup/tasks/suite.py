"""A fixed, seeded suite of validation tasks on which rules are compared *paired*.

Every task is drawn from the validation split of the meta-training datasets
(glyphs and digits test splits; never MNIST, Fashion-MNIST or the text set) and
fixes everything that varies between tasks: the dataset, a random input
permutation, the 10 classes of the few-shot episode, the initial network, the
sequence of augmented unlabeled minibatches, and the augmented support/query
episode. Tasks are spread over a few fixed architecture groups (the paper's
4 x 128 + 32 network, a deeper and a wider one, and other activations) so that
one compilation serves all tasks of a group (they are ``vmap``-ed).

Two rules run on the same suite therefore see identical tasks, initial
networks, minibatches and episodes, and their per-task scores can be compared
pair by pair (:mod:`metaunsup.eval.validate`). The suite depends only on
:class:`SuiteConfig` (seed included), not on the rule or the machine.

Scores per task and horizon (inner steps): the features of the support and
query examples (for the logistic probe, computed outside JAX), and the ridge
meta-objective (loss and accuracy; :func:`metaunsup.objectives.ridge_meta_loss`)
fitted on the support set and scored on the query set.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.errors import UserError
from metaunsup.inner.task import tree_all_finite
from metaunsup.inner.unroll import init_inner_state, inner_step
from metaunsup.models import MLPSpec, bn_stats, features
from metaunsup.objectives import RidgeConfig, centred_one_hot, ridge_meta_loss
from metaunsup.tasks.augment import AugmentConfig, augment
from metaunsup.tasks.pool import DataPool, build_pool, sample_classes, sample_episode, sample_unlabeled
from metaunsup.types import Array, MetaParams, PRNGKey

# (name, widths bottom to top, activation, share of the tasks). The paper's
# evaluation network gets half of the tasks.
ARCH_GROUPS: tuple[tuple[str, tuple[int, ...], str, int], ...] = (
    ("paper", (128, 128, 128, 128, 32), "relu", 4),
    ("deep", (128,) * 7 + (32,), "relu", 1),
    ("wide", (512, 512, 32), "relu", 1),
    ("tanh", (128, 128, 128, 128, 32), "tanh", 1),
    ("swish", (128, 128, 128, 128, 32), "swish", 1),
    ("sigmoid", (128, 128, 128, 128, 32), "sigmoid", 1),
    ("leaky_relu", (128, 128, 128, 128, 32), "leaky_relu", 1),
    ("deep_wide", (256,) * 5 + (32,), "relu", 1),
    ("tiny", (32, 16), "relu", 1),  # for tests and smoke runs only
)
DEFAULT_GROUPS = ("paper", "deep", "wide", "tanh", "swish")

SUITE_DATASETS = ("glyphs", "digits")


def arch_spec(name: str, n_in: int) -> MLPSpec:
    """The base network of architecture group ``name`` (see :data:`ARCH_GROUPS`)."""
    for g in ARCH_GROUPS:
        if g[0] == name:
            return MLPSpec(n_in=n_in, widths=g[1], activation=g[2])
    raise UserError(f"unknown architecture {name!r}; choose one of "
                    f"{', '.join(g[0] for g in ARCH_GROUPS)}")
# Glyphs are rendered; their validation split gets enough examples per class for
# disjoint support and query sets (the default test split has only 10).
_GLYPH_VALID_PER_CLASS = 30


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """What the validation suite looks like.

    Attributes:
      tasks: number of tasks N (spread over ``groups`` by their shares).
      steps: the long horizon S (inner steps), as in the demo.
      short_steps: the short horizon (reported beside S).
      seed: everything about the tasks derives from it.
      resolution: image side (meta-training uses <= 16).
      batch_size: unlabeled examples per inner step.
      n_way: classes per episode.
      shots: labelled support examples per class.
      query: query examples per class.
      groups: names of the architecture groups used (subset of ``ARCH_GROUPS``).
      augment: per-example augmentation of unlabeled batches and episodes.
      permute_inputs: a fixed random input permutation per task.
      ref_size: unlabeled examples whose batch statistics normalise the features.
    """

    tasks: int = 64
    steps: int = 1000
    short_steps: int = 100
    seed: int = 0
    resolution: int = 14
    batch_size: int = 64
    n_way: int = 10
    shots: int = 10
    query: int = 20
    groups: tuple[str, ...] = DEFAULT_GROUPS
    augment: AugmentConfig = AugmentConfig()
    permute_inputs: bool = True
    ref_size: int = 256

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(self.groups))
        for f in ("tasks", "steps", "batch_size", "n_way", "shots", "query", "ref_size"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise UserError(f"suite {f} must be a positive integer, got {v!r}")
        if not 0 <= self.short_steps <= self.steps:
            raise UserError(f"suite short_steps must be in [0, steps={self.steps}], "
                            f"got {self.short_steps}")
        known = [g[0] for g in ARCH_GROUPS]
        bad = [g for g in self.groups if g not in known]
        if bad or not self.groups:
            raise UserError(f"suite groups must be names from {known}, got {list(self.groups)}")
        if self.seed < 0:
            raise UserError(f"suite seed must be >= 0, got {self.seed}")

    @property
    def horizons(self) -> tuple[int, ...]:
        return tuple(sorted({self.short_steps, self.steps}))


class SuiteGroup(NamedTuple):
    """The tasks of one architecture group (leading axis: tasks of the group).

    Attributes:
      name: group name.
      spec: the base network (without ``n_in`` until bound to a pool).
      index: [n] positions of these tasks in the whole suite.
      dataset_id, perm, classes: per-task data choices.
      key_init, key_data, key_episode: per-task PRNG keys.
    """

    name: str
    spec: MLPSpec
    index: np.ndarray
    dataset_id: Array
    perm: Array
    classes: Array
    key_init: Array
    key_data: Array
    key_episode: Array


def load_suite_pool(config: SuiteConfig) -> DataPool:
    """The validation pool: glyphs and digits held-out splits at ``config.resolution``."""
    from metaunsup.data import load

    arrays = []
    for name in SUITE_DATASETS:
        opts = {"test_per_class": _GLYPH_VALID_PER_CLASS} if name == "glyphs" else {}
        ds = load(name, resolution=config.resolution, **opts)
        arrays.append((np.asarray(ds.x_test, np.float32).reshape(len(ds.y_test), -1),
                       np.asarray(ds.y_test)))
    pool = build_pool(arrays, max_per_class=400, seed=config.seed)
    need = config.shots + config.query
    if int(jnp.min(pool.class_count)) < need:
        raise UserError(f"suite needs {need} examples per class (shots + query); the "
                        f"validation pool has only {int(jnp.min(pool.class_count))}")
    return pool


def group_sizes(config: SuiteConfig) -> dict[str, int]:
    """How many tasks each group gets (by its share; every group at least one)."""
    shares = {g[0]: g[3] for g in ARCH_GROUPS if g[0] in config.groups}
    total = sum(shares.values())
    sizes = {g: max(1, int(config.tasks * s // total)) for g, s in shares.items()}
    first = next(iter(sizes))
    sizes[first] += config.tasks - sum(sizes.values())  # the first group takes the rest
    if sizes[first] < 1:
        raise UserError(f"suite needs at least {len(sizes)} tasks for groups "
                        f"{list(sizes)}, got {config.tasks}")
    return sizes


def build_suite(config: SuiteConfig, pool: DataPool) -> list[SuiteGroup]:
    """The suite's tasks, grouped by architecture (deterministic in ``config``)."""
    arch = {g[0]: g for g in ARCH_GROUPS}
    root = jax.random.PRNGKey(config.seed)
    groups, start = [], 0
    for name, n in group_sizes(config).items():
        _, widths, activation, _ = arch[name]
        keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(jnp.arange(start, start + n))
        ks = jax.vmap(lambda k: jax.random.split(k, 6))(keys)  # [n, 6, 2]
        dataset_id = jax.vmap(
            lambda k: jax.random.randint(k, (), 0, pool.num_datasets))(ks[:, 0])
        perm = jax.vmap(lambda k: jax.random.permutation(k, pool.dim) if config.permute_inputs
                        else jnp.arange(pool.dim))(ks[:, 1]).astype(jnp.int32)
        classes = jax.vmap(lambda k, d: sample_classes(k, pool, d, config.n_way))(
            ks[:, 2], dataset_id).astype(jnp.int32)
        spec = MLPSpec(n_in=pool.dim, widths=widths, activation=activation)
        groups.append(SuiteGroup(name, spec, np.arange(start, start + n), dataset_id, perm,
                                 classes, ks[:, 3], ks[:, 4], ks[:, 5]))
        start += n
    return groups


class TaskScores(NamedTuple):
    """Outputs of one task at every horizon (leading axis: horizons).

    Attributes:
      support: [H, n_way * shots, F] support features.
      query: [H, n_way * query, F] query features.
      ridge_loss: [H] ridge meta-objective (cosine loss) on the episode.
      ridge_accuracy: [H] its classification accuracy.
      finite: [H] whether every network parameter is finite.
    """

    support: Array
    query: Array
    ridge_loss: Array
    ridge_accuracy: Array
    finite: Array


def _episode(config: SuiteConfig, pool, classes, perm, key):
    k_ep, k_aug = jax.random.split(key)
    per = config.shots + config.query
    x, labels = sample_episode(k_ep, pool, classes, per)
    image = (config.resolution, config.resolution)
    x, _ = augment(k_aug, x, image, config.augment)
    x = x[:, perm]
    is_support = (jnp.arange(labels.shape[0]) % per) < config.shots
    order = jnp.argsort(~is_support, stable=True)  # support first, grouped by class
    return x[order], labels[order]


def run_task(config: SuiteConfig, rule, meta_params: MetaParams, pool: DataPool,
             dataset_id, perm, classes, key_init, key_data, key_episode) -> TaskScores:
    """Trains the task's network with ``rule`` and scores it at every horizon."""
    image = (config.resolution, config.resolution)
    net = rule.net
    ridge = RidgeConfig()
    ex, labels = _episode(config, pool, classes, perm, key_episode)
    k_ref, k_ref_aug = jax.random.split(jax.random.fold_in(key_episode, 1))
    ref, _ = augment(k_ref_aug, sample_unlabeled(k_ref, pool, dataset_id, config.ref_size),
                     image, config.augment)
    ref = ref[:, perm]
    n_s = config.n_way * config.shots
    targets = centred_one_hot(labels, config.n_way)

    def score(params):
        f = features(params, ex, net, bn_stats(params, ref, net))
        loss, acc = ridge_meta_loss(f[:n_s], targets[:n_s], f[n_s:], targets[n_s:], ridge,
                                    num_classes=config.n_way)
        finite = tree_all_finite(params)
        return f[:n_s], f[n_s:], loss, acc, finite

    def body(inner, t):
        k = jax.random.fold_in(key_data, t)
        k_x, k_aug = jax.random.split(k)
        x = sample_unlabeled(k_x, pool, dataset_id, config.batch_size)
        x, _ = augment(k_aug, x, image, config.augment)
        inner, _ = inner_step(rule, meta_params, inner, x[:, perm])
        return inner, None

    def segment(inner, bounds):
        # One loop body and one scoring in the program, whatever the number of
        # horizons (compilation, not run time, dominates small suites).
        inner = jax.lax.fori_loop(bounds[0], bounds[1], lambda t, s: body(s, t)[0], inner)
        return inner, score(inner.params)

    inner = init_inner_state(rule, meta_params, key=key_init)
    ends = jnp.asarray(config.horizons, jnp.int32)
    bounds = jnp.stack([jnp.concatenate([jnp.zeros((1,), jnp.int32), ends[:-1]]), ends], axis=1)
    _, outs = jax.lax.scan(segment, inner, bounds)
    return TaskScores(*outs)


@partial(jax.jit, static_argnums=(0, 1))
def _run_group_jit(config, rule, meta_params, pool, dataset_id, perm, classes, key_init,
                   key_data, key_episode):
    return jax.vmap(lambda *a: run_task(config, rule, meta_params, pool, *a))(
        dataset_id, perm, classes, key_init, key_data, key_episode)


def run_group(config: SuiteConfig, rule, meta_params: MetaParams, pool: DataPool,
              group: SuiteGroup) -> TaskScores:
    """Runs ``rule`` (built for ``group.spec``) on every task of ``group`` (vmapped)."""
    if rule.net != group.spec:
        raise ValueError(f"rule built for {rule.net}, group needs {group.spec}")
    return _run_group_jit(config, rule, meta_params, pool, group.dataset_id, group.perm,
                          group.classes, group.key_init, group.key_data, group.key_episode)


def episode_labels(config: SuiteConfig) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the support and query rows of every task's episode."""
    classes = np.arange(config.n_way)
    return np.repeat(classes, config.shots), np.repeat(classes, config.query)


__all__ = ["ARCH_GROUPS", "DEFAULT_GROUPS", "SuiteConfig", "SuiteGroup", "TaskScores", "build_suite",
           "episode_labels", "group_sizes", "load_suite_pool", "run_group", "run_task"]
