"""The residual search space (rules/residual.py) and the 'pool' preset: theta = 0 is the
untrained rule exactly, every coordinate moves exactly its own scalar, and 'pool' with its
new per-kind step sizes at zero steps exactly as 'compact'."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.inner import init_inner_state, inner_step
from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule
from metaunsup.rules.residual import coordinates, residual_around

NET = MLPSpec(12, (8, 6, 4))


def _pool():
    rule = make_rule("learned", NET, config="pool")
    return rule, rule.init_meta_params(jax.random.key(0))


def test_theta_zero_is_the_start_exactly_and_each_coordinate_moves_one_scalar():
    rule, start = _pool()
    space = residual_around(rule, start)
    assert space.size == 60 == len(set(space.names))  # 13 planes x (1 + 3 kinds) + 8 others
    zero = space(space.zeros())
    chex.assert_trees_all_equal(start, zero)
    flat0 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(start)])
    moved = jax.vmap(space)(0.5 * jnp.eye(space.size))
    flats = np.stack([np.concatenate([np.ravel(x[i]) for x in jax.tree.leaves(moved)])
                      for i in range(space.size)])
    delta = flats - flat0[None]
    # each unit vector of theta changes exactly one distinct scalar, by 0.5 * scale (1)
    assert np.all(np.sum(delta != 0, axis=1) == 1)
    assert np.allclose(delta.sum(axis=1), 0.5)
    assert len({int(np.flatnonzero(d)[0]) for d in delta}) == space.size


def test_names_select_and_errors():
    rule, start = _pool()
    names = [c.name for c in coordinates(rule.config, start)]
    assert {"mix[hebb]", "mix[top:soft_hebb]", "log_lr[bottom]", "log_tau", "bias[z]",
            "bias[const]", "mix[outer]"} <= set(names)
    space = residual_around(rule, start, ["log_lr", "mix[soft_hebb]"])
    meta = space(jnp.array([1.0, -0.3]))
    assert float(meta["log_lr"]) == pytest.approx(float(start["log_lr"]) + 1.0)
    i = rule.config.plane_labels.index("soft_hebb")
    assert float(meta["mix"]["w"][i]) == pytest.approx(-0.3)
    with pytest.raises(UserError, match="unknown direction"):
        residual_around(rule, start, ["mix[nope]"])
    with pytest.raises(UserError, match="shape"):
        space(jnp.zeros(3))
    small = make_rule("learned", NET, config="small")
    with pytest.raises(UserError, match="cannot name"):
        coordinates(small.config, small.init_meta_params(jax.random.key(0)))


@pytest.mark.slow  # compiles two learned-rule configurations
def test_pool_at_zero_offsets_steps_exactly_as_compact_and_offsets_scale_the_step():
    x = jax.random.uniform(jax.random.key(3), (16, NET.n_in))
    outs = {}
    for name in ("compact", "pool"):
        rule = make_rule("learned", NET, config=name)
        meta = rule.init_meta_params(jax.random.key(0))
        state = init_inner_state(rule, meta, key=jax.random.key(1))
        outs[name] = (rule, meta, state, inner_step(rule, meta, state, x)[0].params)
    chex.assert_trees_all_equal(outs["compact"][3], outs["pool"][3])
    rule, meta, state, _ = outs["pool"]
    meta = {**meta, "log_lr_kind": jnp.array([np.log(2.0), 0.0, 0.0], jnp.float32)}
    _, _, metrics = rule.step(meta, state.params, state.rule_state, x, key=jax.random.key(0))
    # the bottom layer's step is twice the others'
    assert float(metrics["lr/0"]) == pytest.approx(2 * float(metrics["lr/1"]), rel=1e-6)
    assert float(metrics["lr/2"]) == pytest.approx(float(metrics["lr/1"]), rel=1e-6)
