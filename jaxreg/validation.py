"""Checks of user input at the public API boundary, in plain Python/NumPy, before any ``jit``.

Each check raises ``ValueError`` naming the argument and what was expected; the jitted cores
assume valid input.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np

__all__ = ["as_array", "as_features", "as_targets", "check_batch", "check_n_features", "check_scalar",
           "check_values", "check_float_dtype"]


def as_array(x, name: str) -> np.ndarray:
    """``np.asarray(x)``; a ragged nesting of lists (or anything NumPy cannot make an array of)
    is a ValueError naming ``name``."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} must be a rectangular array (rows of equal length), got a ragged or "
                         f"mixed sequence ({e})") from None
    if arr.dtype == object:
        raise ValueError(f"{name} must be a rectangular array of numbers, got an object array "
                         f"(ragged rows or mixed types?)")
    return arr


def as_features(X, name: str = "X", *, dtype=None) -> np.ndarray:
    """A finite, non-empty 2-D float array ``(n_samples, n_features)``; integers become float32,
    half precision (float16, bfloat16) is promoted to float32."""
    arr = as_array(X, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    floating = np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize >= 4
    arr = arr.astype(dtype or (arr.dtype if floating else np.float32))
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf ({int(np.sum(~np.isfinite(arr)))} entries)")
    return arr


def as_targets(y, objective, n_samples: int, name: str = "y") -> np.ndarray:
    """Targets matching ``objective``: reals (squared), 0/1 (logistic), ints in [0, C) (multiclass)."""
    arr = as_array(y, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} entries but X has {n_samples} rows")
    if (not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be numeric (real numbers), got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr.astype(np.float64))):
        raise ValueError(f"{name} contains NaN or inf")
    if objective.record.target == "real":
        return arr.astype(np.float32 if arr.dtype != np.float64 else np.float64)
    as_int = arr.astype(np.int64)
    if not np.all(as_int == arr):
        raise ValueError(f"{name} must hold integer class labels for loss={objective.loss_name!r}")
    if objective.record.target == "class":
        if as_int.min() < 0 or as_int.max() >= objective.n_classes:
            raise ValueError(
                f"{name} labels must lie in [0, {objective.n_classes}), got range "
                f"[{as_int.min()}, {as_int.max()}]")
        return as_int.astype(np.int32)
    if not np.all((as_int == 0) | (as_int == 1)):
        raise ValueError(f"{name} must be 0/1 for loss={objective.loss_name!r}, got values {np.unique(as_int)[:5]}")
    return as_int.astype(np.float32)


def check_batch(X, y, objective, names=("X", "y")):
    """Validate a data set for ``objective``; returns ``(X, y)`` as NumPy arrays."""
    X = as_features(X, names[0])
    return X, as_targets(y, objective, X.shape[0], names[1])


def check_n_features(X, n_features: int, name: str = "X"):
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, expected {n_features} (as in X_train)")


def check_scalar(value, name: str, *, low=None, high=None, low_inclusive=True, integer=False,
                 allow_inf=False):
    """A real scalar in the given range (e.g. λ >= 0, η > 0); returns it as float/int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number)):
        arr = np.asarray(value)
        if arr.ndim != 0:
            raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
        value = arr.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if integer and (not float(value).is_integer()):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value) if integer else float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {op} {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return value


def check_values(values, name: str, **kwargs) -> np.ndarray:
    """A non-empty 1-D sequence of scalars each passing :func:`check_scalar`."""
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    for i, v in enumerate(arr):
        check_scalar(v, f"{name}[{i}]", **kwargs)
    return arr


def check_float_dtype(dtype, name: str = "dtype"):
    """``dtype`` as float32 or float64 (the precisions jaxreg computes in; float64 needs
    ``jax_enable_x64``); ValueError naming ``name`` otherwise."""
    import jax

    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{name} must be a floating dtype (float32 or float64), got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {dt.name}"
                         + (" (half precision is too coarse for these losses and solvers)" if dt.kind == "f" else ""))
    if dt == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(f"{name}=float64 needs 64-bit JAX: jax.config.update('jax_enable_x64', True) first "
                         "(or use float32)")
    return dt
