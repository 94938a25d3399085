"""Warm-starting a richer learned rule from a compact one (rules.warm_start)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec, init_params
from metaunsup.rules import make_rule
from metaunsup.rules.learned import rule_config
from metaunsup.rules.warm_start import (SHARED_PLANES, check_warm_start, dropped_parts,
                                         warm_start_meta_params)

COMPACT_OPTIONS = dict(lr=3e-3, learn_lr=True, lr_max=0.05, normalize_columns=True)


def _trained_compact(net):
    """The compact rule with every shared mixing weight, log_lr and log_tau moved."""
    rule = make_rule("learned", net, config="compact")
    meta = rule.init_meta_params(jax.random.PRNGKey(0))
    labels = rule.config.plane_labels
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    shared = jnp.array([lab in SHARED_PLANES for lab in labels], jnp.float32)
    meta["mix"]["w"] = meta["mix"]["w"] + shared * jax.random.normal(k1, (len(labels),))
    meta["mix"]["kind"] = shared * 0.3 * jax.random.normal(k2, (3, len(labels)))
    meta["mix"]["log_tau"] = jnp.float32(-1.2)
    meta["log_lr"] = jnp.float32(np.log(0.01))
    return rule, meta


@pytest.mark.slow  # compiles the full learned rule's step and gradient
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_warm_started_rule_updates_exactly_like_its_source(activation):
    net = MLPSpec(n_in=12, widths=(9, 7, 5), activation=activation)
    source, src_meta = _trained_compact(net)
    assert dropped_parts(source.config, src_meta) == []
    target = make_rule("learned", net, config="small_competitive", **COMPACT_OPTIONS)
    tgt_meta = warm_start_meta_params(target.config, target.init_meta_params(
        jax.random.PRNGKey(5)), source.config, src_meta)
    params = init_params(jax.random.PRNGKey(2), net)
    s_src = source.init_state(src_meta, params, key=jax.random.PRNGKey(0))
    s_tgt = target.init_state(tgt_meta, params, key=jax.random.PRNGKey(0))
    p_src = p_tgt = params
    for t in range(3):
        x = jax.random.normal(jax.random.PRNGKey(10 + t), (16, 12))
        p_src, s_src, _ = source.step(src_meta, p_src, s_src, x, key=jax.random.PRNGKey(t))
        p_tgt, s_tgt, _ = target.step(tgt_meta, p_tgt, s_tgt, x, key=jax.random.PRNGKey(t))
    for a, b in zip(jax.tree_util.tree_leaves(p_src), jax.tree_util.tree_leaves(p_tgt)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
    # ... and moved away from the initial network (the comparison is not vacuous)
    assert float(jnp.max(jnp.abs(p_tgt[0].w - params[0].w))) > 1e-3


@pytest.mark.slow  # compiles the full learned rule's step and gradient
def test_warm_start_leaves_a_gradient_on_the_readout_planes():
    """Zero read-out mixing weights but random read-outs: not a saddle point."""
    net = MLPSpec(n_in=8, widths=(6, 4))
    source, src_meta = _trained_compact(net)
    target = make_rule("learned", net, config="small_competitive", **COMPACT_OPTIONS)
    meta = warm_start_meta_params(target.config, target.init_meta_params(
        jax.random.PRNGKey(5)), source.config, src_meta)
    params = init_params(jax.random.PRNGKey(2), net)
    x = jax.random.normal(jax.random.PRNGKey(3), (16, 8))
    state = target.init_state(meta, params, key=None)

    def loss(m):
        new, _, _ = target.step(m, params, state, x, key=jax.random.PRNGKey(0))
        return jnp.sum(jnp.square(new[-1].w))

    g = jax.grad(loss)(meta)
    labels = target.config.plane_labels
    outer = [i for i, lab in enumerate(labels) if lab.startswith("outer[")]
    assert float(jnp.max(jnp.abs(g["mix"]["w"][jnp.array(outer)]))) > 0


def test_warm_start_refuses_incompatible_configurations():
    net = MLPSpec(n_in=8, widths=(6, 4))
    source = make_rule("learned", net, config="compact")
    with pytest.raises(UserError, match="normalize_columns"):
        check_warm_start(rule_config("small_competitive"), source.config)
    with pytest.raises(UserError, match="lacks plane"):
        check_warm_start(rule_config("small", **COMPACT_OPTIONS), source.config)


def test_dropped_parts_names_what_a_trained_source_loses():
    net = MLPSpec(n_in=8, widths=(6, 4))
    source, meta = _trained_compact(net)
    i = source.config.plane_labels.index("outer[0]")
    meta["mix"]["w"] = meta["mix"]["w"].at[i].set(0.5)
    meta["bias"]["w"] = meta["bias"]["w"] + 1.0
    assert dropped_parts(source.config, meta) == ["outer[0]", "bias read-out"]
