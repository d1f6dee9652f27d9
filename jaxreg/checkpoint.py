"""Resumable grids: content fingerprints, and a folder of finished chunks keyed by them.

    store = ChunkStore(directory, parts={"objective": fingerprint(obj), "data": fingerprint(data), ...},
                       layout={"n_models": 1000, "chunk_size": 64})
    store.open()                    # ValueError naming the parts that differ from the folder's
    tree = store.load(k, like)      # chunk k's outputs, or None (missing, unreadable, other shapes)
    store.save(k, tree)             # atomic: temp file + fsync + rename (jaxreg.atomic)

:func:`fingerprint` is a SHA-256 of a canonical encoding, stable across processes and runs:
arrays by dtype, shape and bytes; dicts by sorted keys; tuples, NamedTuples and dataclasses
(``Objective``, ``TrainConfig``) field by field with their class name; functions (an optimizer
or schedule factory, a stopping rule's functions) by module, qualified name, bytecode, constants,
defaults and closure values; ``functools.partial`` by its function and arguments. An object
with none of these shapes is refused (``ValueError``) rather than identified by its address.

The folder holds ``manifest.json`` (format, parts, layout) and ``chunk-00000.npz``, ... (the
leaves of one chunk's output pytree, in ``tree_flatten`` order). A folder whose manifest
differs from this call's is refused, naming the parts that differ: chunks of two different
grids are never mixed.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import types
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional

import jax
import numpy as np

from jaxreg.atomic import atomic_open, clean_stale, write_json
from jaxreg.multihost import combined_digest

__all__ = ["FORMAT", "fingerprint", "fingerprints", "software", "ChunkStore"]

FORMAT = 1


def _code(h, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for c in code.co_consts:
        _code(h, c) if isinstance(c, types.CodeType) else _feed(h, c, 0)


def _feed(h, obj, depth: int) -> None:
    """Feed a canonical encoding of ``obj`` into the hash ``h``."""
    if depth > 50:
        raise ValueError("cannot fingerprint a structure nested more than 50 levels deep")
    tag = lambda t: h.update(f"<{t}>".encode())  # noqa: E731
    if obj is None or isinstance(obj, (bool, int, str, bytes)):
        tag(type(obj).__name__)
        h.update(obj if isinstance(obj, bytes) else repr(obj).encode())
    elif isinstance(obj, float):
        tag("float")
        h.update(float(obj).hex().encode())
    elif isinstance(obj, jax.Array) and jax.dtypes.issubdtype(obj.dtype, jax.dtypes.prng_key):
        tag(f"key {jax.random.key_impl(obj)}")
        _feed(h, jax.random.key_data(obj), depth + 1)
    elif isinstance(obj, jax.Array) and not obj.is_fully_addressable:  # this process's rows only
        tag(f"global array {obj.dtype} {obj.shape}")
        for shard in sorted(obj.addressable_shards, key=lambda s: str(s.index)):
            _feed(h, (str(shard.index), np.asarray(shard.data)), depth + 1)
    elif isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        arr = np.ascontiguousarray(np.asarray(obj))
        tag(f"array {arr.dtype.str} {arr.shape}")
        h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    elif isinstance(obj, Mapping):
        tag(f"map {type(obj).__name__} {len(obj)}")
        for k in sorted(obj, key=str):
            _feed(h, str(k), depth + 1)
            _feed(h, obj[k], depth + 1)
    elif isinstance(obj, tuple) and hasattr(obj, "_fields"):
        tag(f"namedtuple {type(obj).__module__}.{type(obj).__qualname__}")
        for f in obj._fields:
            _feed(h, f, depth + 1)
            _feed(h, getattr(obj, f), depth + 1)
    elif isinstance(obj, (tuple, list)):
        tag(f"{type(obj).__name__} {len(obj)}")
        for v in obj:
            _feed(h, v, depth + 1)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        tag(f"dataclass {type(obj).__module__}.{type(obj).__qualname__}")
        for f in dataclasses.fields(obj):
            _feed(h, f.name, depth + 1)
            _feed(h, getattr(obj, f.name), depth + 1)
    elif isinstance(obj, functools.partial):
        tag("partial")
        _feed(h, (obj.func, obj.args, dict(obj.keywords)), depth + 1)
    elif isinstance(obj, types.FunctionType):
        tag(f"function {obj.__module__}.{obj.__qualname__}")
        _code(h, obj.__code__)
        _feed(h, (obj.__defaults__, obj.__kwdefaults__), depth + 1)
        for cell in obj.__closure__ or ():
            try:
                _feed(h, cell.cell_contents, depth + 1)
            except ValueError as e:  # an empty cell (a name bound after the function was made)
                if "empty" not in str(e):
                    raise
    elif isinstance(obj, (types.BuiltinFunctionType, type)) or hasattr(obj, "__wrapped__"):
        target = getattr(obj, "__wrapped__", obj)
        tag(f"callable {getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}")
        if isinstance(target, types.FunctionType):
            _code(h, target.__code__)
    else:
        raise ValueError(f"cannot fingerprint a {type(obj).__module__}.{type(obj).__qualname__} for a "
                         f"checkpoint (use arrays, numbers, strings, tuples, dicts, dataclasses or functions)")


def fingerprint(obj: Any) -> str:
    """The hex SHA-256 of ``obj``'s canonical encoding (module docstring)."""
    h = hashlib.sha256()
    _feed(h, obj, 0)
    return h.hexdigest()


def fingerprints(data, **inputs) -> dict:
    """What a grid's chunks are keyed by: ``{name: fingerprint(value)}`` for each input, the
    data's (combined over the processes when each holds its own rows) and the software's."""

    return {**{k: fingerprint(v) for k, v in inputs.items()}, "data": combined_digest(fingerprint(data)),
            "software": fingerprint(software())}


def software() -> dict:
    """Versions that can change a result's bits: jax, jaxlib, numpy, optax."""
    import jaxlib
    import optax

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__,
            "optax": optax.__version__}


class ChunkStore:
    """Finished chunks of one grid in ``directory`` (module docstring).

    parts: ``{name: fingerprint}`` of everything the results depend on; layout: how the grid is
    cut (``n_models``, ``chunk_size``, ...): both must match a folder written before.
    writer: whether this process writes (one process of a multi-process run does).
    """

    def __init__(self, directory, parts: Mapping[str, str], layout: Mapping[str, Any], *, writer: bool = True):
        if not isinstance(directory, (str, os.PathLike)) or not str(directory):
            raise ValueError(f"checkpoint_dir must be a folder path, got {directory!r}")
        self.dir = Path(directory)
        self.parts, self.layout, self.writer = dict(parts), dict(layout), writer

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def chunk_path(self, k: int) -> Path:
        return self.dir / f"chunk-{k:05d}.npz"

    def open(self) -> "ChunkStore":
        """Check the folder's manifest against this grid (ValueError naming what differs); write
        it when the folder is new."""
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"checkpoint_dir {str(self.dir)!r} is a file; give a folder")
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text())
            except (OSError, ValueError) as e:
                raise ValueError(f"checkpoint_dir {str(self.dir)!r}: unreadable manifest.json ({e}); "
                                 "delete the folder or use another one") from None
            if old.get("format") != FORMAT:
                raise ValueError(f"checkpoint_dir {str(self.dir)!r} was written by another checkpoint format "
                                 f"({old.get('format')!r}, this is {FORMAT})")
            diff = sorted(k for k in set(old.get("parts", {})) | set(self.parts)
                          if old.get("parts", {}).get(k) != self.parts.get(k))
            diff += sorted(f"layout {k} ({old['layout'].get(k)!r} there, {v!r} here)"
                           for k, v in self.layout.items() if old.get("layout", {}).get(k) != v)
            if diff:
                raise ValueError(
                    f"checkpoint_dir {str(self.dir)!r} holds the chunks of another grid: {', '.join(diff)} "
                    f"{'differs' if len(diff) == 1 else 'differ'} from this call's. Resuming needs the same objective, config, grid, data, keys and "
                    "chunking; use a new folder (or delete this one) for a different grid.")
        elif self.writer:
            write_json(self.manifest_path, {"format": FORMAT, "parts": self.parts, "layout": self.layout})
        if self.writer:
            clean_stale(self.dir)  # temp files of a run killed while writing a chunk
        return self

    def load(self, k: int, like) -> Optional[Any]:
        """Chunk ``k`` as a pytree with the structure, shapes and dtypes of ``like`` (a pytree of
        ``jax.ShapeDtypeStruct`` or arrays), or None when it is missing or does not match."""
        path = self.chunk_path(k)
        if not path.is_file():
            return None
        leaves, treedef = jax.tree_util.tree_flatten(like)
        try:
            with np.load(path, allow_pickle=False) as z:
                got = [z[f"leaf_{i}"] for i in range(len(leaves))] if len(z.files) == len(leaves) else None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        if got is None or any(g.shape != tuple(s.shape) or g.dtype != s.dtype for g, s in zip(got, leaves)):
            return None
        return jax.tree_util.tree_unflatten(treedef, got)

    def save(self, k: int, tree) -> None:
        """Write chunk ``k`` atomically (nothing when this process is not the writer)."""
        if not self.writer:
            return
        leaves = jax.tree_util.tree_leaves(tree)
        with atomic_open(self.chunk_path(k), "wb") as f:
            np.savez(f, **{f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)})
