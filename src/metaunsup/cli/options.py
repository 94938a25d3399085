"""The option definitions every ``metaunsup`` command shares, and the parser that raises.

Each command module (:mod:`metaunsup.cli`) adds its options with these helpers, so
an option means the same and is spelled the same in every command; values are typed
here (positive integers, ``KEY=VALUE`` words by :mod:`metaunsup.values`) and passed
to library functions as plain values.
"""
from __future__ import annotations

import argparse

from metaunsup.errors import UserError, check_positive_int
from metaunsup.models import PAPER_WIDTHS
from metaunsup.values import parse_pair

PAPER = ",".join(map(str, PAPER_WIDTHS))
RULE_SPECS = ("a rule spec: shipped, a rule file, WORKDIR[@STEP], init:RULE (where RULE's "
              "meta-training started), untrained:RULE, random-init, or a hand-designed rule "
              "NAME[:key=value,...] (oja, sanger, softhebb, none, ...)")


class Parser(argparse.ArgumentParser):
    """argparse that raises UserError (one line, exit 2 in main) instead of exiting."""

    def error(self, message):
        sub = " ".join(self.prog.split()[1:])  # "evaluate" for a subcommand, "" at the top
        raise UserError(f"{sub}: {message}" if sub else message)


def _argparse_type(parse, what: str):
    """``parse`` as an argparse type: its one-line UserError becomes argparse's message."""
    def typed(text):
        try:
            return parse(text)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    typed.__name__ = what  # argparse names the type in its messages
    return typed


def positive_int(name: str):
    """An argparse type: a positive integer, the error naming ``name``."""
    return _argparse_type(lambda text: check_positive_int(text, name=name), "positive int")


def nonneg_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def key_value(what: str):
    """An argparse type: ``KEY=VALUE`` (:func:`metaunsup.values.parse_pair`); the value is
    typed later by whatever reads it."""
    return _argparse_type(lambda text: parse_pair(text, what=what), "KEY=VALUE")


def _max_test(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        return check_positive_int(text, name="--max-test")
    except UserError:
        raise UserError(f"expected a positive integer or 'all', got {text!r}") from None


max_test = _argparse_type(_max_test, "max test")
"""An argparse type: a positive integer, or ``all`` (None)."""


def names(text: str) -> list[str]:
    """A comma-separated list of names (empty items dropped)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def add_network(p, *, widths: str = PAPER, activation: bool = True) -> None:
    """``--widths`` (and ``--activation``): the base network."""
    p.add_argument("--widths", default=widths,
                   help="base network layer widths, bottom to top (the paper's: "
                        f"{PAPER})")
    if activation:
        p.add_argument("--activation", default="relu", help="base network nonlinearity")


def add_protocol(p, *, shots: int = 10, seeds: int = 5) -> None:
    """``--shots`` and ``--seeds``: the few-shot probe's protocol."""
    p.add_argument("--shots", type=int, default=shots, help="labelled examples per class")
    p.add_argument("--seeds", type=int, default=seeds, help="number of seeds")


def add_rule(p, *, default: str = "the shipped rule", **kwargs) -> None:
    """``--rule``: any rule spec (:mod:`metaunsup.rules.loading`)."""
    kwargs.setdefault("help", f"{RULE_SPECS} (default: {default})")
    p.add_argument("--rule", metavar="RULE", **kwargs)


def add_json(p, what: str = "one JSON object per line") -> None:
    p.add_argument("--json", action="store_true", help=what)


def add_no_progress(p) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars (they are drawn on a terminal only)")


def add_force(p, what: str) -> None:
    p.add_argument("--force", action="store_true", help=what)


__all__ = ["PAPER", "Parser", "RULE_SPECS", "add_force", "add_json", "add_network",
           "add_no_progress", "add_protocol", "add_rule", "key_value", "max_test", "names",
           "nonneg_int", "positive_int"]
