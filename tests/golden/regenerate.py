"""Regenerates the golden files of the shipped rule; the tests only ever read them.

    python tests/golden/regenerate.py            # rewrites both files, prints a diff summary

Run it only when a change of the shipped rule's numbers or tree is intended, and say
why in the commit. It computes exactly what the tests compute, under the suite's own
JAX settings (``tests/conftest.py``: CPU, matmul precision, strict promotion):

- ``shipped_rule_first_steps.json``: the first two updates of a fixed network on fixed
  batches (``tests/test_shipped_rule_golden.py``);
- ``shipped_rule_tree.json``: every tensor's name, shape and dtype
  (``tests/test_shipped_rule.py``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

import conftest  # noqa: E402,F401  (the suite's JAX settings, before JAX computes)
from test_shipped_rule import GOLDEN as TREE  # noqa: E402
from test_shipped_rule import shipped_tree  # noqa: E402
from test_shipped_rule_golden import GOLDEN as FIRST_STEPS  # noqa: E402
from test_shipped_rule_golden import compute  # noqa: E402


def main() -> int:
    for path, data in ((FIRST_STEPS, compute()), (TREE, shipped_tree())):
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        old = path.read_text() if path.exists() else ""
        path.write_text(text)
        print(f"{path.relative_to(TESTS.parent)}: {'unchanged' if old == text else 'rewritten'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
