"""The Python API: a rule as an optax-style init/update pair over the network pytree
(jit, vmap, and the same numbers as metaunsup.train), and the Network object."""
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metaunsup
from metaunsup.errors import UserError
from metaunsup.inner.train import batch_indices


N, D, WIDTHS, B = 64, 12, (8, 4), 16


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).random((N, D), dtype=np.float32)


@pytest.fixture(scope="module")
def rule():
    return metaunsup.load_rule("random-init", seed=1)  # the learned rule, untrained


def _leaves_close(a, b, **tol):
    chex.assert_trees_all_close(jax.tree.leaves(a), jax.tree.leaves(b), **tol)


def test_update_pair_reproduces_train_step_for_step(rule, x):
    """train's documented key schedule, written out with rule.init / jit(rule.update)."""
    key, steps = jax.random.PRNGKey(5), 3
    net0 = metaunsup.init_network(D, WIDTHS, key=jax.random.PRNGKey(2))
    trained = metaunsup.train(rule, x, network=net0, key=key, steps=steps, batch_size=B,
                              progress=False)
    k_init, k_data = jax.random.split(key)
    _, k_state, k = jax.random.split(k_init, 3)
    state = rule.init(net0, key=k_state)
    batches = batch_indices(N, B, int(jax.random.randint(k_data, (), 0, np.iinfo(np.int32).max)))
    update = jax.jit(rule.update)
    net = net0
    for _ in range(steps):
        k, k_step = jax.random.split(k)
        net, state, metrics = update(net, state, jnp.asarray(x[next(batches)]), k_step)
    assert isinstance(net, metaunsup.Network) and net.spec == trained.spec
    _leaves_close(net.params, trained.params, rtol=2e-5, atol=1e-6)
    assert set(metrics) >= {"lr"} and all(np.isfinite(np.asarray(v)).all()
                                          for v in metrics.values())
    # The weights moved: the pair is not the identity.
    assert not np.allclose(net.params[0].w, net0.params[0].w)


def test_update_pair_vmaps_over_two_networks_and_takes_plain_layer_tuples(rule, x):
    nets = [metaunsup.init_network(D, WIDTHS, key=jax.random.PRNGKey(i)) for i in (3, 4)]
    states = [rule.init(n, key=jax.random.PRNGKey(9)) for n in nets]
    keys = jax.random.split(jax.random.PRNGKey(7), 2)
    batch = jnp.asarray(x[:B])
    stack = lambda *t: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *t)  # noqa: E731
    out, _, _ = jax.jit(jax.vmap(rule.update, in_axes=(0, 0, None, 0)))(
        stack(*nets), stack(*states), batch, keys)
    update = jax.jit(rule.update)
    for i in range(2):
        one, _, _ = update(nets[i], states[i], batch, keys[i])
        _leaves_close(jax.tree_util.tree_map(lambda a: a[i], out.params), one.params,
                      rtol=2e-5, atol=1e-6)
    # the same step on the bare (w, b, v) layer tuple
    bare_state = rule.init(nets[1].params, key=jax.random.PRNGKey(9))
    bare, _, _ = update(nets[1].params, bare_state, batch, keys[1])
    _leaves_close(bare, one.params, rtol=1e-6, atol=1e-7)
    with pytest.raises(UserError, match="RuleState"):
        rule.update(nets[0], {}, batch, keys[0])


def test_network_is_a_pytree_with_bn_statistics_and_round_trips(tmp_path, x):
    net, info = metaunsup.train("oja", x, widths=WIDTHS, steps=4, batch_size=B,
                                progress=False, return_info=True)
    # Leaves: w, b, v per layer plus a BN mean and variance per layer; no copy of x.
    sizes = sum(np.size(a) for a in jax.tree_util.tree_leaves(net))
    dims = (D,) + WIDTHS
    assert sizes == sum(2 * dims[i] * dims[i + 1] + 3 * dims[i + 1] for i in range(len(WIDTHS)))
    # The statistics are those of x @ W on the reference batch (all 64 rows here).
    h = x @ np.asarray(net.params[0].w)
    np.testing.assert_allclose(net.bn.mean[0], h.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.bn.var[0], h.var(0), rtol=1e-4, atol=1e-6)
    doubled = jax.tree_util.tree_map(lambda a: 2 * a, net)
    assert isinstance(doubled, metaunsup.Network) and doubled.spec == net.spec
    assert set(info.metrics) and info.curve == []
    feats = metaunsup.features(net, x)
    path = tmp_path / "net.safetensors"
    metaunsup.save_network(path, net, note="test")
    back = metaunsup.load_network(path)
    assert back.spec == net.spec
    np.testing.assert_array_equal(metaunsup.features(back, x), feats)
    # A feature is independent of the rest of its batch (fixed statistics).
    np.testing.assert_allclose(metaunsup.features(net, x[:5]), feats[:5], rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="no such network file"):
        metaunsup.load_network(tmp_path / "absent.safetensors")


def test_train_takes_any_rule_name_and_reports_a_probe_curve(x):
    from metaunsup.rules import rule_names

    hand = [n for n in ("oja", "sanger", "softhebb", "wta") if n in rule_names()]
    for name in hand + ["random-init"]:
        net = metaunsup.train(name, x, widths=WIDTHS, steps=2, batch_size=B, progress=False)
        assert metaunsup.features(net, x).shape == (N, WIDTHS[-1])
    seen = []

    def probe(n):
        seen.append(n)
        return float(np.mean(metaunsup.features(n, x)))

    _, info = metaunsup.train("oja", x, widths=WIDTHS, steps=4, batch_size=B, progress=False,
                              curve_every=2, probe=probe, return_info=True)
    assert info.curve_steps == [0, 2, 4] and len(info.curve) == 3
    assert all(n.bn is not None for n in seen)
    with pytest.raises(UserError, match="go together"):
        metaunsup.train("oja", x, curve_every=2, batch_size=B, progress=False)
    with pytest.raises(UserError, match="'learned' needs meta-parameters"):
        metaunsup.train("learned", x, progress=False)


def test_data_smaller_than_a_batch_is_refused_not_trained_on(x):
    """One example, or fewer than a batch, would give batch-norm statistics of nothing."""
    for data, batch, needle in ((x[:1], 2, "x has 1 example(s); training needs batches of "
                                            "at least 2"),
                                (x[:5], 8, "x has 5 example(s), fewer than one batch of 8"),
                                (x, 1, "must be at least 2")):
        with pytest.raises(UserError, match=re.escape(needle)):
            metaunsup.train("oja", data, widths=WIDTHS, steps=1, batch_size=batch,
                            progress=False)
    net = metaunsup.init_network(D, WIDTHS, key=jax.random.PRNGKey(0))  # no BN statistics
    with pytest.raises(UserError, match="no batch-norm statistics"):
        metaunsup.features(net, x[:1])
    assert metaunsup.features(net, x[:2]).shape == (2, WIDTHS[-1])
