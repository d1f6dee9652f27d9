"""Per-example weights from the user: ``sample_weight`` and ``class_weight``, checked at the
boundary (plain NumPy, before anything is compiled; ``ValueError`` naming the argument).

The objective uses them as ``Batch(X, y, weight)``: the weighted mean Σ w_n ℓ_n / Σ w_n
(:mod:`jaxreg.objective`). ``class_weight`` follows scikit-learn:

* ``"balanced"``: w_k = Σ_n s_n / (K · Σ_{n: y_n = k} s_n) for each of the K classes (with
  sample weights s; the unweighted case is n / (K n_k)), so every class carries the same total
  weight;
* a dict ``{label: weight}`` (labels not named weigh 1).

The example weight is then ``sample_weight_n · class_weight[y_n]``.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

__all__ = ["check_sample_weight", "class_weight_vector", "example_weights"]


def check_sample_weight(sample_weight, n_samples: int, name: str = "sample_weight",
                        dtype=np.float64) -> np.ndarray:
    """``sample_weight`` as a finite, non-negative (n,) array whose sum is positive; a scalar is
    broadcast to every example. ValueError naming ``name`` otherwise."""
    arr = np.asarray(sample_weight)
    if arr.ndim == 0:
        arr = np.full(n_samples, arr.item() if arr.dtype != object else arr)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},), one weight per example, got {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {int(np.sum(arr < 0))} negative entries")
    if not np.sum(arr) > 0:
        raise ValueError(f"{name} must not be all zero (the weighted mean divides by Σ w)")
    return arr


def class_weight_vector(class_weight, y_index: np.ndarray, n_classes: int,
                        sample_weight: Optional[np.ndarray] = None, labels=None,
                        name: str = "class_weight") -> np.ndarray:
    """(K,) weights of the classes 0..K-1 (``y_index`` holds each example's class index).

    class_weight: None (ones), ``"balanced"`` or a mapping ``{label: weight}``; ``labels`` are
    the K original labels the mapping's keys refer to (default 0..K-1).
    """
    labels = list(range(n_classes)) if labels is None else list(labels)
    if class_weight is None:
        return np.ones(n_classes)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"{name} must be None, 'balanced' or a dict {{label: weight}}, got {class_weight!r}")
        s = np.ones(len(y_index)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        counts = np.bincount(y_index, weights=s, minlength=n_classes)
        if np.any(counts <= 0):
            missing = [labels[k] for k in np.flatnonzero(counts <= 0)]
            raise ValueError(f"{name}='balanced' needs every class to carry weight; classes {missing} have none")
        return counts.sum() / (n_classes * counts)
    if not isinstance(class_weight, Mapping):
        raise ValueError(f"{name} must be None, 'balanced' or a dict {{label: weight}}, got {class_weight!r}")
    unknown = [k for k in class_weight if k not in labels]
    if unknown:
        raise ValueError(f"{name} keys must be class labels {labels}, got unknown keys {unknown}")
    out = np.ones(n_classes)
    for k, label in enumerate(labels):
        if label in class_weight:
            v = class_weight[label]
            if isinstance(v, bool) or not np.isscalar(v) or not np.isfinite(float(v)) or float(v) < 0:
                raise ValueError(f"{name}[{label!r}] must be a finite non-negative number, got {v!r}")
            out[k] = float(v)
    return out


def example_weights(y_index: np.ndarray, n_classes: int, sample_weight=None, class_weight=None,
                    labels=None, name: str = "sample_weight") -> Optional[np.ndarray]:
    """``sample_weight_n · class_weight[y_n]`` (n,) checked, or None when neither is given (the
    unweighted objective, computed exactly as without weights)."""
    if sample_weight is None and class_weight is None:
        return None
    n = len(y_index)
    s = None if sample_weight is None else check_sample_weight(sample_weight, n, name)
    w = (np.ones(n) if s is None else s) * class_weight_vector(class_weight, y_index, n_classes, s, labels)[y_index]
    if not np.sum(w) > 0:
        raise ValueError(f"{name} and class_weight together give every example zero weight")
    return w
