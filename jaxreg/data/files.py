"""MNIST files on disk: jaxreg's cache folder, the four canonical names, MD5 verification,
atomic installation into the cache, and the two local sources (a user folder, the cache).

A :class:`Source` is ``fetch(cache_mnist_dir, log) -> dir`` raising :class:`SourceError` with
the reason when it cannot provide the files; :mod:`jaxreg.data.fetch` tries them in order.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import IO, Callable, NamedTuple, Sequence

from jaxreg.atomic import atomic_open
from jaxreg.paths import cache_dir
from jaxreg.data import idx

__all__ = ["Log", "SourceError", "Source", "mnist_cache_dir", "match_files", "verify_file", "install_file",
           "dir_source", "cache_source"]

Log = Callable[[str], None]


class SourceError(Exception):
    """A source could not provide the files; the message says why."""


class Source(NamedTuple):
    """A place to get MNIST from: ``fetch(cache_mnist_dir, log) -> dir``."""

    name: str
    fetch: Callable[[Path, Log], Path]


def mnist_cache_dir() -> Path:
    return cache_dir() / "mnist"


def _canonical(name: str) -> str:
    """``train-images.idx3-ubyte.gz`` -> ``train-images-idx3-ubyte``."""
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.replace(".", "-").replace("_", "-")


def match_files(names: Sequence[str]) -> dict[str, str]:
    """Map each canonical MNIST name to a matching entry of ``names``
    (an uncompressed one is preferred over ``.gz``)."""
    found: dict[str, str] = {}
    for n in sorted(names, key=lambda s: s.lower().endswith(".gz")):
        canon = _canonical(Path(n).name)
        if canon in idx.MNIST_FILES and canon not in found:
            found[canon] = n
    return found


def verify_file(path: Path, name: str) -> None:
    """Raise ``CorruptFileError`` unless ``path`` has the MD5 of ``name``."""
    idx.read_idx_header(path)
    got = idx.md5sum(path)
    if got != idx.MNIST_MD5[name]:
        raise idx.CorruptFileError(
            f"{path}: MD5 checksum mismatch: got {got}, expected {idx.MNIST_MD5[name]}"
        )


def _check_dir(directory: Path) -> None:
    """Raise ``SourceError`` unless all four canonical files are there and good."""
    problems = []
    for name in idx.MNIST_FILES:
        path = directory / name
        if not path.is_file():
            problems.append(f"{name} missing")
            continue
        try:
            verify_file(path, name)
        except ValueError as e:
            problems.append(f"corrupt, not used: {e}")
    if problems:
        raise SourceError(f"{directory}: " + "; ".join(problems))


def install_file(src: IO[bytes], name: str, dest_dir: Path, *, gz: bool = False) -> Path:
    """Copy stream ``src`` (gzip-decompressed if ``gz``) to ``dest_dir/name``.

    Writes a temp file in ``dest_dir``, checks its MD5 against
    ``idx.MNIST_MD5[name]`` and only then renames it into place.  On any
    failure the temp file is removed and the error re-raised.
    """
    digest = hashlib.md5()
    reader = gzip.GzipFile(fileobj=src) if gz else src
    with atomic_open(dest_dir / name, "wb") as out:
        for chunk in iter(lambda: reader.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != idx.MNIST_MD5[name]:  # raising here discards the temp file
            raise idx.CorruptFileError(
                f"{name}: MD5 checksum mismatch: got {digest.hexdigest()}, "
                f"expected {idx.MNIST_MD5[name]}"
            )
    return dest_dir / name


def dir_source(directory: str | os.PathLike, name: str = "user dir") -> Source:
    """Source reading a directory the user names (see module docstring)."""
    directory = Path(directory).expanduser()

    def fetch(cache: Path, log: Log) -> Path:
        if not directory.is_dir():
            raise SourceError(f"{directory} is not a directory")
        found = match_files([p.name for p in directory.iterdir() if p.is_file()])
        missing = [n for n in idx.MNIST_FILES if n not in found]
        if missing:
            raise SourceError(f"{directory}: missing {', '.join(missing)}")
        if all(found[n] == n for n in idx.MNIST_FILES):
            _check_dir(directory)  # already canonical: use in place
            return directory
        for canon, fname in found.items():
            log(f"copying {directory / fname} -> {cache / canon}")
            gz = fname.lower().endswith(".gz")
            try:
                with open(directory / fname, "rb") as f:
                    install_file(f, canon, cache, gz=gz)
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:  # truncated, corrupt, or not gzip at all
                raise SourceError(f"{directory / fname}: not a complete gzip file ({type(e).__name__}: {e})") from e
            except idx.CorruptFileError as e:
                raise SourceError(f"{directory / fname}: {e}") from e
        return cache

    return Source(name, fetch)


def cache_source() -> Source:
    def fetch(cache: Path, log: Log) -> Path:
        _check_dir(cache)
        return cache

    return Source("cache", fetch)
