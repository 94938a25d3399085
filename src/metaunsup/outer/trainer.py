"""The outer loop: meta-training an update rule (Metz et al. 2019, sec. 4.3).

One outer step: a meta-batch of tasks (vmapped, and sharded over every
available device along the task axis) each runs one truncation under a
gradient estimator (TBPTT, PES or ES from :mod:`metaunsup.outer.estimators`);
the meta-gradients are averaged, a non-finite one is skipped and counted, the
rest is clipped and applied with Adam; tasks whose network diverged are reset
and counted. The base architecture, shared by the meta-batch, is re-sampled
every ``arch_every`` outer steps from a generator seeded by (seed, group), so a
resumed run sees the same architectures.

Determinism: every random draw derives from ``config.seed`` and the outer step,
so a run resumed from a checkpoint writes the same ``metrics.jsonl`` as one
that was never interrupted (bit-exact on CPU). Only the wall-clock fields
(``seconds``, ``inner_steps_per_s``) differ between runs.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metaunsup.errors import UserError
from metaunsup.inner.task import tree_all_finite
from metaunsup.models import MLPSpec
from metaunsup.optim import adam
from metaunsup.outer import distributed as dist
from metaunsup.outer import estimators as est
from metaunsup.outer.config import RETIRED, STRATEGIES, MetaTrainConfig, build_rule, config_to_dict
from metaunsup.outer.evolve import evolve
from metaunsup.outer.export import write_rule
from metaunsup.outer.validation import validate
from metaunsup.progress import progress_bar
from metaunsup.rules.base import UpdateRule
from metaunsup.rules.loading import load_rule
from metaunsup.rules.warm_start import check_warm_start, warm_start_meta_params
from metaunsup.run import Workdir
from metaunsup.run.compile_cache import Background
from metaunsup.run.interrupt import WRITE_LOCK, interrupted_message
from metaunsup.run.workdir import check_workdir as check_run_folder
from metaunsup.streams import arch_rng, meta_init_key, run_keys, task_reset_key
from metaunsup.tasks.distribution import load_pools, sample_architecture
from metaunsup.tasks.pool import DataPool
from metaunsup.tasks.rule_task import RuleTask
from metaunsup.types import Array, MetaParams, PRNGKey, PyTree

WALL_CLOCK_FIELDS = ("seconds", "inner_steps_per_s")


class TrainerState(NamedTuple):
    """Everything needed to resume meta-training.

    Attributes:
      meta_params: theta.
      opt_state: optax state of the outer optimizer.
      tasks: the estimator's persistent per-task state, leading axis meta_batch.
      key: uint32[2] PRNG key of the outer loop.
      step: int32 outer steps done.
      skipped: int32 outer steps whose meta-gradient was non-finite (skipped).
      resets: int32 tasks reset because their network diverged.
    """

    meta_params: MetaParams
    opt_state: Any
    tasks: PyTree
    key: Array
    step: Array
    skipped: Array
    resets: Array


def make_optimizer(config: MetaTrainConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adam(config.learning_rate))


def architecture(config: MetaTrainConfig, group: int, n_in: int) -> MLPSpec:
    """The base network of architecture group ``group`` (deterministic)."""
    return sample_architecture(arch_rng(config.seed, group), config.tasks, n_in)


def _task(config: MetaTrainConfig, rule: UpdateRule, pool: DataPool) -> RuleTask:
    return RuleTask(rule, config.tasks, pool)


def make_estimator(config: MetaTrainConfig) -> est.Estimator:
    """The recipe's meta-gradient estimator (:class:`metaunsup.outer.estimators.Estimator`)."""
    return est.make_estimator(config.estimator, truncation=config.truncation, sigma=config.sigma,
                              remat=config.remat)


def init_tasks(config: MetaTrainConfig, rule: UpdateRule, meta_params: MetaParams,
               key: PRNGKey, pool: DataPool) -> PyTree:
    """The estimator's per-task state for a fresh meta-batch (leading axis M)."""
    task, estimator = _task(config, rule, pool), make_estimator(config)
    keys = jax.random.split(key, config.meta_batch)
    return jax.vmap(lambda k: estimator.init(task, meta_params, k))(keys)


def init_trainer(config: MetaTrainConfig, rule: UpdateRule, pool: DataPool) -> TrainerState:
    _, k_tasks, k_loop = run_keys(config.seed)
    meta_params = rule.init_meta_params(meta_init_key(config.seed, config.init_key))
    opt_state = make_optimizer(config).init(meta_params)
    tasks = init_tasks(config, rule, meta_params, k_tasks, pool)
    zero = jnp.zeros((), jnp.int32)
    return TrainerState(meta_params, opt_state, tasks, k_loop, zero, zero, zero)


def warm_start_source(config: MetaTrainConfig, rule: UpdateRule):
    """The rule file of ``config.warm_start`` as a LoadedRule, checked against ``rule``."""
    source = load_rule(config.warm_start)
    if config.rule != "learned" or source.name != "learned":
        raise UserError(f"warm_start: {config.warm_start} holds a {source.name!r} rule; only "
                        "a learned rule can seed the learned rule")
    check_warm_start(rule.config, source.for_net(rule.net).config)
    return source


def apply_warm_start(config: MetaTrainConfig, rule: UpdateRule, state: TrainerState,
                     source) -> TrainerState:
    """A fresh trainer state with its meta_params seeded from ``source``, the LoadedRule
    of ``config.warm_start`` (:func:`warm_start_source`)."""
    meta = warm_start_meta_params(rule.config, state.meta_params,
                                  source.for_net(rule.net).config, source.meta_params)
    return state._replace(meta_params=meta, opt_state=make_optimizer(config).init(meta))


def outer_step(task, estimator: est.Estimator, optimizer: optax.GradientTransformation,
               state: TrainerState) -> tuple[TrainerState, dict]:
    """One outer step on any task (pure; jit with ``task``, ``estimator``, ``optimizer`` static).

    The meta-batch is the leading axis of ``state.tasks``: every task's
    estimate (``estimator.estimate``, vmapped) is averaged; a non-finite
    average is skipped and counted; tasks the estimator calls unhealthy are
    re-initialised and counted. The task's metrics are passed through as means
    (``episode_accuracy`` from ``accuracy``, ``horizon`` where the estimator
    samples one) and ``inner_steps`` sums the inner steps this step ran.
    """
    mp = state.meta_params
    meta_batch = jax.tree_util.tree_leaves(state.tasks)[0].shape[0]
    key, k_est, k_reset = jax.random.split(state.key, 3)
    keys = jax.random.split(k_est, meta_batch)
    grads, tasks, losses, tm = jax.vmap(
        lambda s, k: estimator.estimate(task, mp, s, k))(state.tasks, keys)
    healthy = jax.vmap(lambda s: estimator.healthy(task, s))(tasks)
    grad = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads)
    ok = tree_all_finite(grad)
    grad = jax.tree_util.tree_map(lambda g: jnp.where(ok, g, 0.0), grad)
    updates, opt_state = optimizer.update(grad, state.opt_state, mp)
    new_mp = optax.apply_updates(mp, updates)
    new_mp, opt_state = optax.tree.where(ok, (new_mp, opt_state), (mp, state.opt_state))
    fresh = jax.vmap(lambda k: estimator.init(task, new_mp, k))(
        jax.random.split(k_reset, meta_batch))
    tasks = jax.tree_util.tree_map(
        lambda f, t: jnp.where(healthy.reshape((-1,) + (1,) * (t.ndim - 1)), t, f), fresh, tasks)
    n_bad = jnp.sum(~healthy).astype(jnp.int32)
    new_state = TrainerState(new_mp, opt_state, tasks, key, state.step + 1,
                             state.skipped + (~ok).astype(jnp.int32), state.resets + n_bad)
    metrics = {
        "meta_loss": jnp.mean(losses),
        "grad_norm": optax.tree.norm(grad),
        "episode_accuracy": jnp.mean(tm.get("accuracy", jnp.full((), jnp.nan))),
        "inner_steps": jnp.sum(tm["inner_steps"]),
        "skipped": new_state.skipped,
        "resets": new_state.resets,
    }
    if "horizon" in tm:
        metrics["horizon"] = jnp.mean(tm["horizon"])
    return new_state, metrics


def meta_step(config: MetaTrainConfig, rule: UpdateRule, state: TrainerState,
              pool: DataPool) -> tuple[TrainerState, dict]:
    """One outer step of a recipe (pure; jit with ``config`` and ``rule`` static)."""
    return outer_step(_task(config, rule, pool), make_estimator(config), make_optimizer(config),
                      state)


_meta_step_jit = jax.jit(meta_step, static_argnums=(0, 1))
# Jitted so that a run starts from a few cached executables instead of hundreds of
# eagerly compiled small ops (see metaunsup.run.compile_cache).
_init_trainer_jit = jax.jit(init_trainer, static_argnums=(0, 1))
_init_tasks_jit = jax.jit(init_tasks, static_argnums=(0, 1))


def _place(state: TrainerState, meta_batch: int) -> TrainerState:
    """Puts the task axis across all devices and replicates the rest.

    GSPMD then partitions the meta-step over the tasks. Every step's output is
    placed the same way, so the jitted step sees identical input shardings each
    time and compiles once per architecture. In a multi-process run
    (:mod:`metaunsup.outer.distributed`) the devices are those of every process
    and each process holds its own slice of the tasks.
    """
    devices = jax.devices()
    if len(devices) == 1 or meta_batch % len(devices):  # never multi-process (checked)
        return jax.device_put(state, devices[0])
    mesh = dist.task_mesh()
    P = jax.sharding.PartitionSpec
    replicated = jax.sharding.NamedSharding(mesh, P())
    by_task = jax.sharding.NamedSharding(mesh, P("tasks"))
    shardings = state._replace(
        **{f: jax.tree_util.tree_map(lambda _: replicated, getattr(state, f))
           for f in state._fields if f != "tasks"},
        tasks=jax.tree_util.tree_map(lambda _: by_task, state.tasks))
    return jax.device_put(state, shardings)


def _state_template(config, pool: DataPool, step: int) -> TrainerState:
    """Structure, shapes and dtypes of the trainer state after outer step ``step``."""
    group = max(step - 1, 0) // config.arch_every
    rule = build_rule(config, architecture(config, group, pool.dim))
    return jax.eval_shape(lambda: init_trainer(config, rule, pool))


def _restore(config, wd: Workdir, pool: DataPool) -> TrainerState | None:
    """Newest readable checkpoint, falling back past corrupt ones (never deleted)."""
    restored = wd.checkpoints.restore_latest(lambda step: _state_template(config, pool, step))
    return None if restored is None else jax.tree_util.tree_map(jnp.asarray, restored.tree)


def _scalars(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        v = np.asarray(v)
        out[k] = int(v) if v.dtype.kind in "iub" else float(v)
    return out


def meta_train(config: MetaTrainConfig, workdir: str, *, progress: bool = True,
               stop_after: int | None = None, allow_config_change: bool = False) -> dict:
    """Runs (or resumes) meta-training in ``workdir``.

    Args:
      config: the recipe.
      workdir: run directory (created; re-running resumes from it).
      progress: show a progress bar.
      stop_after: stop after this many outer steps in this call (for tests).
      allow_config_change: resume ``workdir`` although its stored config
        differs (the old one is kept as ``config.previous-<n>.json``).

    Returns:
      The last metrics record.
    """
    if config.estimator in STRATEGIES:  # a search over a residual, not a gradient estimate
        return evolve(config, workdir, progress=progress, stop_after=stop_after,
                      allow_config_change=allow_config_change)
    if config.estimator in RETIRED:
        raise UserError(f"estimator {config.estimator!r} (the hand-written antithetic ES) was "
                        "replaced by evosax's OpenAI-ES: set estimator = \"open_es\" "
                        "(population = 2 x es_pairs); its workdirs still export and validate")
    # Whatever the user's input can make fail, fails before the first write. Only
    # process 0 touches the workdir (outer.distributed); the others get wd = None.
    def check_workdir():
        check_run_folder(workdir)  # writable; empty or a workdir; metrics.jsonl intact
        if os.path.isdir(workdir):
            Workdir(workdir, create=False).check_config(config_to_dict(config),
                                                        allow_change=allow_config_change)

    dist.on_writer(check_workdir)
    dist.check_meta_batch(config.meta_batch)
    pool, val_pool = load_pools(config.tasks, seed=config.seed)
    first_rule = build_rule(config, architecture(config, 0, pool.dim))
    # A bad warm-start file fails here, before the first write.
    source = warm_start_source(config, first_rule) if config.warm_start else None

    def open_workdir():
        wd = Workdir(workdir, keep=config.keep)
        wd.write_config(config_to_dict(config), allow_change=allow_config_change)
        state = _restore(config, wd, pool)
        start = 0 if state is None else int(state.step)
        missing = wd.missing_steps(start)
        if missing:
            shown = f"{missing[0]}-{missing[-1]}" if len(missing) > 1 else str(missing[0])
            raise UserError(f"{wd.metrics_path}: no record of step(s) {shown} ({len(missing)} "
                            f"of {start}) before the newest checkpoint, step {start}; the "
                            "history cannot be rebuilt from checkpoints, so this run is not "
                            "resumed. Restore metrics.jsonl or use a new --workdir ('metaunsup "
                            f"export-rule --step {start}' still exports that checkpoint)")
        wd.truncate_metrics(start)
        return wd, state

    wd, state = dist.on_writer(open_workdir) or (None, None)
    state = dist.restore_everywhere(state, None if state is None else int(state.step),
                                    lambda step: _state_template(config, pool, step))
    if state is None:
        rule = build_rule(config, architecture(config, 0, pool.dim))
        state = _init_trainer_jit(config, rule, pool)
        if source is not None:
            state = apply_warm_start(config, rule, state, source)
    start = int(state.step)
    if start >= config.outer_steps:
        if wd is not None:
            print(f"{workdir}: already finished ({start} of {config.outer_steps} outer steps); "
                  "nothing to do", file=sys.stderr)
        done = wd.read_metrics() if wd is not None else []
        return done[-1] if done else {}
    bar = progress_bar(progress and wd is not None, total=config.outer_steps, initial=start,
                       unit="step", desc=f"meta-train {config.name}")
    record: dict = {}
    t_run = time.perf_counter()
    rule, first = None, None
    if start == 0 and config.eval_every and jax.process_count() == 1 and stop_after != 0:
        # The first meta-step (its compilation, mostly) runs beside step 0's validation.
        rule = build_rule(config, architecture(config, 0, pool.dim))
        first = Background(_meta_step_jit, config, rule, _place(state, config.meta_batch), pool)
    val0 = _step0_validation(config, wd, state, pool, t_run) if config.eval_every else None
    shown_val = "-" if val0 is None else f"{val0:.3f} (step 0)"
    try:
        for s in range(start, config.outer_steps):
            if stop_after is not None and s - start >= stop_after:
                break
            group = s // config.arch_every
            if rule is None or s % config.arch_every == 0:
                rule = build_rule(config, architecture(config, group, pool.dim))
                if s % config.arch_every == 0 and s > 0:
                    k = task_reset_key(config.seed, s)
                    state = state._replace(
                        tasks=_init_tasks_jit(config, rule, state.meta_params, k, pool))
            t0 = time.perf_counter()
            if first is not None:
                (state, metrics), first = first.result(), None
            else:
                state, metrics = _meta_step_jit(config, rule, _place(state, config.meta_batch),
                                                pool)
            record = {"step": s + 1, **_scalars(metrics)}
            dt = time.perf_counter() - t0
            record["arch"] = list(rule.net.widths)
            record["seconds"] = round(dt, 4)
            record["inner_steps_per_s"] = round(record.pop("inner_steps") / dt, 1)
            if config.eval_every and (s + 1) % config.eval_every == 0:
                record.update(validate(config, state.meta_params))
            with WRITE_LOCK:  # a Ctrl-C (run.interrupt) waits for both writes
                if wd is not None:
                    wd.append_metrics(record)
                if (s + 1) % config.checkpoint_every == 0 or s + 1 == config.outer_steps:
                    _save(config, wd, state, rule, time.perf_counter() - t_run)
            if "val_accuracy" in record:
                shown_val = f"{record['val_accuracy']:.3f}" + (f" (step 0: {val0:.3f})"
                                                               if val0 is not None else "")
            bar.set_postfix(loss=f"{record['meta_loss']:.4f}", acc=f"{record['episode_accuracy']:.3f}",
                            val=shown_val)
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        # Save only a state whose metrics line is written (see run.workdir).
        if rule is not None and record.get("step") == int(state.step) > start \
                and jax.process_count() == 1:  # saving is a collective across processes
            with WRITE_LOCK:
                _save(config, wd, state, rule, time.perf_counter() - t_run)
        print(interrupted_message(workdir, config.outer_steps), file=sys.stderr)
        raise
    bar.close()
    return record


def _step0_validation(config: MetaTrainConfig, wd: Workdir | None, state: TrainerState,
                      pool: DataPool, t_run: float) -> float | None:
    """The untrained rule's validation score: recorded (and checkpointed) as step 0.

    Run once per workdir, before the first outer step, so that every later
    validation can be read against the starting point and ``export-rule`` can
    choose the untrained rule if nothing beats it. Returns its
    ``val_accuracy`` (read back on a resumed run; None if it has none).
    """
    if wd is not None:
        for r in wd.read_metrics():
            if r.get("step") == 0 and "val_accuracy" in r:
                return r["val_accuracy"]
    if int(state.step) != 0:
        return None
    record = {"step": 0, **validate(config, state.meta_params)}
    with WRITE_LOCK:
        if wd is not None:
            wd.append_metrics(record)
        _save(config, wd, state, build_rule(config, architecture(config, 0, pool.dim)),
              time.perf_counter() - t_run)
    return record["val_accuracy"]


def _save(config: MetaTrainConfig, wd: Workdir | None, state: TrainerState, rule: UpdateRule,
          seconds: float) -> None:
    step = int(state.step)
    host = dist.to_host(state)  # every process: gathers tasks held by other processes
    if wd is None:  # not process 0 of a multi-process run
        return
    wd.checkpoints.save(step, host, {"step": step, "recipe": config.name})
    write_rule(wd.rule_path, config, rule, host.meta_params, step,
                wall_seconds_this_session=round(seconds, 1))


