"""Reader and writer for the IDX file format used by the MNIST distribution.

An IDX file is a 4-byte big-endian magic number ``0x0000TTNN`` (``TT`` the
element type, ``0x08`` = unsigned byte; ``NN`` the number of dimensions),
then ``NN`` big-endian uint32 sizes, then the raw elements in C order.
MNIST uses two kinds:

* images: magic ``0x00000803`` -> uint8 array of shape ``(n, rows, cols)``
* labels: magic ``0x00000801`` -> uint8 array of shape ``(n,)``

Nothing else is accepted.  Every problem (bad magic, zero size, truncated or
over-long file, checksum mismatch) raises :class:`CorruptFileError`, a
``ValueError`` whose message names the file and what was wrong.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np
from jaxreg.atomic import atomic_open

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "MNIST_FILES", "MD5_TRAIN_IMAGES", "MD5_TRAIN_LABELS",
           "MD5_TEST_IMAGES", "MD5_TEST_LABELS", "MNIST_MD5", "CorruptFileError", "md5sum", "read_idx_header",
           "read_idx", "idx_header", "idx_md5", "write_idx"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_NDIM_FOR_MAGIC = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}

#: The four MNIST files, in the order (train images, train labels,
#: test images, test labels).
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: MD5 of the uncompressed original files (LeCun's distribution).
MD5_TRAIN_IMAGES = "6bbc9ace898e44ae57da46a324031adb"
MD5_TRAIN_LABELS = "a25bea736e30d166cdddb491f175f624"
MD5_TEST_IMAGES = "2646ac647ad5339dbf082846283269ea"
MD5_TEST_LABELS = "27ae3e4e09519cfbb04c329615203637"

#: File name -> expected MD5.  Code elsewhere looks this table up at call
#: time (``idx.MNIST_MD5``), so tests may monkeypatch it.
MNIST_MD5 = {
    "train-images-idx3-ubyte": MD5_TRAIN_IMAGES,
    "train-labels-idx1-ubyte": MD5_TRAIN_LABELS,
    "t10k-images-idx3-ubyte": MD5_TEST_IMAGES,
    "t10k-labels-idx1-ubyte": MD5_TEST_LABELS,
}


class CorruptFileError(ValueError):
    """An IDX file is malformed, truncated or fails its checksum."""


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx_header(path: str | os.PathLike) -> tuple[int, tuple[int, ...]]:
    """Read and check the header of an IDX file.

    Returns ``(magic, shape)``.  Checks the magic number, that no dimension is
    zero and that the file size is exactly ``header + prod(shape)`` bytes.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4:
            raise CorruptFileError(
                f"{path}: file too short ({size} bytes) to hold an IDX magic number"
            )
        (magic,) = struct.unpack(">I", head)
        if magic not in _NDIM_FOR_MAGIC:
            raise CorruptFileError(
                f"{path}: bad magic number 0x{magic:08x} (expected 0x{IMAGES_MAGIC:08x} "
                f"for images or 0x{LABELS_MAGIC:08x} for labels); not an uncompressed "
                "MNIST IDX file"
            )
        ndim = _NDIM_FOR_MAGIC[magic]
        dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise CorruptFileError(f"{path}: truncated header ({size} bytes)")
    shape = struct.unpack(f">{ndim}I", dims_raw)
    if any(d == 0 for d in shape):
        raise CorruptFileError(f"{path}: header has a zero dimension {shape}")
    expected = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64))
    if size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise CorruptFileError(
            f"{path}: file {what}: size {size} bytes, but header shape {shape} "
            f"needs exactly {expected} bytes"
        )
    return magic, tuple(int(d) for d in shape)


def read_idx(path: str | os.PathLike, expected_md5: str | None = None) -> np.ndarray:
    """Read an uncompressed IDX file into a uint8 array.

    Returns shape ``(n, rows, cols)`` for an images file or ``(n,)`` for a
    labels file.  If ``expected_md5`` is given the file's MD5 must match it.
    Raises :class:`CorruptFileError` (a ``ValueError``) on any problem, and
    ``FileNotFoundError`` if the file does not exist.
    """
    path = Path(path)
    if expected_md5 is not None:
        actual = md5sum(path)
        if actual != expected_md5.lower():
            raise CorruptFileError(
                f"{path}: MD5 checksum mismatch: got {actual}, expected {expected_md5}"
            )
    magic, shape = read_idx_header(path)
    offset = 4 + 4 * len(shape)
    data = np.fromfile(path, dtype=np.uint8, offset=offset)
    return data.reshape(shape)


def idx_header(array: np.ndarray) -> bytes:
    """The IDX header of a uint8 array of 1 or 3 dimensions (ValueError otherwise)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx: array must be uint8, got {array.dtype}")
    magic = {3: IMAGES_MAGIC, 1: LABELS_MAGIC}.get(array.ndim)
    if magic is None:
        raise ValueError(f"write_idx: array must be 1-D or 3-D, got shape {array.shape}")
    return struct.pack(f">I{array.ndim}I", magic, *array.shape)


def idx_md5(array: np.ndarray) -> str:
    """Hex MD5 of the IDX file :func:`write_idx` would write for ``array`` (nothing is
    written): an array read back from elsewhere can be checked against ``MNIST_MD5``."""
    digest = hashlib.md5(idx_header(array))
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array of 1 or 3 dimensions as an IDX file.

    The bytes go to a temporary file in the same directory, which is then
    renamed over ``path``, so readers never see a half-written file.
    Returns the path written.
    """
    path = Path(path)
    array = np.asarray(array)
    header = idx_header(array)
    with atomic_open(path, "wb") as f:
        f.write(header)
        f.write(np.ascontiguousarray(array).tobytes())
    return path
