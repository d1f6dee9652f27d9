"""Pytree helpers used across jaxreg (one copy each): select, inner product, norm, finiteness.

Every function takes pytrees of arrays with matching structure (parameters ``{"W", "b"}``,
optimiser states, ...) and is pure, so it can be jitted, vmapped and differentiated.
"""
from __future__ import annotations

import jax
import numpy as np
import jax.numpy as jnp

__all__ = ["where", "vdot", "sub", "norm", "all_finite", "stack", "take", "leaf_dtype", "to_device"]


def where(cond, new, old):
    """Leafwise ``jnp.where(cond, new, old)``: keep ``old`` where ``cond`` is False (a frozen
    model keeps its state). ``cond`` is a boolean scalar (or broadcastable to every leaf)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)


def vdot(a, b):
    """Σ over leaves of ``vdot(a_leaf, b_leaf)``: the inner product ⟨a, b⟩ of two pytrees."""
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def sub(a, b):
    """Leafwise ``a − b``."""
    return jax.tree_util.tree_map(jnp.subtract, a, b)


def norm(tree):
    """Euclidean norm ‖θ‖₂ over every entry of every leaf."""
    return jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(tree)))


def all_finite(tree):
    """True when no leaf holds a NaN or an infinity (a boolean scalar)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def stack(trees):
    """One pytree whose leaves stack the leaves of ``trees`` along a new leading axis."""
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)


def take(tree, i):
    """Leafwise ``leaf[i]`` (one member of a stacked pytree)."""
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def leaf_dtype(tree):
    """The dtype of the first leaf (the precision a params pytree computes in)."""
    return jax.tree_util.tree_leaves(tree)[0].dtype


def to_device(x, dtype=None):
    """A host value as a device array of ``dtype`` (canonicalised: float64 is float32 unless x64
    is on), by ``jax.device_put``: unlike ``jnp.asarray`` of a NumPy array, which compiles a
    small program per shape in this JAX, it compiles nothing (a first call's cost)."""
    dtype = None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)
    return jax.device_put(np.asarray(x, dtype))
