"""``metaunsup validate``: rules compared pair by pair on a fixed suite of tasks.

Library: :func:`metaunsup.eval.validate.suite_settings` and
:func:`metaunsup.eval.validate.validate_rules`.
"""
from __future__ import annotations

import json

from metaunsup.cli import options as opt
from metaunsup.eval.validate import (
    DEFAULT_INIT_KEYS,
    QUICK,
    format_record,
    header,
    resolve_rule,
    suite_settings,
    validate_rules,
)
from metaunsup.tasks.suite import SUITES, SuiteConfig, group_sizes

NAME = "validate"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="compare rules pair by pair on a fixed suite of validation tasks",
        description="Scores rules on a fixed, seeded suite of tasks from the validation split "
                    "of the meta-training data (glyphs, digits, natural-image patches, generated "
                    "non-image families; never MNIST, Fashion-MNIST or text), or with --suite "
                    "transfer on families kept out of meta-training, every rule on the same "
                    f"tasks, networks, minibatches and episodes. RULE: {opt.RULE_SPECS}.")
    p.add_argument("rules", nargs="+", metavar="RULE")
    p.add_argument("--reference", metavar="RULE",
                   help="paired differences are taken to this rule (default: the first)")
    p.add_argument("--tasks", type=opt.positive_int("--tasks"),
                   help=f"number of suite tasks N (default {SuiteConfig.tasks}; --quick: "
                        f"{QUICK['tasks']})")
    p.add_argument("--steps", type=opt.positive_int("--steps"),
                   help=f"inner steps S, the long horizon (default {SuiteConfig.steps}; "
                        f"--quick: {QUICK['steps']})")
    p.add_argument("--short-steps", type=opt.nonneg_int,
                   help=f"the short horizon, at most --steps (default: the smaller of "
                        f"{SuiteConfig.short_steps} (--quick: {QUICK['short_steps']}) and "
                        "--steps)")
    p.add_argument("--seed", type=opt.nonneg_int, default=SuiteConfig.seed,
                   help=f"suite seed (default {SuiteConfig.seed})")
    p.add_argument("--groups", help="comma-separated architecture groups (default: all; "
                                    f"--quick: {','.join(QUICK['groups'])})")
    p.add_argument("--suite", choices=sorted(SUITES), default="validation",
                   help="validation: the validation split of the meta-training families; "
                        "transfer: families kept out of meta-training and validation")
    p.add_argument("--init-keys", type=opt.positive_int("--init-keys"),
                   default=DEFAULT_INIT_KEYS,
                   help=f"initialisation keys averaged for a seeded spec (untrained:RULE, "
                        f"random-init; default {DEFAULT_INIT_KEYS})")
    p.add_argument("--quick", action="store_true",
                   help="tiny suite for smoke tests: its own defaults for --tasks, --steps, "
                        "--short-steps and --groups (options given explicitly still apply)")
    opt.add_json(p, "one JSON object per rule and line")
    opt.add_no_progress(p)


def run(args) -> int:
    config = suite_settings(args.suite, tasks=args.tasks, steps=args.steps,
                            short_steps=args.short_steps, seed=args.seed, quick=args.quick,
                            groups=None if args.groups is None else args.groups.split(","))
    reference = args.reference or args.rules[0]
    for spec in dict.fromkeys([reference, *args.rules]):  # every spec checked before any run
        resolve_rule(spec, init_keys=args.init_keys)
    if not args.json:
        sizes = ", ".join(f"{g} {n}" for g, n in group_sizes(config).items())
        print(f"suite: {config.tasks} tasks ({sizes}), seed {config.seed}, {args.suite} split of "
              f"{' + '.join(config.datasets)}, {config.n_way}-way {config.shots}-shot logistic "
              f"probe")
        print(header(config, reference), flush=True)

    def emit(rec):
        print(json.dumps(rec) if args.json else format_record(rec), flush=True)

    validate_rules(args.rules, reference=reference, config=config, init_keys=args.init_keys,
                   progress=args.progress and not args.json, emit=emit)
    return 0
