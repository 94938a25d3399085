"""Meta-training by an evolution strategy over a few directions around the untrained rule.

The search variable is ``theta`` [n], a residual around the rule's deterministic
starting point (:mod:`metaunsup.rules.residual`: ``theta = 0`` is that start
exactly), over the coordinates the recipe names (``directions``). Each
generation:

1. the strategy (evosax: CMA-ES, Sep-CMA-ES, SNES or OpenAI-ES with antithetic
   sampling and centred ranks) proposes P candidates;
2. the candidates, the strategy's current mean and the start train the same
   ``meta_batch`` tasks from the training split of the meta-training families,
   one architecture group per generation, for the generation's horizon (a
   geometric curriculum up to the evaluation horizon) as one vmapped program
   (:mod:`metaunsup.outer.population`);
3. each candidate's fitness is its loss minus the start's on those tasks
   (paired, common random numbers), and the strategy is told.

Every ``eval_every`` generations the mean is scored on the recipe's fixed
validation tasks (``outer.validation``), with the wall time, so that
``export-rule`` can pick the best generation by validation. The workdir layout,
resumption (bit-exact: every random draw derives from the seed and the
generation), Ctrl-C handling and rule files are those of ``outer.trainer``.
"""
from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metaunsup.errors import UserError
from metaunsup.outer.config import STRATEGIES, MetaTrainConfig, build_rule, config_to_dict
from metaunsup.outer.export import write_rule
from metaunsup.outer.population import member_loss, paired_fitness, population_scores
from metaunsup.outer.validation import validate
from metaunsup.progress import progress_bar
from metaunsup.rules.residual import Residual, residual_around
from metaunsup.run import Workdir
from metaunsup.run.interrupt import WRITE_LOCK, interrupted_message
from metaunsup.run.workdir import check_workdir as check_run_folder
from metaunsup.streams import arch_rng, residual_start_key
from metaunsup.tasks.archs import ALL_GROUPS, arch_spec
from metaunsup.tasks.pool import DataPool, build_pool, load_split
from metaunsup.tasks.suite import SuiteConfig, build_suite

_SEED_STRIDE = 1_000_003  # fitness-task seeds: far from the validation (0) and transfer (1) suites


def make_strategy(config: MetaTrainConfig, size: int):
    """The evosax strategy of ``config.estimator`` over ``size`` dimensions: (strategy, params)."""
    from evosax import algorithms as ea

    solution = jnp.zeros((size,), jnp.float32)
    name, pop = config.estimator, config.population
    if name == "open_es":
        strategy = ea.Open_ES(pop, solution, use_antithetic_sampling=True,
                              optimizer=optax.adam(config.learning_rate),
                              std_schedule=optax.constant_schedule(config.sigma))
        return strategy, strategy.default_params
    cls = {"cma_es": ea.CMA_ES, "sep_cma_es": ea.Sep_CMA_ES, "snes": ea.SNES}[name]
    strategy = cls(pop, solution)
    return strategy, strategy.default_params.replace(std_init=config.sigma)


def parse_direction(text: str) -> tuple[str, float]:
    """``"NAME"`` or ``"NAME@SCALE"`` (meta-parameter change per unit of theta) -> (name, scale)."""
    name, at, scale = text.rpartition("@") if "@" in text else (text, "", "1")
    try:
        value = float(scale)
    except ValueError:
        raise UserError(f"direction {text!r}: expected NAME or NAME@SCALE with a number") from None
    if not value > 0:
        raise UserError(f"direction {text!r}: the scale must be > 0")
    return name, value


def residual(config: MetaTrainConfig, n_in: int) -> Residual:
    """The search space: ``config.directions`` around the rule's untrained meta-parameters.

    A direction is a coordinate name of ``rules.residual`` with an optional scale,
    ``"mix[hebb]@0.3"``: theta's unit moves that meta-parameter by 0.3, so that one
    isotropic step size suits directions of different sensitivity.
    """
    rule = build_rule(config, arch_spec("paper", n_in))
    key = residual_start_key(config.seed, config.init_key)
    parsed = [parse_direction(d) for d in config.directions]
    space = residual_around(rule, rule.init_meta_params(key), [n for n, _ in parsed])
    return space.scaled({n: v for n, v in parsed})


def horizon(config: MetaTrainConfig, generation: int) -> int:
    """The generation's inner steps: geometric from es_horizons[0] to [1] over ``curriculum``."""
    lo, hi = config.es_horizons
    if config.curriculum <= 0:
        return int(hi)
    frac = min(1.0, generation / config.curriculum)
    return int(round(lo * (hi / lo) ** frac))


def group_name(config: MetaTrainConfig, generation: int) -> str:
    """The architecture group of a generation (changes every ``arch_every`` generations)."""
    names = config.tasks.architectures or ALL_GROUPS
    rng = arch_rng(config.seed, generation // config.arch_every)
    return names[int(rng.integers(len(names)))]


def fitness_suite(config: MetaTrainConfig, generation: int) -> SuiteConfig:
    """The settings of a generation's fitness tasks (training split, new seed each generation)."""
    t = config.tasks
    return SuiteConfig(tasks=config.meta_batch, steps=horizon(config, generation), short_steps=0,
                       seed=_SEED_STRIDE * (config.seed + 1) + generation,
                       resolution=t.resolution, batch_size=t.batch_size, n_way=t.n_way,
                       shots=t.shots, groups=(group_name(config, generation),),
                       datasets=t.datasets, augment=t.augment, permute_inputs=t.permute_inputs)


def load_train_pool(config: MetaTrainConfig) -> DataPool:
    arrays, image = load_split(config.tasks.datasets, resolution=config.tasks.resolution,
                               split="train", seed=config.seed)
    return build_pool(arrays, max_per_class=config.tasks.max_per_class, seed=config.seed,
                      image=image)


def generation_step(config: MetaTrainConfig, space: Residual, strategy, params, state,
                    pool: DataPool, generation: int):
    """One generation: ask, score P candidates + mean + start on shared tasks, tell.

    Returns ``(state, record)``; the record holds the fitness statistics (losses
    are paired differences to the start, lower is better) and ``inner_steps``.
    """
    root = jax.random.fold_in(jax.random.PRNGKey(config.seed), generation)
    k_ask, k_tell = jax.random.split(root)
    population, state = strategy.ask(k_ask, state, params)
    mean = strategy.get_mean(state)
    members = jnp.concatenate([population, mean[None], space.zeros()[None]])
    suite = fitness_suite(config, generation)
    group = build_suite(suite, pool)[0]
    rule = build_rule(config, group.spec)
    scores = population_scores(suite, rule, jax.vmap(space)(members), pool, group,
                               [suite.steps])
    losses = member_loss(suite, scores, config.fitness)  # [P + 2, T]
    fitness = paired_fitness(losses, reference=len(members) - 1)
    pop = config.population
    state, _ = strategy.tell(k_tell, population, jnp.asarray(fitness[:pop], jnp.float32),
                             state, params)
    diffs = losses[pop] - losses[-1]  # the mean vs the start, per task
    record = {"step": generation + 1, "horizon": suite.steps, "arch": group.name,
              "fitness_best": float(fitness[:pop].min()),
              "fitness_median": float(np.median(fitness[:pop])),
              "fitness_mean_vs_start": float(diffs.mean()),
              "start_loss": float(losses[-1].mean()),
              "sigma": float(jnp.mean(state.std)),
              "theta_norm": float(jnp.linalg.norm(mean)),
              "inner_steps": int(len(members) * suite.tasks * suite.steps)}
    return state, record


def _template(config, space, strategy, params):
    state = strategy.init(jax.random.PRNGKey(0), space.zeros(), params)
    return {"meta_params": space.start, "theta": space.zeros(), "strategy": state}


def _save(config, wd, space, strategy, state, generation, seconds):
    mean = strategy.get_mean(state)
    tree = {"meta_params": space(mean), "theta": mean, "strategy": state}
    wd.checkpoints.save(generation, jax.device_get(tree), {"step": generation,
                                                           "recipe": config.name})
    rule = build_rule(config, arch_spec("paper", 1))
    write_rule(wd.rule_path, config, rule, tree["meta_params"], generation,
               directions=list(space.names), theta=[float(v) for v in np.asarray(mean)],
               wall_seconds_this_session=round(seconds, 1))


def evolve(config: MetaTrainConfig, workdir: str, *, progress: bool = True,
           stop_after: int | None = None, allow_config_change: bool = False) -> dict:
    """Runs (or resumes) an evolution-strategy recipe in ``workdir`` (see module doc).

    Returns:
      The last metrics record.
    """
    if config.estimator not in STRATEGIES:
        raise UserError(f"evolve: estimator must be one of {STRATEGIES}, got {config.estimator!r}")
    if jax.process_count() > 1:
        raise UserError("evolution strategies run in one process (vmapped on its devices)")
    check_run_folder(workdir)  # writable; empty or a workdir; metrics.jsonl intact
    if os.path.isdir(workdir):
        Workdir(workdir, create=False).check_config(config_to_dict(config),
                                                    allow_change=allow_config_change)
    pool = load_train_pool(config)
    space = residual(config, pool.dim)
    strategy, params = make_strategy(config, space.size)
    wd = Workdir(workdir, keep=config.keep)
    wd.write_config(config_to_dict(config), allow_change=allow_config_change)
    template = jax.eval_shape(lambda: _template(config, space, strategy, params))
    restored = wd.checkpoints.restore_latest(template)  # the one resume walk (run.checkpoint)
    if restored is None:
        state, start = strategy.init(jax.random.PRNGKey(config.seed), space.zeros(), params), 0
    else:
        state = jax.tree_util.tree_map(jnp.asarray, restored.tree["strategy"])
        start = restored.step
    wd.truncate_metrics(start)
    t_run = time.perf_counter()
    if start == 0 and not any(r.get("step") == 0 for r in wd.read_metrics()):
        record = {"step": 0, "horizon": 0, "theta_norm": 0.0, "wall_s": 0.0}
        if config.eval_every:
            record.update(validate(config, space.start))
        with WRITE_LOCK:
            wd.append_metrics(record)
            _save(config, wd, space, strategy, state, 0, 0.0)
    wall0 = max([r.get("wall_s", 0.0) for r in wd.read_metrics()] + [0.0])
    if start >= config.outer_steps:
        print(f"{workdir}: already finished ({start} of {config.outer_steps} generations); "
              "nothing to do", file=sys.stderr)
        return wd.read_metrics()[-1]
    bar = progress_bar(progress, total=config.outer_steps, initial=start, unit="gen",
                       desc=f"evolve {config.name}")
    record: dict = {}
    committed = (start, state)  # the newest generation whose metrics line is written
    try:
        for g in range(start, config.outer_steps):
            if stop_after is not None and g - start >= stop_after:
                break
            spent = wall0 + time.perf_counter() - t_run
            if config.time_budget_s and spent >= config.time_budget_s:
                print(f"{workdir}: time budget of {config.time_budget_s:.0f} s used "
                      f"({spent:.0f} s) after {g} generations; raise time_budget_s and rerun "
                      "to continue", file=sys.stderr)
                break
            t0 = time.perf_counter()
            state, record = generation_step(config, space, strategy, params, state, pool, g)
            dt = time.perf_counter() - t0
            record["seconds"] = round(dt, 3)
            record["inner_steps_per_s"] = round(record.pop("inner_steps") / dt, 1)
            if config.eval_every and (g + 1) % config.eval_every == 0:
                record.update(validate(config, space(strategy.get_mean(state))))
            record["wall_s"] = round(wall0 + time.perf_counter() - t_run, 1)
            with WRITE_LOCK:
                wd.append_metrics(record)
                committed = (g + 1, state)
                if (g + 1) % config.checkpoint_every == 0 or g + 1 == config.outer_steps:
                    _save(config, wd, space, strategy, state, g + 1,
                          time.perf_counter() - t_run)
            shown = {"fit": f"{record['fitness_mean_vs_start']:+.4f}", "h": record["horizon"]}
            if "val_accuracy" in record:
                shown["val"] = f"{record['val_accuracy']:.3f}"
            bar.set_postfix(shown)
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        step, done_state = committed
        if step > start and step not in wd.checkpoints.all_steps():
            with WRITE_LOCK:
                _save(config, wd, space, strategy, done_state, step, time.perf_counter() - t_run)
        print(interrupted_message(workdir, config.outer_steps), file=sys.stderr)
        raise
    bar.close()
    return record


__all__ = ["evolve", "fitness_suite", "generation_step", "group_name", "horizon",
           "make_strategy", "residual"]
