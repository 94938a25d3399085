"""Users' own data for evaluation: a ``.npz`` file with train and test splits.

The file holds four arrays: ``x_train`` [N, D] or [N, H, W], ``y_train`` [N],
``x_test`` [M, D] or [M, H, W], ``y_test`` [M]. Images are flattened; ``uint8``
inputs are scaled to [0, 1]; float inputs are used as given (:func:`as_inputs`,
which the Python API and ``--data X.npy`` use too). Labels must be integers
``0..C-1``, and every test label must occur in the training split. Anything
else is a one-line :class:`UserError`.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from metaunsup.data import Dataset
from metaunsup.errors import UserError, check_array

KEYS = ("x_train", "y_train", "x_test", "y_test")


def as_inputs(arr, name: str = "x") -> np.ndarray:
    """A user's inputs as float32 [N, D]: the one conversion every entry point uses.

    ``arr`` is [N, D] or [N, H, W] (flattened); ``uint8`` values are scaled to
    [0, 1], other numbers are used as given. Empty, non-numeric or non-finite
    arrays are a one-line :class:`UserError`.
    """
    if isinstance(arr, (str, bytes)) or np.asarray(arr).ndim not in (2, 3):
        raise UserError(f"{name}: expected a rank-2 [N, D] or rank-3 [N, H, W] array, "
                        f"got {type(arr).__name__} of shape {np.shape(arr)}")
    x = check_array(arr, name=name)
    if x.size == 0:
        raise UserError(f"{name}: the array is empty (shape {x.shape})")
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    return x.reshape(x.shape[0], -1).astype(np.float32) / np.float32(scale)


def _labels(arr, name: str) -> np.ndarray:
    y = check_array(arr, name=name, ndim=1)
    if y.dtype.kind == "f":
        if not np.all(y == np.round(y)):
            raise UserError(f"{name}: labels must be integers")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise UserError(f"{name}: labels must be >= 0, found {int(y.min())}")
    return y.astype(np.int32)


_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK"


def read_array_file(path: str | Path, *, option: str = "--data"):
    """The arrays of a user's ``.npy`` (an ndarray) or ``.npz`` (``{name: ndarray}``) file.

    The one reader of users' array files: a missing path, a folder, a file that is
    neither format (told apart by its first bytes, whatever its name), a damaged one,
    or one holding Python objects is a one-line :class:`UserError` naming the path.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; {option} takes a .npy or .npz file")
    if not path.is_file():
        raise UserError(f"{path}: no such file ({option})")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    if not head.startswith((_NPY_MAGIC, _ZIP_MAGIC)):
        raise UserError(f"{path}: not a .npy or .npz array file (it does not start with "
                        "numpy's or zip's signature; save arrays with numpy.save / "
                        "numpy.savez)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise UserError(f"{path}: holds Python objects (pickled data); metaunsup reads "
                            "arrays of numbers only") from None
        raise UserError(f"{path}: not a readable array file ({' '.join(str(e).split())})") \
            from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise UserError(f"{path}: not a readable array file, it may be truncated or "
                        f"damaged ({' '.join(str(e).split())})") from None


def load_npz(path: str | Path) -> Dataset:
    """Reads and validates a user's ``.npz`` file (see the module docstring).

    Returns:
      a :class:`metaunsup.data.Dataset` named after the file's stem, modality
      "image" for [N, H, W] inputs and "points" for [N, D] ones.
    """
    path = Path(path)
    arrays = read_array_file(path)
    if not isinstance(arrays, dict):
        raise UserError(f"{path}: a .npy holds one array; --data needs an .npz with "
                        f"{', '.join(KEYS)}")
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise UserError(f"{path}: missing arrays {', '.join(missing)} "
                        f"(need {', '.join(KEYS)})")
    raw = {k: arrays[k] for k in KEYS}
    x_train, x_test = as_inputs(raw["x_train"], "x_train"), as_inputs(raw["x_test"], "x_test")
    y_train, y_test = _labels(raw["y_train"], "y_train"), _labels(raw["y_test"], "y_test")
    if x_train.shape[1] != x_test.shape[1]:
        raise UserError(f"x_train and x_test differ in input size: "
                        f"{x_train.shape[1]} vs {x_test.shape[1]}")
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise UserError(f"{split} split: {x.shape[0]} inputs but {y.shape[0]} labels")
    unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y_train).tolist()))
    if unseen:
        raise UserError(f"y_test has label(s) {unseen[:5]} that y_train lacks; a probe fitted "
                        "on the training labels can never predict them")
    shape = tuple(raw["x_train"].shape[1:]) if raw["x_train"].ndim == 3 else None
    return Dataset(
        name=path.stem, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        num_classes=int(max(y_train.max(), y_test.max())) + 1, image_shape=shape,
        modality="image" if shape else "points")


def read_unlabeled(path: str | Path) -> np.ndarray:
    """The unlabeled array in ``path`` as float32 [N, D] (``train --data``, ``features --data``).

    A ``.npy`` array [N, D] or [N, H, W], or a ``.npz`` whose ``x_train`` (else its
    only array) is used; converted by :func:`as_inputs`.
    """
    loaded = read_array_file(path)
    if isinstance(loaded, dict):  # an .npz
        names = list(loaded)
        name = "x_train" if "x_train" in names else (names[0] if len(names) == 1 else None)
        if name is None:
            raise UserError(f"{path}: an .npz needs an x_train array or exactly one "
                            f"array (has {', '.join(names) or 'none'})")
        loaded = loaded[name]
    return as_inputs(loaded, name=str(path))

