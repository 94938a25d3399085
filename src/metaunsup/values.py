"""Typed values from the command line and from files: the one ``key=value`` parser.

Every command that takes ``KEY=VALUE`` words (``evaluate --option``, ``study --set``,
``meta-train --set``, a hand-designed rule's ``NAME:key=value,...``) splits them with
:func:`parse_pair` / :func:`parse_pairs` and types each value with :func:`cast_value`
against the type it is declared with: a dataclass field's annotation (rule options,
config sections; :func:`cast_fields`) or the type of a default. A value that does not
fit is a one-line :class:`~metaunsup.errors.UserError` naming the key, the value and
the expected type, e.g. ``config: learning_rate='fast': expected a number (float)``.

Accepted spellings (text): ``bool``: true/false, yes/no, on/off, 1/0; ``int``: an
integer (``3``, not ``3.5``); ``float``: any finite number; ``str``: as given;
``tuple``/``list``: comma-separated items, each typed; ``A | B``: the first that fits.
With ``strict=True`` (values already typed by TOML) text is not converted to
numbers or booleans, so ``--set learning_rate=fast`` is refused rather than misread.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Iterable

from metaunsup.errors import UserError

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_pair(text: str, *, what: str = "option") -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")`` (key stripped; the value may be empty)."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise UserError(f"{what}: expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def parse_pairs(text: str, *, what: str = "options") -> dict[str, str]:
    """``"a=1,b=x"`` -> ``{"a": "1", "b": "x"}``; a key given twice is an error."""
    out: dict[str, str] = {}
    for item in str(text).split(","):
        key, value = parse_pair(item, what=what)
        if not value:
            raise UserError(f"{what}: {key} has no value (expected key=value,key=value)")
        if key in out:
            raise UserError(f"{what}: {key} is given twice")
        out[key] = value
    return out


def guess_value(text: str) -> Any:
    """An untyped value's most likely type: true/false, an int, a float, else the text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def describe(hint: Any) -> str:
    """``float`` -> "a float", ``tuple[int, int]`` -> "a list of 2 ints", ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args if a is not type(None)) + \
            (" or none" if type(None) in args else "")
    if origin in (tuple, list):
        if len(args) == 2 and args[1] is Ellipsis or origin is list:
            return f"a comma-separated list of {getattr(args[0], '__name__', args[0])}"
        if args:
            return f"a list of {len(args)} {getattr(args[0], '__name__', args[0])}s"
        return "a list"
    name = getattr(hint, "__name__", str(hint))
    return {"bool": "true or false", "int": "an integer", "float": "a number (float)",
            "str": "a string"}.get(name, f"a {name}")


class _Mismatch(Exception):
    pass


def _scalar(value: Any, kind: type, strict: bool) -> Any:
    text = isinstance(value, str)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if text and not strict and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise _Mismatch
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text and not strict:
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _Mismatch
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif text and not strict:
            try:
                number = float(value.strip())
            except ValueError:
                raise _Mismatch from None
        else:
            raise _Mismatch
        if not math.isfinite(number):
            raise _Mismatch
        return number
    if kind is str:
        if text:
            return value
        raise _Mismatch
    if kind is type(None):
        if value is None or (text and value.strip().lower() in ("none", "")):
            return None
        raise _Mismatch
    if isinstance(kind, type) and isinstance(value, kind):
        return value
    raise _Mismatch


def _cast(value: Any, hint: Any, strict: bool) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _cast(value, option, strict)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch
    if origin in (tuple, list) or hint in (tuple, list):
        if isinstance(value, str):
            items = [v for v in value.split(",") if v.strip()] if value.strip() else []
            strict = False  # text items: parse each as its type
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise _Mismatch
        if not args:
            out = items
        elif origin is list or (len(args) == 2 and args[1] is Ellipsis):
            out = [_cast(v, args[0], strict) for v in items]
        else:
            if len(items) != len(args):
                raise _Mismatch
            out = [_cast(v, a, strict) for v, a in zip(items, args)]
        return tuple(out) if (origin or hint) is tuple else out
    if isinstance(hint, type):
        return _scalar(value, hint, strict)
    return value  # an annotation this parser does not know: left to the owner's checks


def cast_value(value: Any, hint: Any, *, name: str, strict: bool = False) -> Any:
    """``value`` (text, or an already typed value) as type ``hint``, or a one-line error.

    Args:
      value: the value as given (command-line text or a parsed TOML/JSON value).
      hint: the declared type: ``bool``, ``int``, ``float``, ``str``, ``tuple[int, int]``,
        ``tuple[str, ...]``, ``list[int]``, ``bool | str``, ``X | None``, ...
      name: how the value is called in the error (the key or the option).
      strict: text is not converted to numbers or booleans (module doc).
    """
    try:
        return _cast(value, hint, strict)
    except _Mismatch:
        raise UserError(f"{name}={value!r}: expected {describe(hint)}") from None


def field_types(cls: type) -> dict[str, Any]:
    """``{field name: annotation}`` of a dataclass (string annotations resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def cast_fields(cls: type, values: dict[str, Any], *, what: str,
                strict: bool = False, skip: Iterable[str] = ()) -> dict[str, Any]:
    """``values`` typed by the fields of dataclass ``cls``; an unknown key is an error.

    Args:
      cls: the dataclass whose fields declare the types.
      values: ``{field: value}`` as given.
      what: names the owner in errors ("rule 'oja'", "config section tasks", ...).
      strict: see :func:`cast_value`.
      skip: fields passed through unchecked.
    """
    kinds = field_types(cls)
    out = {}
    for key, value in values.items():
        if key not in kinds:
            raise UserError(f"{what} has no option {key!r}; options: {', '.join(sorted(kinds))}")
        out[key] = value if key in skip else cast_value(value, kinds[key],
                                                        name=f"{what}: {key}", strict=strict)
    return out


__all__ = ["cast_fields", "cast_value", "describe", "field_types", "guess_value",
           "parse_pair", "parse_pairs"]
