"""Evolution strategies over the residual (outer/evolve.py, outer/population.py): evosax's
strategies minimise our fitness (lower is better), population fitness is paired, and a run
resumed from its workdir writes the same numbers as one that was never stopped."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.outer.config import STRATEGIES, MetaTrainConfig
from metaunsup.outer.evolve import evolve, horizon, make_strategy
from metaunsup.outer.population import paired_fitness
from metaunsup.tasks.distribution import TaskDistConfig


EVOSAX = pytest.mark.usefixtures("standard_promotion")  # evosax mixes bool and float32


@pytest.mark.slow  # 60 generations of each strategy
@EVOSAX
@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_minimises_a_quadratic_with_our_sign_convention(name):
    config = MetaTrainConfig(estimator=name, population=16, sigma=0.3, learning_rate=0.1)
    strategy, params = make_strategy(config, 4)
    target = jnp.array([0.8, -0.5, 0.3, 0.0])
    state = strategy.init(jax.random.key(0), jnp.zeros(4), params)
    for g in range(60):
        k1, k2 = jax.random.split(jax.random.fold_in(jax.random.key(1), g))
        pop, state = strategy.ask(k1, state, params)
        fitness = jnp.sum((pop - target) ** 2, axis=1)  # lower is better
        state, _ = strategy.tell(k2, pop, fitness, state, params)
    start = float(jnp.linalg.norm(target))
    assert float(jnp.linalg.norm(strategy.get_mean(state) - target)) < 0.25 * start


def test_paired_fitness_subtracts_the_reference_task_by_task():
    losses = np.array([[1.0, 3.0], [2.0, 2.0], [0.5, 4.0]])
    np.testing.assert_allclose(paired_fitness(losses, reference=2), [-0.25, -0.25, 0.0])


def test_horizon_curriculum_is_geometric_and_ends_at_the_top():
    config = MetaTrainConfig(estimator="cma_es", es_horizons=(100, 1000), curriculum=10)
    assert [horizon(config, g) for g in (0, 5, 10, 50)] == [100, 316, 1000, 1000]
    assert horizon(MetaTrainConfig(estimator="cma_es", es_horizons=(100, 1000)), 0) == 1000


def _tiny(**kw):
    tasks = TaskDistConfig(datasets=("synthetic_gmm", "synthetic_arcs"), resolution=4,
                           architectures=("tiny",), batch_size=16)
    base = dict(rule_config="pool", estimator="sep_cma_es", population=4, sigma=0.2,
                meta_batch=2, es_horizons=(5, 10), curriculum=2, outer_steps=3, arch_every=1,
                eval_every=2, eval_steps=5, eval_tasks=2, eval_groups=("tiny",),
                checkpoint_every=1, keep=10, tasks=tasks,
                directions=("mix[soft_hebb]", "log_lr", "mix[top:decay]"))
    return MetaTrainConfig(**{**base, **kw})


def _records(path):
    drop = ("seconds", "inner_steps_per_s", "wall_s")
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in open(path)]


@EVOSAX
@pytest.mark.slow
def test_a_resumed_run_writes_what_an_uninterrupted_one_does(tmp_path):
    config = _tiny()
    evolve(config, str(tmp_path / "a"), progress=False)
    evolve(config, str(tmp_path / "b"), progress=False, stop_after=2)
    evolve(config, str(tmp_path / "b"), progress=False)
    a, b = _records(tmp_path / "a/metrics.jsonl"), _records(tmp_path / "b/metrics.jsonl")
    assert a == b and [r["step"] for r in a] == [0, 1, 2, 3]
    assert [r["horizon"] for r in a[1:]] == [5, 7, 10]
    assert "val_accuracy" in a[0] and "val_accuracy" in a[2] and "val_accuracy" not in a[1]
    from metaunsup.rules.loading import load_rule

    rule = load_rule(str(tmp_path / "a/rule.safetensors"))
    provenance = rule.header["provenance"]
    assert provenance["directions"] == list(config.directions)
    assert len(provenance["theta"]) == 3 and provenance["meta_steps"] == 3
