"""The validation of a meta-training run: a fixed subset of the validation suite.

Every validation of a run scores its rule on the same ``eval_tasks`` tasks of
the validation suite (:mod:`metaunsup.tasks.suite`: the validation split of the
meta-training families, never held-out data), so that checkpoints can be
compared with each other and with the untrained rule (step 0), and the
exported rule is chosen on them.
"""
from __future__ import annotations

import functools

from metaunsup.eval.validate import SuiteRule, score_rule
from metaunsup.outer import distributed as dist
from metaunsup.outer.config import MetaTrainConfig, build_rule
from metaunsup.run.workdir import validation_history  # noqa: F401 (re-exported)
from metaunsup.tasks.suite import SuiteConfig, build_suite, load_suite_pool
from metaunsup.types import MetaParams


@functools.lru_cache(maxsize=4)
def _suite(config: MetaTrainConfig):
    """The fixed validation tasks of a recipe: (suite config, pool, groups).

    The validation split of the recipe's own families (``tasks.datasets``), with
    the suite's shares when they are the suite's families.
    """
    suite = SuiteConfig(tasks=config.eval_tasks, steps=config.eval_steps,
                        short_steps=min(20, config.eval_steps), groups=config.eval_groups,
                        resolution=config.tasks.resolution, seed=0,
                        datasets=config.tasks.datasets)
    pool = load_suite_pool(suite)
    return suite, pool, build_suite(suite, pool)


def validate(config: MetaTrainConfig, meta_params: MetaParams) -> dict:
    """Scores ``meta_params`` on the recipe's fixed subset of the validation suite.

    The same ``eval_tasks`` tasks (validation split of the meta-training
    datasets, never held-out data) every time, each trained ``eval_steps``
    inner steps (:mod:`metaunsup.tasks.suite`). Returns fractions:
    ``val_accuracy`` (10-way 10-shot logistic probe, the held-out protocol),
    ``val_accuracy_short`` (after ``min(20, eval_steps)`` steps),
    ``val_ridge_loss`` and ``val_ridge_accuracy`` (the meta-objective).
    """
    suite, pool, groups = _suite(config)
    # On the host, so that step 0's freshly initialised theta and a meta-step's output
    # (placed on devices) reach the validation program alike: one compilation. Each
    # process reads its own replica: validation runs locally, with no collectives.
    meta_params = dist.local_copy(meta_params)
    rule = SuiteRule("meta-train", lambda net: build_rule(config, net), (meta_params,), "")
    scores = score_rule(rule, suite, pool, groups)
    h, h0 = suite.horizons.index(suite.steps), suite.horizons.index(suite.short_steps)
    return {"val_accuracy": float(scores["accuracy"][h].mean()),
            "val_accuracy_short": float(scores["accuracy"][h0].mean()),
            "val_ridge_loss": float(scores["ridge_loss"][h].mean()),
            "val_ridge_accuracy": float(scores["ridge_accuracy"][h].mean())}


__all__ = ["validate", "validation_history"]
