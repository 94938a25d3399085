"""The options each evaluation method reads, with their types: checked where they are parsed.

``metaunsup evaluate --option KEY=VALUE`` hands ``KEY`` to every selected
method. A key that none of them reads, or a value of the wrong type
(``whiten=maybe``), is a one-line :class:`~metaunsup.errors.UserError`, not a
silently ignored or misread option. Values are typed by
:func:`metaunsup.values.cast_value` (``bool``: true/false/yes/no/on/off/1/0); ``int`` and
``float`` must be positive.

Methods registered elsewhere that are not in :data:`METHOD_OPTIONS` accept any
key (their module documents what they read); add them here to have them checked.
"""
from __future__ import annotations

from typing import Any, Iterable

from metaunsup.errors import UserError
from metaunsup.values import cast_value, guess_value

# Options every trainable method reads (metaunsup.baselines.rule).
_TRAINING = {"steps": int, "batch_size": int, "progress": bool}
_BACKPROP = {**_TRAINING, "lr": float}

METHOD_OPTIONS: dict[str, dict[str, type]] = {
    "raw": {},
    "pca": {"components": int, "whiten": bool},
    "random": {"reference_size": int},
    "random_wide": {"width": int},
    "rule": {**_TRAINING, "rule": str},
    "autoencoder": _BACKPROP,
    "vae": _BACKPROP,
    "supervised": _BACKPROP,
    # the hand-designed rules as methods (metaunsup.baselines.competitive)
    **{name: dict(_TRAINING) for name in ("oja", "softhebb", "krotov_hopfield", "wta", "bcm")},
}
# Set by the command line itself for every method: not a user's --option.
IMPLICIT = ("shots", "progress", "steps", "rule")

def _cast(key: str, value: Any, kind: type) -> Any:
    typed = cast_value(value, kind, name=f"--option {key}")
    if kind in (int, float) and not typed > 0:
        raise UserError(f"--option {key}={value}: must be > 0")
    return typed


def check_options(methods: Iterable[str], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with values cast to the types the ``methods`` read; raises on unknown keys.

    Args:
      methods: the selected method names.
      options: ``{key: value}`` as given by the user (strings or parsed values).

    Returns:
      The options with typed values.
    """
    methods = list(methods)
    if any(m not in METHOD_OPTIONS for m in methods):  # undeclared method: accept as given
        return {k: guess_value(v) if isinstance(v, str) else v for k, v in options.items()}
    out = {}
    for key, value in options.items():
        kinds = {METHOD_OPTIONS[m][key] for m in methods if key in METHOD_OPTIONS[m]}
        if not kinds:
            known = sorted({k for m in methods for k in METHOD_OPTIONS[m]} - set(IMPLICIT))
            raise UserError(f"--option {key}: not read by method{'s' if len(methods) > 1 else ''} "
                            f"{', '.join(methods)} (their options: "
                            f"{', '.join(known) if known else 'none'})")
        out[key] = _cast(key, value, kinds.pop())
    return out


__all__ = ["METHOD_OPTIONS", "check_options"]
