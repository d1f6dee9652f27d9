"""MNIST through tensorflow-datasets, from the raw IDX files (no TensorFlow).

:class:`JaxregMnist` is a manual-download ``GeneratorBasedBuilder``: its
manual dir holds the four IDX files (as given by :func:`ensure_mnist`), it
writes ``array_record`` files under ``<cache>/tfds`` and is read back with
``as_data_source`` (random access, no TensorFlow).  Each example carries its
position in the original file (``index``), so the original order is restored
after reading, whatever order TFDS stored the records in.

:func:`load_mnist` returns plain numpy arrays::

    train_images (60000, 28, 28) uint8    train_labels (60000,) uint8
    test_images  (10000, 28, 28) uint8    test_labels  (10000,) uint8

Preparation happens once; the assembled arrays are also memoised in
``<cache>/tfds/jaxreg_mnist-<key>.npz`` (written atomically, ``key`` derived
from the IDX MD5 table and the builder version), so later loads take well
under a second; a memo that is truncated, unreadable or whose arrays do not have the IDX files'
MD5 sums is rebuilt.  Nothing here opens a network connection: TFDS's GCS access
is off (``try_download_gcs=False``) and a manual-dir builder downloads
nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxreg.data import idx
from jaxreg.data.png import png_decode, png_encode
from jaxreg.data.fetch import ensure_mnist
from jaxreg.data.remote import is_online
from jaxreg.paths import cache_dir
from jaxreg.atomic import atomic_open

__all__ = ["ARRAY_KEYS", "JaxregMnist", "tfds_data_dir", "prepare_builder", "read_split", "load_mnist",
           "load_tfds_dataset"]

_BATCH = 4096
ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
_TFDS_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}


class JaxregMnist(tfds.core.GeneratorBasedBuilder):
    """MNIST from the four raw IDX files in the manual dir, original order
    recoverable through the ``index`` feature."""

    name = "jaxreg_mnist"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Raw IDX files, with the original index."}
    # TFDS 4.9.10 derives this through `importlib_resources`, which it does not
    # install on Python >= 3.9 (tensorflow/datasets#11212); naming the file
    # ourselves sidesteps that.  (Used only to look for a checksums.tsv.)
    code_path = epath.Path(__file__)
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the four uncompressed MNIST files (" + ", ".join(idx.MNIST_FILES) + ") "
        "in the manual dir, e.g. with `jaxreg data`, which verifies their MD5 sums."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="MNIST handwritten digits read from the raw IDX files.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(28, 28, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
                "index": tfds.features.Scalar(dtype=np.int64),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        manual = Path(os.fspath(dl_manager.manual_dir))
        return {
            "train": self._generate_examples(manual, "train-images-idx3-ubyte",
                                             "train-labels-idx1-ubyte"),
            "test": self._generate_examples(manual, "t10k-images-idx3-ubyte",
                                            "t10k-labels-idx1-ubyte"),
        }

    def _generate_examples(self, manual: Path, images_file: str, labels_file: str):
        images = idx.read_idx(manual / images_file, idx.MNIST_MD5.get(images_file))
        labels = idx.read_idx(manual / labels_file, idx.MNIST_MD5.get(labels_file))
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise idx.CorruptFileError(
                f"{manual}: {images_file} shape {images.shape} does not match "
                f"{labels_file} shape {labels.shape} (want (n, 28, 28) and (n,))")
        for i, png in enumerate(png_encode(images)):
            yield i, {"image": png, "label": int(labels[i]), "index": i}


def tfds_data_dir() -> Path:
    """Where jaxreg keeps TFDS-prepared data: ``<cache>/tfds``."""
    return cache_dir() / "tfds"


def _quiet(verbose: bool):
    """Silence TFDS's progress bars and prints unless ``verbose``."""
    if verbose:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def prepare_builder(idx_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                    *, verbose: bool = True, overwrite: bool = False) -> JaxregMnist:
    """Prepare :class:`JaxregMnist` from ``idx_dir`` into ``data_dir``
    (default ``<cache>/tfds``); a prepared one is reused unless ``overwrite``."""
    root = os.fspath(data_dir or tfds_data_dir())
    builder = JaxregMnist(data_dir=root, file_format="array_record")
    if overwrite and builder.is_prepared():
        epath.Path(builder.data_dir).rmtree()
        builder = JaxregMnist(data_dir=root, file_format="array_record")
    config = tfds.download.DownloadConfig(
        manual_dir=os.fspath(idx_dir), try_download_gcs=False,
        download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    try:
        with _quiet(verbose):
            builder.download_and_prepare(download_config=config, file_format="array_record")
    except FileExistsError:  # another process prepared it meanwhile: use theirs
        builder = JaxregMnist(data_dir=root, file_format="array_record")
        if not builder.is_prepared():
            raise
    return builder


def read_split(builder: tfds.core.DatasetBuilder, split: str, *, ordered: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """Read a whole split as ``(images (n, h, w) uint8, labels (n,) uint8)``.

    Records are fetched in batches (``__getitems__``) with the image left
    undecoded, then decoded by :func:`jaxreg.data.png.png_decode` (TFDS's own decoder as a
    fallback).  With ``ordered`` each record goes to the position in its
    ``index`` feature, which must be a permutation of ``0..n-1``; otherwise
    records stay in stored order.
    """
    feature = builder.info.features["image"]
    h, w = feature.shape[:2]
    source = builder.as_data_source(split=split,
                                    decoders={"image": tfds.decode.SkipDecoding()})
    n = len(source)
    images = np.empty((n, h, w), np.uint8)
    labels = np.empty((n,), np.uint8)
    seen = np.zeros((n,), bool)
    for start in range(0, n, _BATCH):
        positions = range(start, min(start + _BATCH, n))
        for pos, rec in zip(positions, source.__getitems__(list(positions))):
            img = png_decode(rec["image"])
            if img is None:
                img = feature.decode_example_np(rec["image"])
            k = int(rec["index"]) if ordered else pos
            if not 0 <= k < n or seen[k]:
                raise ValueError(f"{builder.name}/{split}: bad or repeated index {k}")
            seen[k] = True
            images[k] = np.reshape(img, (h, w))
            labels[k] = rec["label"]
    return images, labels


def _memo_path() -> Path:
    key = "|".join(f"{n}={idx.MNIST_MD5[n]}" for n in idx.MNIST_FILES)
    key += f"|{JaxregMnist.name}-{JaxregMnist.VERSION}"
    return tfds_data_dir() / f"jaxreg_mnist-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _save_memo(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def _load_memo(path: Path) -> dict[str, np.ndarray] | None:
    """The memo's arrays if it reads back whole and each array is, byte for byte, its IDX file
    (the MD5 of its IDX encoding is the file's, ``idx.MNIST_MD5``); else None (it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ARRAY_KEYS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    for name, key in zip(idx.MNIST_FILES, ARRAY_KEYS):
        try:
            if idx.idx_md5(arrays[key]) != idx.MNIST_MD5[name]:
                return None
        except ValueError:  # not uint8, or another number of dimensions
            return None
    return arrays


def load_mnist(data_dir: str | os.PathLike | None = None, *, verbose: bool = True
               ) -> dict[str, np.ndarray]:
    """MNIST as numpy arrays in the original file order (shapes in module doc).

    Calls :func:`ensure_mnist` (which verifies the files), then prepares
    and reads the TFDS builder, or reuses the memo from an earlier call.
    """
    idx_dir = ensure_mnist(data_dir, verbose=verbose)
    memo = _memo_path()
    arrays = _load_memo(memo) if memo.exists() else None
    if arrays is not None:
        return arrays
    if memo.exists() and verbose:
        print(f"[jaxreg data] {memo} is unreadable or does not match the IDX checksums: rebuilding it",
              file=sys.stderr)
    for attempt in ("prepared", "re-prepared"):
        if verbose:
            print(f"[jaxreg data] TFDS dataset in {tfds_data_dir()}", file=sys.stderr)
        builder = prepare_builder(idx_dir, verbose=verbose, overwrite=attempt != "prepared")
        arrays = {}
        for split in ("train", "test"):
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = read_split(builder, split)
        # A dataset left by other files (or other code) would pass silently: compare.
        if all(np.array_equal(arrays[k], idx.read_idx(Path(idx_dir) / n))
               for n, k in zip(idx.MNIST_FILES, ARRAY_KEYS)):
            _save_memo(memo, arrays)
            return arrays
        if verbose:
            print(f"[jaxreg data] {attempt} TFDS data differ from the IDX files",
                  file=sys.stderr)
    raise RuntimeError(f"TFDS dataset in {builder.data_dir} does not reproduce the IDX "
                       f"files in {idx_dir}")


def load_tfds_dataset(name: str, *, verbose: bool = True) -> dict[str, np.ndarray]:
    """TFDS's own ``mnist`` or ``fashion_mnist`` as the same dict of arrays.

    Records come in TFDS's stored order (TFDS shuffles when it writes; these
    builders keep no original index), not the original file order.  If the
    dataset is not yet prepared under ``<cache>/tfds`` this needs the network
    (checked first, 3 s) and TFDS's generator for these datasets needs
    TensorFlow installed; both are reported as ``RuntimeError`` at once.
    """
    if name not in _TFDS_HOSTS:
        raise ValueError(f"name must be one of {sorted(_TFDS_HOSTS)}, got {name!r}")
    builder = tfds.builder(name, data_dir=os.fspath(tfds_data_dir()),
                           file_format="array_record")
    if not builder.is_prepared():
        host, port = _TFDS_HOSTS[name]
        why = is_online(host, port)
        if why is not None:
            raise RuntimeError(f"TFDS dataset {name!r} is not prepared in {tfds_data_dir()} "
                               f"and the machine is offline ({host}:{port}: {why}).")
        if verbose:
            print(f"[jaxreg data] downloading and preparing TFDS {name}", file=sys.stderr)
        try:
            builder.download_and_prepare(
                file_format="array_record",
                download_config=tfds.download.DownloadConfig(try_download_gcs=False))
        except ModuleNotFoundError as e:
            raise RuntimeError(
                f"preparing TFDS {name!r} failed: missing module {e.name!r}. TFDS's own "
                "generators need TensorFlow (pip install tensorflow-cpu) and, with TFDS "
                "4.9.10, importlib_resources; load_mnist() needs neither.") from e
    arrays = {}
    for split in ("train", "test"):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = read_split(builder, split,
                                                                          ordered=False)
    return arrays
