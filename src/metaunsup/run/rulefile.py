"""The shared rule file: a meta-trained rule's parameters plus how it was made.

A rule file is what a user downloads or ships (``rule.safetensors`` in a run's
workdir); it is not a trainer checkpoint (no optimizer state, no task state).
It is a :mod:`metaunsup.run.checkpoint` safetensors file whose JSON header is::

    {"format": "metaunsup-rule", "format_version": 1,
     "rule": "<registered rule name>",
     "rule_config": {... the rule's static configuration ...},
     "provenance": {"recipe": ..., "seed": ..., "meta_steps": ..., "wall_time_s": ...,
                    "commit": ..., "date": ..., "metaunsup_version": ..., ...}}

and whose tensors are the ``meta_params`` leaves named by their paths
("top/w0", ...). Readers refuse other formats and newer versions with a one-line
error naming the file. Loading one never executes code.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import jax

from metaunsup.errors import UserError
from metaunsup.run.checkpoint import CorruptFileError, check_format, read_tree, write_tree
from metaunsup.types import MetaParams, PyTree

RULE_FORMAT = "metaunsup-rule"
RULE_FORMAT_VERSION = 1
_REQUIRED = ("rule", "rule_config", "provenance")


def _as_dict(value: Any, *, name: str) -> dict:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if not isinstance(value, dict):
        raise UserError(f"{name} must be a dict, got {type(value).__name__}")
    return dict(value)


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The current git commit of ``cwd`` (``-dirty`` if modified), or None."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                  timeout=5, check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


def make_provenance(**fields: Any) -> dict:
    """Provenance for a rule file: the caller's ``fields`` plus the environment.

    Pass what only the caller knows (``recipe``, ``seed``, ``meta_steps``,
    ``wall_time_s``, ``estimator``, ...). Added unless given: ``date`` (UTC,
    ISO 8601), ``commit`` (git, best effort), ``metaunsup_version``,
    ``jax_version``, ``python``, ``platform``.
    """
    try:
        version = importlib_metadata.version("metaunsup")
    except importlib_metadata.PackageNotFoundError:
        version = None
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(Path(__file__).parent),
        "metaunsup_version": version,
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    return {**env, **fields}


def save_rule(path: str | os.PathLike, meta_params: MetaParams, *, rule_name: str,
              rule_config: dict, provenance: dict) -> None:
    """Atomically writes a rule file (see module doc).

    Args:
      path: destination, conventionally ``*.safetensors``.
      meta_params: the rule's parameters (nested dict of arrays).
      rule_name: the registry name the rule is built with (``make_rule``).
      rule_config: the rule's static options (a dict or a config dataclass),
        JSON-serialisable; tuples come back as lists.
      provenance: how the parameters were obtained, e.g. :func:`make_provenance`.
    """
    if not isinstance(rule_name, str) or not rule_name:
        raise UserError(f"rule_name must be a non-empty string, got {rule_name!r}")
    header = {"format": RULE_FORMAT, "format_version": RULE_FORMAT_VERSION, "rule": rule_name,
              "rule_config": _as_dict(rule_config, name="rule_config"),
              "provenance": _as_dict(provenance, name="provenance")}
    write_tree(path, meta_params, header)


def load_rule_file(path: str | os.PathLike, template: PyTree | None = None
                   ) -> tuple[MetaParams, dict]:
    """Reads a rule file: ``(meta_params, header)``.

    Args:
      path: the rule file.
      template: optional ``meta_params`` of the expected structure (e.g.
        ``rule.init_meta_params(key)``); names, shapes and dtypes are checked.

    Returns:
      ``meta_params`` as nested dicts of numpy arrays (or ``template``'s
      structure) and the JSON header.

    Raises:
      UserError: missing, corrupt, not a rule file, a newer format version, or
        a template mismatch; always one line naming the file.
    """
    if not Path(path).is_file():
        raise UserError(f"{path}: no such rule file")
    meta_params, header = read_tree(path, template)
    check_format(path, header, RULE_FORMAT, RULE_FORMAT_VERSION)
    missing = [k for k in _REQUIRED if k not in header]
    if missing:
        raise CorruptFileError(f"{path}: rule file header lacks {', '.join(missing)}")
    return meta_params, header
