"""Pytree checkpoints as self-describing safetensors files; loading never runs code.

File layout: one ``.safetensors`` file. Each array leaf of the pytree is one
tensor named by its key path, parts joined with ``/``: dict keys, sequence
indices and NamedTuple field names, e.g. ``{"opt": (LayerParams(w=...),)}``
gives ``"opt/0/w"``. The safetensors metadata holds one entry, ``"metaunsup"``,
a JSON object: the caller's header (``format``, ``format_version``, ...) plus
an ``"arrays"`` record with a SHA-256 of every tensor's name, dtype, shape and
bytes (so a corrupted file is detected, not just a truncated one) and the
names of the leaves that were typed PRNG keys.

PRNG keys: a typed key array (``jax.random.key``) is stored as its raw
``uint32`` key data (``jax.random.key_data``, shape ``[..., 2]`` for
threefry) together with its implementation name, and comes back as a typed key
(``jax.random.wrap_key_data``). Legacy raw ``uint32`` keys are ordinary arrays.

Restoring into a template (any pytree with the wanted structure, e.g. a fresh
trainer state or its ``jax.eval_shape``) checks names, shapes and dtypes and
returns that structure; without a template the arrays come back as nested dicts
(sequence indices become string keys). Array leaves come back as numpy arrays.

Writes are atomic (:func:`metaunsup.run.outputs.atomic_write_bytes`): a temporary file in
the same directory, fsync, ``os.replace``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy

from metaunsup.errors import UserError
from metaunsup.run.outputs import FileKind, atomic_write_bytes
from metaunsup.run.outputs import check_writable, make_dirs  # noqa: F401 (their old home)
from metaunsup.types import PyTree

HEADER_KEY = "metaunsup"
FORMAT = "metaunsup-checkpoint"
FORMAT_VERSION = 1


class CorruptFileError(UserError):
    """The file is unreadable: truncated, corrupted or not a metaunsup file."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, jax.Array)):
        return np.asarray(obj).tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise UserError(f"header value of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that also accepts numpy / jax scalars and arrays and paths."""
    return json.dumps(obj, default=_json_default, **kwargs)


def _path_part(entry: Any) -> str:
    if isinstance(entry, jax.tree_util.DictKey):
        part = entry.key
    elif isinstance(entry, jax.tree_util.SequenceKey):
        part = entry.idx
    elif isinstance(entry, jax.tree_util.GetAttrKey):
        part = entry.name
    elif isinstance(entry, jax.tree_util.FlattenedIndexKey):
        part = entry.key
    else:
        part = str(entry)
    part = str(part)
    if not part or "/" in part:
        raise UserError(f"cannot name a pytree leaf with key {part!r}: keys must be non-empty "
                        "and contain no '/'")
    return part


def leaf_name(path: tuple) -> str:
    """The tensor name of a leaf from its ``tree_flatten_with_path`` key path."""
    return "/".join(_path_part(p) for p in path)


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten_named(tree: PyTree) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Leaves by name as numpy arrays, and ``{name: key impl}`` for typed PRNG keys."""
    arrays: dict[str, np.ndarray] = {}
    key_impls: dict[str, str] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = leaf_name(path)
        if name in arrays:
            raise UserError(f"two pytree leaves are both named {name!r}")
        if _is_key(leaf):
            key_impls[name] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arr = np.asarray(leaf)
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would make scalars 1-d)
            arr = arr.copy(order="C")
        if arr.dtype.kind not in "biuf":
            raise UserError(f"leaf {name!r}: cannot store dtype {arr.dtype}")
        arrays[name] = arr
    return arrays, key_impls


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(dumps_json([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_tree(path: str | os.PathLike, tree: PyTree, header: dict) -> None:
    """Atomically writes ``tree``'s arrays and the JSON ``header`` to ``path``."""
    arrays, key_impls = flatten_named(tree)
    full = dict(header)
    full["arrays"] = {"sha256": _digest(arrays), "prng_keys": key_impls}
    data = safetensors.numpy.save(arrays, metadata={HEADER_KEY: dumps_json(full)})
    atomic_write_bytes(path, data)


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({_one_line(e.strerror or e)})") from None
    try:
        arrays = safetensors.numpy.load(data)
        size = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + size]).get("__metadata__") or {}
    except Exception as e:  # noqa: BLE001 - any parse failure means a bad file
        raise CorruptFileError(f"{path}: not a readable safetensors file, it may be truncated "
                               f"or corrupted ({_one_line(e)})") from None
    if HEADER_KEY not in meta:
        raise CorruptFileError(f"{path}: not a metaunsup file (no '{HEADER_KEY}' header)")
    try:
        header = json.loads(meta[HEADER_KEY])
        record = header.pop("arrays")
        digest, key_impls = record["sha256"], record["prng_keys"]
    except Exception:  # noqa: BLE001
        raise CorruptFileError(f"{path}: its metaunsup header is not valid") from None
    if _digest(arrays) != digest:
        raise CorruptFileError(f"{path}: checksum mismatch, the file is corrupted")
    header["_prng_keys"] = key_impls
    return arrays, header


def _describe(a: Any) -> str:
    return f"shape {tuple(np.shape(a))} dtype {np.dtype(a.dtype).name}"


def _restore_into(path: Path, arrays: dict[str, np.ndarray], key_impls: dict[str, str],
                  template: PyTree) -> PyTree:
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for tpath, tleaf in flat:
        name = leaf_name(tpath)
        if name not in arrays:
            raise UserError(f"{path}: leaf {name!r} of the template is missing from the file")
        got = arrays[name]
        if _is_key(tleaf):
            want = jax.eval_shape(jax.random.key_data, tleaf)
            if name not in key_impls or got.shape != want.shape or got.dtype != want.dtype:
                raise UserError(f"{path}: leaf {name!r} is not a stored PRNG key of "
                                f"{_describe(want)} (file: {_describe(got)})")
            leaves.append(jax.random.wrap_key_data(got, impl=key_impls[name]))
            continue
        want_shape = tuple(np.shape(tleaf))
        want_dtype = np.dtype(tleaf.dtype) if hasattr(tleaf, "dtype") else np.asarray(tleaf).dtype
        if got.shape != want_shape or got.dtype != want_dtype:
            raise UserError(f"{path}: leaf {name!r} has {_describe(got)} in the file but the "
                            f"template expects shape {want_shape} dtype {want_dtype.name}")
        leaves.append(got)
    names = {leaf_name(p) for p, _ in flat}
    extra = sorted(set(arrays) - names)
    if extra:
        raise UserError(f"{path}: the file has leaf {extra[0]!r} that the template lacks "
                        f"({len(extra)} extra)")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _nested(arrays: dict[str, np.ndarray], key_impls: dict[str, str]) -> PyTree:
    if list(arrays) == [""]:
        return arrays[""]
    out: dict = {}
    for name in sorted(arrays):
        value: Any = arrays[name]
        if name in key_impls:
            value = jax.random.wrap_key_data(value, impl=key_impls[name])
        *parents, last = name.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def read_tree(path: str | os.PathLike, template: PyTree | None = None) -> tuple[PyTree, dict]:
    """Reads a file written by :func:`write_tree`: ``(tree, header)``.

    Raises:
      CorruptFileError: unreadable, truncated, corrupted or not metaunsup.
      UserError: the arrays do not match ``template`` (names the first leaf).
    """
    path = Path(path)
    arrays, header = _read(path)
    key_impls = header.pop("_prng_keys")
    tree = (_nested(arrays, key_impls) if template is None
            else _restore_into(path, arrays, key_impls, template))
    return tree, header


def has_format(path: str | os.PathLike, fmt: str) -> bool:
    """Whether ``path`` is a metaunsup safetensors file of format ``fmt`` (header only)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size < 1 << 26:
                return False
            meta = json.loads(f.read(size)).get("__metadata__") or {}
        return json.loads(meta[HEADER_KEY]).get("format") == fmt
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def file_kind(fmt: str, description: str) -> FileKind:
    """The :class:`~metaunsup.run.outputs.FileKind` of metaunsup files of format ``fmt``."""
    return FileKind(description, lambda path: has_format(path, fmt))


def check_format(path: str | os.PathLike, header: dict, fmt: str, version: int) -> None:
    """Raises a one-line error unless ``header`` is ``fmt`` at a version <= ``version``."""
    if header.get("format") != fmt:
        raise CorruptFileError(f"{path}: not a {fmt} file (format {header.get('format')!r})")
    got = header.get("format_version")
    if not isinstance(got, int) or isinstance(got, bool) or got < 1:
        raise CorruptFileError(f"{path}: invalid format_version {got!r}")
    if got > version:
        raise UserError(f"{path}: {fmt} format version {got} is newer than this metaunsup "
                        f"reads ({version}); upgrade metaunsup")


def save_checkpoint(path: str | os.PathLike, tree: PyTree, meta: dict | None = None) -> None:
    """Atomically saves a pytree of arrays with JSON-serialisable ``meta``."""
    write_tree(path, tree, {"format": FORMAT, "format_version": FORMAT_VERSION,
                            "meta": meta or {}})


def load_checkpoint(path: str | os.PathLike, template: PyTree | None = None
                    ) -> tuple[PyTree, dict]:
    """Loads ``(tree, meta)`` saved by :func:`save_checkpoint` (see module doc)."""
    tree, header = read_tree(path, template)
    check_format(path, header, FORMAT, FORMAT_VERSION)
    return tree, header.get("meta", {})


class Restored(NamedTuple):
    """A restored checkpoint: its step, its pytree and its metadata."""

    step: int
    tree: PyTree
    meta: dict


_CKPT_RE = re.compile(r"^ckpt_(\d+)\.safetensors$")


class CheckpointManager:
    """Numbered checkpoints ``ckpt_<step>.safetensors`` in one directory.

    ``save`` writes atomically and then prunes: it keeps the ``keep`` newest
    checkpoints with a step at most the one just saved and deletes older ones.
    Files with a larger step (left by a run that was resumed from an earlier
    checkpoint, e.g. after the newest one was found corrupted) are never
    deleted; saving that step again replaces them.

    ``restore_latest`` walks back from the newest file to the first readable
    one. Each unreadable file (truncated, corrupted) costs a one-line warning
    on stderr naming it, and is left in place for inspection.
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 3):
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise UserError(f"keep must be a positive integer, got {keep!r}")
        self.directory = Path(directory)
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.directory / f"ckpt_{step:010d}.safetensors"

    def all_steps(self) -> list[int]:
        """Steps of every checkpoint file present (readable or not), ascending."""
        if not self.directory.is_dir():
            return []
        found = (_CKPT_RE.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def latest(self) -> int | None:
        """The newest step present (not checked for readability), or None."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(self, step: int, tree: PyTree, meta: dict | None = None) -> Path:
        """Saves ``tree`` as checkpoint ``step`` and prunes older ones."""
        if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
            raise UserError(f"checkpoint step must be a non-negative integer, got {step!r}")
        step = int(step)
        path = self.path_for(step)
        write_tree(path, tree, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                "step": step, "meta": meta or {}})
        older = [s for s in self.all_steps() if s <= step]
        for old in older[:-self.keep]:
            with contextlib.suppress(FileNotFoundError):
                self.path_for(old).unlink()
        return path

    def restore(self, step: int, template: PyTree | None = None) -> Restored:
        """Restores checkpoint ``step`` (errors as :func:`load_checkpoint`)."""
        tree, meta = load_checkpoint(self.path_for(step), template)
        return Restored(step, tree, meta)

    def restore_latest(self, template: PyTree | Callable[[int], PyTree] | None = None
                       ) -> Restored | None:
        """The newest readable checkpoint, or None if the directory has none.

        ``template`` may be a function of the step (a trainer whose state's shapes
        depend on it); every reader of a run resumes through this one walk.

        Raises:
          UserError: checkpoint files exist but none is readable, or the newest
            readable one does not match ``template`` (a mismatch is not
            corruption: it is never skipped).
        """
        steps = self.all_steps()
        for step in reversed(steps):
            try:
                return self.restore(step, template(step) if callable(template) else template)
            except CorruptFileError as e:
                print(f"warning: {e}; trying an older checkpoint", file=sys.stderr)
        if steps:
            raise UserError(f"{self.directory}: none of the {len(steps)} checkpoint files "
                            "is readable")
        return None
