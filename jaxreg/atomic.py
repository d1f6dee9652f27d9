"""Atomic file writes: a temp file beside the target, renamed over it only when complete.

Every file jaxreg or its experiments write (data, memos, figures, tables) goes through
:func:`atomic_open`, so an interrupted run never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", *, encoding: str | None = None):
    """Open a temp file in ``path``'s folder for writing (``mode`` "w" or "wb").

    On a normal exit the file is made world-readable (mkstemp gives 0600) and ``os.replace``d
    onto ``path``; on any exception (including one raised by the caller to reject the content,
    e.g. a checksum mismatch) the temp file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
