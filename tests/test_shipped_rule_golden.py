"""The shipped rule's outputs pinned: its first two updates of a fixed network on fixed
batches, as numbers (tests/golden/shipped_rule_first_steps.json).

A change to the rule's maths, its configuration handling or the base network
changes these numbers and fails here, so what the shipped rule does cannot
change silently. If the change is intended, regenerate the file with
``python tests/golden/regenerate.py`` (the test never writes it) and say why in
the commit.
"""
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metaunsup
from metaunsup.rules.loading import shipped_rule_path

GOLDEN = Path(__file__).parent / "golden" / "shipped_rule_first_steps.json"
N_IN, WIDTHS, BATCH, STEPS = 16, (12, 6), 32, 2

pytestmark = pytest.mark.skipif(not shipped_rule_path().is_file(), reason="no shipped rule")


def _summary(a) -> dict:
    a = np.asarray(a, np.float64)
    return {"sum": float(a.sum()), "abs_sum": float(np.abs(a).sum()),
            "first": [float(v) for v in a.ravel()[:4]]}


def compute() -> dict:
    rule = metaunsup.load_rule()
    net = metaunsup.init_network(N_IN, WIDTHS, key=jax.random.PRNGKey(0))
    state = rule.init(net, key=jax.random.PRNGKey(1))
    rng = np.random.default_rng(0)
    batches = rng.random((STEPS, BATCH, N_IN), dtype=np.float32)
    update = jax.jit(rule.update)
    out = {"rule_meta_steps": rule.header["provenance"]["meta_steps"], "steps": []}
    for t in range(STEPS):
        new, state, metrics = update(net, state, jnp.asarray(batches[t]),
                                     jax.random.PRNGKey(10 + t))
        step = {"metrics": {k: float(np.asarray(v)) for k, v in sorted(metrics.items())
                            if np.size(v) == 1}}
        for i, (a, b) in enumerate(zip(net.params, new.params)):
            step[f"layer{i}"] = {"dw": _summary(b.w - a.w), "db": _summary(b.b - a.b),
                                 "dv": _summary(b.v - a.v)}
        out["steps"].append(step)
        net = new
    return out


def _compare(got, want, where=""):
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            _compare(got[k], want[k], f"{where}/{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        # float32 maths on CPU; the tolerance is far below any change of the rule's maths
        assert got == pytest.approx(want, rel=1e-4, abs=1e-7), where
    else:
        assert got == want, where


def test_shipped_rule_first_updates_match_golden_numbers():
    got = compute()
    want = json.loads(GOLDEN.read_text())
    _compare(got, want)
    # The update is not trivially zero: the pinned numbers carry information.
    assert want["steps"][0]["layer0"]["dw"]["abs_sum"] > 0
