"""The meta-training task distribution (Metz et al. 2019, sec. 4.2 and app. B).

A task is a dataset x augmentation x architecture x inner length. Within one
meta-batch every task shares the architecture (so tasks can be ``vmap``-ed);
the architecture is re-sampled between groups of outer steps. Everything else
(dataset, a fixed random permutation of the input dimensions, per-example
shifts / rotations / noise, the classes of the few-shot episodes, the total
inner length) is sampled per task, inside jit, each time the task resets.

Held-out evaluation sets (MNIST, Fashion-MNIST, the text set) are excluded by
default; asking to meta-train on one is an error unless it is removed from
``held_out`` explicitly.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from metaunsup.errors import UserError
from metaunsup.models import ACTIVATIONS, MLPSpec
from metaunsup.tasks.augment import AugmentConfig
from metaunsup.tasks.archs import arch_spec
from metaunsup.tasks.pool import DataPool, build_pool, check_episodes, load_split

DEFAULT_HELD_OUT = ("mnist", "fashion_mnist", "movie_reviews", "text")


@dataclasses.dataclass(frozen=True)
class TaskDistConfig:
    """What tasks look like.

    Attributes:
      datasets: registry names of the meta-training datasets.
      held_out: names that may never be meta-trained on.
      resolution: common image size (all datasets are resized to it).
      depth_range: inclusive range of the number of layers (top layer included).
      width_range: inclusive range of hidden widths (sampled log-uniformly,
        rounded to ``width_multiple``).
      width_multiple: hidden widths are multiples of this.
      top_width: width of the representation layer.
      activation: nonlinearity of the base network.
      length_range: inclusive range of a task's total inner length (steps).
      batch_size: unlabeled examples per inner step.
      n_way: classes per few-shot episode of the meta-objective.
      shots: labelled examples per class in the support set (and as many in
        the query set).
      augment: per-example augmentation ranges; its parameters are targets.
      permute_inputs: apply a fixed random input permutation per task.
      max_per_class: examples kept per class in the device pool.
      architectures: if given, base networks are drawn uniformly from these
        named fixed shapes (``tasks.archs.ARCH_GROUPS``: e.g. "paper", "deep",
        "tanh") instead of from the depth and width ranges: a few shapes,
        hence a few compilations, covering the evaluation network.
    """

    datasets: tuple[str, ...] = ("glyphs", "digits")
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    resolution: int = 16
    depth_range: tuple[int, int] = (2, 5)
    width_range: tuple[int, int] = (64, 512)
    width_multiple: int = 32
    top_width: int = 32
    activation: str = "relu"
    length_range: tuple[int, int] = (100, 1000)
    batch_size: int = 64
    n_way: int = 10
    shots: int = 10
    augment: AugmentConfig = AugmentConfig()
    permute_inputs: bool = True
    max_per_class: int = 400
    architectures: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "architectures", tuple(self.architectures))
        for name in self.architectures:
            arch_spec(name, 1)  # a one-line error for an unknown name
        bad = sorted(set(self.datasets) & set(self.held_out))
        if bad:
            raise UserError(
                f"dataset(s) {', '.join(bad)} are held out for evaluation; remove them from "
                "'held_out' explicitly to meta-train on them")
        if not self.datasets:
            raise UserError("task distribution needs at least one dataset")
        lo, hi = self.depth_range
        if not 1 <= lo <= hi:
            raise UserError(f"depth_range must satisfy 1 <= lo <= hi, got {self.depth_range}")
        lo, hi = self.width_range
        if not 1 <= lo <= hi:
            raise UserError(f"width_range must satisfy 1 <= lo <= hi, got {self.width_range}")
        lo, hi = self.length_range
        if not 1 <= lo <= hi:
            raise UserError(f"length_range must satisfy 1 <= lo <= hi, got {self.length_range}")
        if self.activation not in ACTIVATIONS:
            raise UserError(f"unknown activation {self.activation!r}")
        for name in ("batch_size", "n_way", "shots", "top_width", "width_multiple"):
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")


def sample_architecture(rng: np.random.Generator, config: TaskDistConfig, n_in: int) -> MLPSpec:
    """Draws a base network: depth, log-uniform hidden widths, fixed top width
    (or one of ``config.architectures``)."""
    if config.architectures:
        return arch_spec(config.architectures[int(rng.integers(len(config.architectures)))], n_in)
    depth = int(rng.integers(config.depth_range[0], config.depth_range[1] + 1))
    lo, hi = np.log(config.width_range[0]), np.log(config.width_range[1])
    m = config.width_multiple
    hidden = tuple(
        int(max(m, round(float(np.exp(rng.uniform(lo, hi))) / m) * m)) for _ in range(depth - 1))
    return MLPSpec(n_in=n_in, widths=hidden + (config.top_width,), activation=config.activation)


def load_pools(config: TaskDistConfig, *, seed: int = 0) -> tuple[DataPool, DataPool]:
    """Loads the meta-training datasets: (train pool, validation pool).

    The validation pool is built from each dataset's test split (generated
    sets: new classes from another seed); recipes are chosen on it, never on
    the held-out evaluation sets.
    """
    pools = []
    for split in ("train", "test"):
        arrays, image = load_split(config.datasets, resolution=config.resolution, split=split,
                                   seed=seed)
        pools.append(build_pool(arrays, max_per_class=config.max_per_class, seed=seed,
                                image=image))
    check_episodes(pools[0], n_way=config.n_way, shots=config.shots, names=config.datasets)
    return pools[0], pools[1]
