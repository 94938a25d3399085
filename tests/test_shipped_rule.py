"""The rule shipped inside the package: safe to load, self-describing, and its
parameter tree pinned (names, shapes, dtypes) so a refactor cannot orphan it."""
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from metaunsup.models import MLPSpec
from metaunsup.rules.loading import load_rule, shipped_rule_path
from metaunsup.run.checkpoint import flatten_named

GOLDEN = Path(__file__).parent / "golden" / "shipped_rule_tree.json"

pytestmark = pytest.mark.skipif(not shipped_rule_path().is_file(), reason="no shipped rule")


def shipped_tree() -> dict:
    """Every tensor of the shipped rule: name -> [shape, dtype]."""
    arrays, _ = flatten_named(load_rule().meta_params)
    return {name: [list(a.shape), str(a.dtype)] for name, a in arrays.items()}


def test_shipped_rule_tree_matches_golden():
    """Regenerate with ``python tests/golden/regenerate.py`` (never from a test)."""
    assert shipped_tree() == json.loads(GOLDEN.read_text())


def test_shipped_rule_header_is_complete():
    header = load_rule().header
    assert header["format"] == "metaunsup-rule" and header["format_version"] == 1
    prov = header["provenance"]
    for field in ("recipe", "seed", "meta_steps", "commit"):
        assert field in prov
    assert shipped_rule_path().stat().st_size < 5 * 2**20


@pytest.mark.slow  # compiles the paper-size rule
def test_shipped_rule_current_code_builds_and_steps_any_width():
    loaded = load_rule()
    for widths in ((16, 8), (64, 64, 32)):
        rule = loaded.for_net(MLPSpec(n_in=20, widths=widths))
        from metaunsup.inner import init_inner_state, inner_step

        state = init_inner_state(rule, loaded.meta_params, key=jax.random.PRNGKey(0))
        x = jax.random.uniform(jax.random.PRNGKey(1), (16, 20))
        state, _ = inner_step(rule, loaded.meta_params, state, x)
        assert all(np.all(np.isfinite(p.w)) for p in state.params)


def test_init_spec_is_the_shipped_runs_own_fixed_starting_point():
    """'init:shipped': same configuration and tensors, other values, the same every call;
    hand-designed rules have no such point (one-line error)."""
    from metaunsup.errors import UserError
    from metaunsup.studies.methods import init_rule_spec

    shipped, start = load_rule(), load_rule("init:shipped")
    assert start.config == shipped.config and start.header["provenance"]["meta_steps"] == 0
    a, _ = flatten_named(shipped.meta_params)
    b, _ = flatten_named(start.meta_params)
    c, _ = flatten_named(load_rule("init:shipped").meta_params)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    assert all(np.array_equal(b[k], c[k]) for k in b)
    assert init_rule_spec(None) == "init:shipped"
    with pytest.raises(UserError, match="hand-designed"):
        load_rule("init:oja")
