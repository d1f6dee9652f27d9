"""Atomic file writes: a temp file beside the target, renamed over it only when complete.

Every file jaxreg or its experiments write (data, memos, figures, tables, checkpoints) goes
through :func:`atomic_open`, so an interrupted run never leaves a half-written file under a real
name. A run killed outright (SIGKILL) can leave its temp file, ``.<name>.<host>.<pid>-XXXX.partial``;
:func:`clean_stale` removes those of processes that are gone.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

__all__ = ["owner_tag", "atomic_open", "is_stale", "clean_stale", "to_jsonable", "write_text", "write_json"]

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
_TAG = re.compile(r"(?:^|\.)(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)-[A-Za-z0-9_]+(?:\.partial)?$")


def owner_tag() -> str:
    """``<host>.<pid>``: names a temp file or folder after the process that made it."""
    return f"{_HOST}.{os.getpid()}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", *, encoding: str | None = None):
    """Open a temp file in ``path``'s folder for writing (``mode`` "w" or "wb").

    On a normal exit the data are flushed and ``fsync``ed, the file gets the permission bits of
    the file it replaces (a new file: ``0o666`` less the umask, as ``open`` would give) and is
    ``os.replace``d onto ``path``; the folder is then fsynced. A symlink is written through:
    its target is replaced, the link stays. On any exception (including one raised by the
    caller to reject the content, e.g. a checksum mismatch) the temp file is removed and
    ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        perms = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        perms = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner_tag()}-", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, perms)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_stale(name: str, mtime: float, max_age_s: float) -> bool:
    """Whether a temp entry named ``...<host>.<pid>-XXXX.partial`` (or ``<prefix><host>.<pid>-...``
    for folders) was left by a process that is gone: this host's and the pid is not running, or
    another host's (or unnamed) and older than ``max_age_s``."""
    m = _TAG.search(name)
    if m and m.group("host") == _HOST:
        return not _alive(int(m.group("pid")))
    return time.time() - mtime > max_age_s


def clean_stale(directory, *, prefix: str | None = None, max_age_s: float = 24 * 3600, log=None) -> list:
    """Remove what killed runs left in ``directory``: ``.partial`` temp files of
    :func:`atomic_open` or, with ``prefix``, temp folders ``<prefix><host>.<pid>-*`` (e.g.
    ``jaxreg-npm-``), whose process is gone (:func:`is_stale`). Returns the paths removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for p in directory.iterdir():
        want = p.name.startswith(prefix) and p.is_dir() if prefix else p.name.endswith(".partial") and p.is_file()
        try:
            if not want or not is_stale(p.name[len(prefix):] if prefix else p.name, p.stat().st_mtime, max_age_s):
                continue
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        except OSError:
            continue
        removed.append(p)
        if log is not None:
            log(f"removed {p}, left by an interrupted run")
    return removed


def to_jsonable(obj):
    """Plain JSON values from NumPy/JAX scalars and arrays, tuples, dicts and dataclasses;
    non-finite floats (a diverged run's loss) become ``None`` (strict JSON)."""
    import dataclasses
    import math

    import numpy as np

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        arr = np.asarray(obj)
        return to_jsonable(arr.tolist()) if arr.ndim else to_jsonable(arr.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


def write_json(path, obj, indent: int = 2) -> str:
    """Write ``obj`` as strict JSON (:func:`to_jsonable`) to ``path`` atomically."""
    import json

    return write_text(path, json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n")
