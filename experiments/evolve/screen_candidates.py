"""Two candidates read straight off the one-at-a-time screen (experiments/screen), to set
beside the CMA-ES run's best: the start with its bias read-out moved as the screen's two
clearest single gains say (``bias[a]`` -0.3, +3.4 +- 2.4 points pooled; ``bias[const]``
-0.3, +2.9 +- 2.0), first ``bias[a]`` alone, then both together.

Command::

    python experiments/evolve/screen_candidates.py
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
MOVES = {"screen_bias_a": {"bias[a]": -0.3},
         "screen_bias_a_const": {"bias[a]": -0.3, "bias[const]": -0.3}}


def main() -> None:
    rule = make_rule("learned", MLPSpec(196, (128, 32)), config="pool")
    space = residual_around(rule, rule.init_meta_params(jax.random.PRNGKey(0)))
    for name, moves in MOVES.items():
        theta = np.zeros(space.size, np.float32)
        for coord, value in moves.items():
            theta[space.names.index(coord)] = value
        save_rule(HERE / f"{name}.safetensors", space(theta), rule_name="learned",
                  rule_config=dataclasses.asdict(rule.config),
                  provenance=make_provenance(recipe="experiments/evolve/screen_candidates.py",
                                             how=f"start + {moves} (screen stage 1)",
                                             directions=list(space.names), theta=theta.tolist()))


if __name__ == "__main__":
    main()
