"""Checks of user input at the public API boundary, in plain Python/NumPy, before any ``jit``.

Each check raises ``ValueError`` naming the argument and what was expected; the jitted cores
assume valid input.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np


def as_features(X, name: str = "X", *, dtype=None) -> np.ndarray:
    """A finite, non-empty 2-D float array ``(n_samples, n_features)``."""
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(dtype or (arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float32))
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf ({int(np.sum(~np.isfinite(arr)))} entries)")
    return arr


def as_targets(y, objective, n_samples: int, name: str = "y") -> np.ndarray:
    """Targets matching ``objective``: reals (squared), 0/1 (logistic), ints in [0, C) (multiclass)."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} entries but X has {n_samples} rows")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr.astype(np.float64))):
        raise ValueError(f"{name} contains NaN or inf")
    if objective.record.target == "real":
        return arr.astype(np.float32 if arr.dtype != np.float64 else np.float64)
    as_int = arr.astype(np.int64)
    if not np.all(as_int == arr):
        raise ValueError(f"{name} must hold integer class labels for loss={objective.loss!r}")
    if objective.record.target == "class":
        if as_int.min() < 0 or as_int.max() >= objective.n_classes:
            raise ValueError(
                f"{name} labels must lie in [0, {objective.n_classes}), got range "
                f"[{as_int.min()}, {as_int.max()}]")
        return as_int.astype(np.int32)
    if not np.all((as_int == 0) | (as_int == 1)):
        raise ValueError(f"{name} must be 0/1 for loss={objective.loss!r}, got values {np.unique(as_int)[:5]}")
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
