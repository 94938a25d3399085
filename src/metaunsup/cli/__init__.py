"""The ``metaunsup`` command: one module per subcommand, each a thin layer over the library.

Every module here has ``NAME``, ``add_parser(sub)`` (its options, from the shared
definitions of :mod:`metaunsup.cli.options`) and ``run(args) -> int`` (turn the
arguments into values, call library functions, print). Every problem the user can
cause surfaces as a :class:`~metaunsup.errors.UserError`, printed as one line on
stderr with exit status 2 (argument-syntax errors included).

=================  ==========================================================
command            library
=================  ==========================================================
``evaluate``       :func:`metaunsup.eval.evaluate.evaluate_methods`
``demo``           :func:`metaunsup.eval.demo.run_demo`
``meta-train``     :func:`metaunsup.outer.trainer.meta_train`
``export-rule``    :func:`metaunsup.outer.export.export_rule`
``validate``       :func:`metaunsup.eval.validate.validate_rules`
``train``          :func:`metaunsup.train`
``features``       :func:`metaunsup.features`
``study``          :func:`metaunsup.studies.run_study`
``report``         :func:`metaunsup.studies.report.render`
``datasets``       :func:`metaunsup.data.list_datasets`
=================  ==========================================================
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from metaunsup.cli import (
    datasets,
    demo,
    evaluate,
    export_rule,
    features,
    meta_train,
    report,
    study,
    train,
    validate,
)
from metaunsup.cli.options import Parser
from metaunsup.errors import UserError
from metaunsup.run.compile_cache import enable as enable_compile_cache

COMMANDS = (demo, evaluate, train, features, meta_train, export_rule, validate, study, report,
            datasets)
DESCRIPTION = ("Meta-learned unsupervised learning rules: apply a rule to your data (train, "
               "features), evaluate rules and baselines with few-shot probes (evaluate, demo, "
               "validate, study, report), and meta-train new rules (meta-train, export-rule).")


def build_parser() -> Parser:
    """The parser of every subcommand."""
    parser = Parser(prog="metaunsup", description=DESCRIPTION)
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not use JAX's persistent compilation cache (default folder "
                             "~/.cache/metaunsup/jax; see metaunsup.run.compile_cache)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


_RUN = {command.NAME: command.run for command in COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Returns the exit status (0 ok, 2 bad input)."""
    try:
        args = build_parser().parse_args(argv)
        enable_compile_cache(disabled=args.no_compile_cache)  # before any JAX computation
        return _RUN[args.command](args)
    except UserError as e:
        msg = " ".join(str(e).split())  # one line, whatever the message held
        print(f"metaunsup: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("metaunsup: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "build_parser", "main"]
