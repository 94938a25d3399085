"""Meta-training configuration: one frozen dataclass, read from TOML files.

Recipes live in ``metaunsup/configs/<name>.toml``; each starts with a comment
giving the command, the expected wall time on 2 CPU cores and the expected
result. ``--set key=value`` overrides any field (dotted for nested sections,
e.g. ``tasks.batch_size=32``); values are parsed as TOML values, so
``tasks.datasets=["glyphs"]`` works.
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from metaunsup.errors import UserError
from metaunsup.inner.task import REMAT
from metaunsup.models import MLPSpec
from metaunsup.outer.estimators import make_estimator
from metaunsup.rules import make_rule
from metaunsup.rules.base import UpdateRule
from metaunsup.tasks.augment import AugmentConfig
from metaunsup.tasks.distribution import TaskDistConfig
from metaunsup.tasks.suite import SuiteConfig
from metaunsup.values import cast_value, parse_pair

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
ESTIMATORS = ("tbptt", "pes")
RETIRED = ("es",)
"""Estimators that older workdirs name and that no longer run: "es", the hand-written
antithetic ES, replaced by evosax's OpenAI-ES (``estimator = "open_es"``). Such a config
still loads, so that its checkpoints can be exported and validated."""
STRATEGIES = ("cma_es", "sep_cma_es", "snes", "open_es")
"""Evolution strategies (evosax) that search a residual around the untrained rule
(``outer.evolve``); chosen with ``estimator``."""
FITNESS = ("ridge_loss", "ridge_accuracy", "probe")


@dataclasses.dataclass(frozen=True)
class MetaTrainConfig:
    """Everything that defines a meta-training run.

    Attributes:
      name: recipe name (recorded in provenance).
      seed: root seed of the run; every random choice derives from it.
      rule: registered rule name.
      rule_config: the rule's named configuration ("small", "paper", ...).
      rule_options: overrides of the rule's configuration fields (a table in
        TOML; kept as a sorted tuple of pairs so the config stays hashable).
      tasks: the task distribution.
      estimator: "tbptt" or "pes" (antithetic persistent ES), meta-gradient
        estimators over truncations (``outer.estimators``); or an evolution
        strategy of :data:`STRATEGIES` over a residual around the untrained rule
        (``outer.evolve``; then ``outer_steps`` counts generations and
        ``meta_batch`` the tasks every member of a generation trains). "es"
        (:data:`RETIRED`) only loads.
      truncation: inner steps per truncation (one outer step).
      meta_batch: tasks per outer step (vmapped, sharded over devices).
      outer_steps: total outer (meta) steps.
      learning_rate: Adam learning rate on meta_params.
      grad_clip: global-norm clip of the meta-gradient.
      sigma: perturbation std of PES / ES.
      es_pairs: antithetic pairs per task of the retired "es" (unused).
      es_horizons: (lo, hi) inner lengths of "es" (log-uniform, inclusive).
      es_shaping: fitness shaping of the retired "es" (unused).
      arch_every: the base architecture is re-sampled every this many outer
        steps (all tasks of a meta-batch share it, so they can be vmapped).
      remat: recompute inner steps in the backward pass (less memory): true
        checkpoints every inner step (memory linear in ``truncation``);
        "dots" does too but keeps each step's matrix products (more memory,
        less recomputation); "nested" checkpoints segments of about
        sqrt(truncation) steps, each step checkpointed inside them (memory
        ~ sqrt(truncation)).
      eval_every: outer steps between validation evaluations (0: never); the
        untrained rule is validated as step 0.
      eval_steps: inner steps of a validation evaluation.
      eval_tasks: tasks per validation evaluation: a fixed subset of the
        validation suite (``tasks.suite``), the same tasks every time.
      eval_groups: architecture groups of those tasks (``tasks.suite.ARCH_GROUPS``).
      checkpoint_every: outer steps between checkpoints.
      keep: checkpoints kept.
      warm_start: a rule file (e.g. a trained ``compact`` rule) whose shared
        meta-parameters seed the learned rule before step 0
        (``rules.warm_start``); "" starts from ``init_meta_params``.
      population: candidates per generation of an evolution strategy.
      directions: names of the residual coordinates a strategy searches
        (``rules.residual``; empty: all of them).
      fitness: what a strategy minimises, paired against the start on the same
        tasks: "ridge_loss" (the meta-objective), "ridge_accuracy" or "probe"
        (the logistic probe of the held-out protocol), at the generation's horizon.
      curriculum: generations over which a strategy's horizon grows
        geometrically from ``es_horizons[0]`` to ``es_horizons[1]`` (0: always
        the upper end).
      time_budget_s: an evolution strategy stops once its run (all sessions
        together, ``wall_s`` in ``metrics.jsonl``) has used this much wall time;
        0: no limit. The run stays resumable (raise the budget and rerun).
      init_key: the key ``init_meta_params`` draws from: -1 derives it from
        ``seed`` (the default), K >= 0 uses ``PRNGKey(K)`` (to start from a
        chosen draw of a configuration, e.g. the one a ``validate`` run
        scored; the tasks and the loop still follow ``seed``).
    """

    name: str = "custom"
    seed: int = 0
    rule: str = "learned"
    rule_config: str = "small"
    rule_options: tuple = ()
    tasks: TaskDistConfig = TaskDistConfig()
    estimator: str = "tbptt"
    truncation: int = 20
    meta_batch: int = 4
    outer_steps: int = 1000
    learning_rate: float = 3e-3
    grad_clip: float = 1.0
    sigma: float = 0.01
    es_pairs: int = 4
    es_horizons: tuple[int, int] = (100, 1000)
    es_shaping: str = "sign"
    arch_every: int = 50
    remat: bool | str = False
    eval_every: int = 50
    eval_steps: int = 200
    eval_tasks: int = 4
    eval_groups: tuple[str, ...] = ("paper",)
    checkpoint_every: int = 25
    keep: int = 3
    warm_start: str = ""
    population: int = 16
    directions: tuple[str, ...] = ()
    fitness: str = "ridge_loss"
    curriculum: int = 0
    time_budget_s: float = 0.0
    init_key: int = -1

    def __post_init__(self):
        opts = self.rule_options
        if isinstance(opts, dict):
            opts = opts.items()
        frozen = tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in opts))
        object.__setattr__(self, "rule_options", frozen)
        if self.estimator not in ESTIMATORS + STRATEGIES + RETIRED:
            raise UserError(f"estimator must be one of {ESTIMATORS + STRATEGIES}, got "
                            f"{self.estimator!r}")
        object.__setattr__(self, "directions", tuple(self.directions))
        if self.fitness not in FITNESS:
            raise UserError(f"fitness must be one of {FITNESS}, got {self.fitness!r}")
        if not isinstance(self.population, int) or isinstance(self.population, bool) \
                or self.population < 2:
            raise UserError(f"population must be an integer >= 2, got {self.population!r}")
        if self.estimator == "open_es" and self.population % 2:
            raise UserError(f"open_es samples antithetic pairs: population must be even, got "
                            f"{self.population}")
        if not isinstance(self.time_budget_s, (int, float)) or self.time_budget_s < 0:
            raise UserError(f"time_budget_s must be a number >= 0, got {self.time_budget_s!r}")
        if not isinstance(self.curriculum, int) or self.curriculum < 0:
            raise UserError(f"curriculum must be an integer >= 0, got {self.curriculum!r}")
        for f in ("truncation", "meta_batch", "outer_steps", "arch_every", "checkpoint_every",
                  "keep", "eval_steps", "eval_tasks"):
            if not isinstance(getattr(self, f), int) or getattr(self, f) <= 0:
                raise UserError(f"{f} must be a positive integer, got {getattr(self, f)!r}")
        object.__setattr__(self, "es_horizons", tuple(self.es_horizons))
        object.__setattr__(self, "eval_groups", tuple(self.eval_groups))
        if self.estimator in ESTIMATORS:
            make_estimator(self.estimator, truncation=self.truncation,
                           sigma=self.sigma)  # checks the estimator's settings
        elif not 1 <= self.es_horizons[0] <= self.es_horizons[1]:
            raise UserError(f"es_horizons must satisfy 1 <= lo <= hi, got {self.es_horizons}")
        SuiteConfig(tasks=self.eval_tasks, steps=self.eval_steps, groups=self.eval_groups,
                    short_steps=min(20, self.eval_steps))  # checks the validation settings
        if self.remat not in REMAT:
            raise UserError(f"remat must be true, false, \"dots\" or \"nested\", "
                            f"got {self.remat!r}")
        if not isinstance(self.init_key, int) or self.init_key < -1:
            raise UserError(f"init_key must be -1 (from seed) or >= 0, got {self.init_key!r}")
        if self.eval_every < 0:
            raise UserError(f"eval_every must be >= 0, got {self.eval_every}")
        for f in ("learning_rate", "grad_clip", "sigma"):
            if not getattr(self, f) > 0:
                raise UserError(f"{f} must be > 0, got {getattr(self, f)}")


def build_rule(config: MetaTrainConfig, net: MLPSpec) -> UpdateRule:
    """The recipe's rule for the base network ``net``."""
    return make_rule(config.rule, net, config=config.rule_config, **dict(config.rule_options))


def _build(cls: type, data: dict, where: str) -> Any:
    """Builds dataclass ``cls`` from a nested dict, checking every key."""
    if not isinstance(data, dict):
        raise UserError(f"config section {where or '<root>'} must be a table, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise UserError(f"unknown config key {where + key!r}; known: {', '.join(fields)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{where}{key}.")
        elif key == "rule_options":
            kwargs[key] = value
        else:  # typed by the field: one-line error naming key, value and type
            kwargs[key] = cast_value(value, hint, name=f"config {where}{key}", strict=True)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise UserError(f"bad config section {where or '<root>'}: {e}") from None


def config_to_dict(config: MetaTrainConfig) -> dict:
    """A JSON-able nested dict (tuples become lists)."""
    data = dataclasses.asdict(config)
    data["rule_options"] = dict(config.rule_options)
    return data


def config_from_dict(data: dict) -> MetaTrainConfig:
    return _build(MetaTrainConfig, data, "")


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def _set(data: dict, dotted: str, raw: str) -> None:
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string
    node = data
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {dotted}: {p} is not a section")
    node[parts[-1]] = value


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> MetaTrainConfig:
    """Reads a recipe by name (``configs/<name>.toml``) or path, then applies ``key=value``s."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise UserError(
            f"unknown config {name_or_path!r}; available: {', '.join(available_configs())} "
            "(or a path to a .toml file)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    data.setdefault("name", path.stem)
    for item in overrides:
        key, raw = parse_pair(item, what="--set")
        _set(data, key, raw)
    return config_from_dict(data)


__all__ = ["AugmentConfig", "CONFIG_DIR", "ESTIMATORS", "FITNESS", "MetaTrainConfig", "RETIRED",
           "STRATEGIES", "available_configs", "build_rule", "config_from_dict", "config_to_dict",
           "load_config"]
