"""Traced once per machine: jaxreg's large programs saved as serialized ``jax.export`` modules.

XLA's persistent cache (:mod:`jaxreg.compile_cache`) skips compilation in a new process, but not
tracing and lowering, which JAX redoes in every process before it can even look the cache up;
for a solver's program (a vmapped while-loop with line searches) that is most of a warm-cache
first call. :func:`cached_program` wraps a function like ``jax.jit(fun, static_argnames=...)``
and, while the persistent cache is on, keeps the lowered module of every (static arguments,
shapes, dtypes) it meets on disk, under ``<XLA cache dir>/jaxreg-exported/``::

    program = cached_program(_l2_path_impl, static_argnames=("obj", "memory", "precondition"))
    program(obj=..., data=..., ...)   # 1st process: trace, lower, save; later ones: load, call

A later process deserializes the module and calls it (``Exported.call``), so only a thin wrapper
is traced and XLA's cache serves the compiled code. The key holds the function's name, the static
arguments' ``repr``, the argument tree, every leaf's abstract value, the JAX version, the backend,
the x64 flag and a hash of jaxreg's source files (an edited jaxreg never loads a stale module).
With the cache off, or if exporting fails, it is exactly ``jax.jit``. Same program, same bits.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import pickle
import warnings
from pathlib import Path

import jax
from jax import export

from jaxreg import compile_cache
from jaxreg.atomic import atomic_open

__all__ = ["SUBDIR", "source_hash", "program_key", "cached_program"]

SUBDIR = "jaxreg-exported"


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 of every ``.py`` file of the jaxreg package (paths and contents, sorted)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def program_key(name: str, static: dict, treedef, leaves) -> str:
    """The file name of one program: a sha256 of everything that makes it different."""
    avals = [str(jax.typeof(x)) for x in leaves]
    parts = (name, repr(sorted(static.items())), str(treedef), avals, jax.__version__, jax.default_backend(),
             bool(jax.config.jax_enable_x64), source_hash())
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:40]


def cached_program(fun, static_argnames=()):
    """``jax.jit(fun, static_argnames=static_argnames)``, whose lowered modules are kept on disk
    while XLA's persistent cache is on (module docstring); called like the jitted function
    (static arguments by position or keyword). Called on tracers (inside another transformation)
    it is the jitted function. The result's tree is kept beside the module."""
    static_argnames = tuple(static_argnames)
    jitted = jax.jit(fun, static_argnames=static_argnames)
    signature = inspect.signature(fun)
    loaded = {}  # key -> (jit of the exported call over leaves, output treedef)
    name = f"{fun.__module__}.{fun.__qualname__}"

    def flat_program(static, treedef, holder):
        def flat(*leaves):  # export's trees are flat tuples: no pytree registration needed
            out = fun(**jax.tree_util.tree_unflatten(treedef, leaves), **static)
            holder["out_tree"] = jax.tree_util.tree_structure(out)
            return tuple(jax.tree_util.tree_leaves(out))
        return jax.jit(flat)

    def prepare(leaves, treedef, static):
        key = program_key(name, static, treedef, leaves)
        if key not in loaded:
            path = Path(compile_cache.directory()) / SUBDIR / f"{key}.bin"
            exp = None
            if path.exists():
                try:
                    blob, out_tree = pickle.loads(path.read_bytes())
                    exp = export.deserialize(blob)
                except Exception:  # unreadable (truncated by a crash, another jaxlib): export it again
                    path.unlink(missing_ok=True)
            if exp is None:
                holder = {}
                exp = export.export(flat_program(static, treedef, holder))(*leaves)
                out_tree = holder["out_tree"]
                with atomic_open(path, "wb") as f:
                    f.write(pickle.dumps((exp.serialize(), out_tree)))
            loaded[key] = (jax.jit(exp.call), out_tree)
        return loaded[key], leaves

    @functools.wraps(fun)
    def call(*args, **kwargs):
        if compile_cache.directory() is None:
            return jitted(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        static = {k: bound.arguments.pop(k) for k in static_argnames}
        leaves, treedef = jax.tree_util.tree_flatten(dict(bound.arguments))
        if any(isinstance(x, jax.core.Tracer) for x in leaves):  # inside a transformation: nothing to keep
            return jitted(*args, **kwargs)
        try:
            (program, out_tree), leaves = prepare(leaves, treedef, static)
        except Exception as err:  # an argument export cannot take: plain jit, said once
            if not getattr(call, "_warned", False):
                call._warned = True
                warnings.warn(f"{name}: not kept as an exported program ({type(err).__name__}: {err}); "
                              "running it with jax.jit", RuntimeWarning, stacklevel=2)
            return jitted(*args, **kwargs)
        return jax.tree_util.tree_unflatten(out_tree, program(*leaves))

    call.jitted = jitted
    return call

