"""XLA's persistent compilation cache, on by default for jaxreg's programs.

A first call in a new process pays tracing, lowering and XLA compilation; on small problems
compilation is most of it (an L2 path of 7 λ on MNIST 2 vs 3: seconds of compilation for a
fraction of a second of solving). ``import jaxreg`` therefore points JAX's persistent cache at
``<jaxreg cache dir>/xla`` (:func:`jaxreg.data.cache_dir`), so a program compiled once is loaded
from disk by every later process with the same shapes, dtypes and static arguments.

Off or elsewhere::

    JAXREG_XLA_CACHE=0 python ...          # off for the process (the test suite does this)
    JAXREG_XLA_CACHE=/path python ...      # another directory
    jaxreg.compile_cache.disable()         # off from code, before the first compilation
    jaxreg.compile_cache.enable("/path")   # on, in a directory of your choice

A cache the user configured already (``jax_compilation_cache_dir``) is left alone. The cache is
JAX's own, so it holds every program the process compiles for at least ``min_compile_seconds``
(default 0.2 s: the solvers', trainers' and sweeps' programs, not the many tiny eager ones).
"""
from __future__ import annotations

import os
from pathlib import Path

import jax

from jaxreg.paths import cache_dir

__all__ = ["ENV", "MIN_COMPILE_SECONDS", "default_directory", "enable", "disable", "directory"]

ENV = "JAXREG_XLA_CACHE"
MIN_COMPILE_SECONDS = 0.2


def default_directory() -> str | None:
    """``$JAXREG_XLA_CACHE`` (``"0"``, ``"off"`` or ``""``: None), else ``<jaxreg cache dir>/xla``."""
    value = os.environ.get(ENV)
    if value is None:
        return str(Path(cache_dir()) / "xla")
    return None if value.strip().lower() in ("0", "off", "false", "") else value


def enable(directory=None, *, min_compile_seconds: float = MIN_COMPILE_SECONDS) -> str | None:
    """Turn the persistent cache on in ``directory`` (default :func:`default_directory`) unless
    one is configured already; returns the directory in use (None: off)."""
    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    directory = default_directory() if directory is None else str(directory)
    if directory is None:
        return None
    if not isinstance(min_compile_seconds, (int, float)) or not min_compile_seconds >= 0:
        raise ValueError(f"min_compile_seconds must be a number >= 0, got {min_compile_seconds!r}")
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return directory


def disable() -> None:
    """Turn the persistent cache off (programs compiled from now on are neither read nor written)."""
    jax.config.update("jax_compilation_cache_dir", None)


def directory() -> str | None:
    """The directory in use, or None when the cache is off."""
    return jax.config.jax_compilation_cache_dir or None
