"""Rule files for the correlation study (issue 22): the term-pool start, the one-shot hand
change (SoftHebb competition mixed in at -0.3 / +0.3) and 20 random residuals around the
start (every coordinate N(0, 0.2^2), seeds 0..19), written to ``rules/``.

Command::

    python experiments/transfer_validation/make_rules.py
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from metaunsup.models import MLPSpec
from metaunsup.rules import make_rule
from metaunsup.rules.residual import residual_around
from metaunsup.run import make_provenance, save_rule

HERE = Path(__file__).resolve().parent


def main() -> None:
    rule = make_rule("learned", MLPSpec(196, (128, 32)), config="pool")
    start = rule.init_meta_params(jax.random.PRNGKey(0))
    space = residual_around(rule, start)
    out = HERE / "rules"
    out.mkdir(exist_ok=True)

    def write(name, theta, how):
        theta = np.asarray(theta, np.float32)
        save_rule(out / f"{name}.safetensors", space(theta), rule_name="learned",
                  rule_config=dataclasses.asdict(rule.config),
                  provenance=make_provenance(recipe="experiments/transfer_validation/make_rules.py",
                                             how=how, directions=list(space.names),
                                             theta=theta.tolist()))

    write("pool_start", np.zeros(space.size), "theta = 0: the untrained pool rule (= compact)")
    hand = np.zeros(space.size)
    hand[space.names.index("mix[soft_hebb]")] = -0.3
    hand[space.names.index("mix[soft_decay]")] = 0.3
    write("pool_softhebb_hand", hand, "start + SoftHebb competition, mix -0.3 / +0.3")
    for seed in range(20):
        theta = 0.2 * np.random.default_rng([2026, seed]).normal(size=space.size)
        write(f"pool_random_{seed:02d}", theta, f"start + N(0, 0.2^2) per coordinate, seed {seed}")


if __name__ == "__main__":
    main()
