"""The paired validation suite: fixed tasks, exact self-differences, rule specifications."""
import dataclasses
import json

import chex
import jax
import numpy as np
import pytest

from metaunsup.cli import main
from metaunsup.eval.validate import resolve_rule, validate_rules
from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule
from metaunsup.rules.loading import load_rule
from metaunsup.run import save_rule
from metaunsup.tasks.suite import SuiteConfig, build_suite, group_sizes, load_suite_pool

TINY = SuiteConfig(tasks=3, steps=6, short_steps=2, groups=("tiny",))


@pytest.fixture(scope="module")
def pool():
    return load_suite_pool(TINY)


def _arrays(groups):
    return [np.asarray(x) for g in groups for x in
            (g.dataset_id, g.perm, g.classes, g.key_init, g.key_data, g.key_episode)]


def test_suite_is_identical_for_a_seed_and_differs_across_seeds(pool):
    a, b = build_suite(TINY, pool), build_suite(TINY, pool)
    for x, y in zip(_arrays(a), _arrays(b)):
        np.testing.assert_array_equal(x, y)
    c = build_suite(SuiteConfig(tasks=3, steps=6, short_steps=2, groups=("tiny",), seed=1), pool)
    assert any(not np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(c)))
    # every task's classes belong to its dataset, and are distinct
    g = a[0]
    for d, cls in zip(np.asarray(g.dataset_id), np.asarray(g.classes)):
        assert len(set(cls.tolist())) == TINY.n_way
        assert np.all(np.asarray(pool.class_dataset)[cls] == d)


def test_group_sizes_follow_shares_and_sum_to_n():
    sizes = group_sizes(SuiteConfig(tasks=64))
    # shares 4 : 1 x 8 of 12: floor(64 * 1 / 12) = 5 each, floor(64 * 4 / 12) = 21 plus the
    # remainder 64 - 21 - 40 = 3 for the first group
    assert sizes == {"paper": 24, "deep": 5, "wide": 5, "tanh": 5, "swish": 5, "sigmoid": 5,
                     "step": 5, "leaky_relu": 5, "deep_wide": 5}


def test_a_rule_against_itself_differs_by_exactly_zero_and_runs_are_repeatable():
    recs, scores = validate_rules(["oja", "none", "oja:lr=0.01"], reference="oja", config=TINY,
                                  return_scores=True)
    by = {r["rule"]: r for r in recs}
    assert by["oja"]["diff"] == 0.0 and by["oja"]["diff_ci95"] == 0.0
    assert by["oja"]["tasks"] == 3 and by["oja"]["steps"] == 6
    # "none" never learns: its score is the same at both horizons
    np.testing.assert_array_equal(scores["none"]["accuracy"][0], scores["none"]["accuracy"][1])
    # the paired difference is the mean of per-task differences
    d = 100 * (scores["oja:lr=0.01"]["accuracy"][1] - scores["oja"]["accuracy"][1])
    assert by["oja:lr=0.01"]["diff"] == pytest.approx(d.mean(), abs=1e-3)
    again = validate_rules(["oja"], config=TINY)
    assert again[0]["accuracy"] == by["oja"]["accuracy"]
    for r in recs:  # percent of the per-task accuracies at the long horizon
        assert r["accuracy"] == round(100 * float(scores[r["rule"]]["accuracy"][1].mean()), 3)


def test_untrained_of_a_deterministic_rule_has_one_key_and_a_random_one_several(tmp_path):
    shipped = resolve_rule("untrained:shipped", init_keys=3)
    assert len(shipped.meta_params) == 3  # random read-outs: several keys
    leaves = [jax.tree_util.tree_leaves(m) for m in shipped.meta_params]
    assert not all(np.array_equal(a, b) for a, b in zip(leaves[0], leaves[1]))
    for k, meta in enumerate(shipped.meta_params):  # key k is load_rule's seed k
        chex.assert_trees_all_equal(meta, load_rule("untrained:shipped", seed=k).meta_params)
    rule = make_rule("learned", MLPSpec(n_in=1, widths=(1,)), config="compact")
    path = tmp_path / "compact.safetensors"
    save_rule(path, rule.init_meta_params(jax.random.PRNGKey(7)), rule_name="learned",
              rule_config=dataclasses.asdict(rule.config), provenance={})
    assert len(resolve_rule(f"untrained:{path}", init_keys=3).meta_params) == 1


def test_init_is_the_one_start_of_the_run_everywhere():
    """init:RULE means the run's step 0 in validate as in load_rule: one theta."""
    start = resolve_rule("init:shipped", init_keys=3)
    assert len(start.meta_params) == 1
    chex.assert_trees_all_equal(start.meta_params[0], load_rule("init:shipped").meta_params)
    assert len(resolve_rule("random-init", init_keys=3).meta_params) == 3
    assert len(resolve_rule("oja", init_keys=3).meta_params) == 1


def test_cli_json_fields_and_bad_specs(capsys, tmp_path):
    assert main(["validate", "none", "oja", "--tasks", "3", "--steps", "6", "--short-steps",
                 "2", "--groups", "tiny", "--json"]) == 0
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [l["rule"] for l in lines] == ["none", "oja"]
    for l in lines:
        assert {"rule", "accuracy", "ci95", "diff", "diff_ci95", "tasks", "steps"} <= set(l)
    assert lines[0]["diff"] == 0.0
    for bad in (["nope_rule"], ["oja:lr"], ["init:nope"], ["oja", "--tasks", "0"],
                ["oja", "--groups", "huge"]):
        assert main(["validate", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err
