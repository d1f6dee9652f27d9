"""Cross-validation folds as 0/1 weight masks over the same arrays (plain NumPy, before jit).

A fold k is the training mask ``m_k = 1[foldid ≠ k]`` (n,) and its hold-out the complement, both
used as per-example weights (``Batch.weight``) of the unchanged arrays X, y. Shapes never change
with k, so every fold is one member of one compiled program (the engine's ``model_data``, merged
in by :func:`merge_fold`). Unequal fold sizes change only Σ w, never a shape; mini-batch epochs
draw from the fold's own training rows (``TrainConfig.epoch_rows`` = the smallest training
fold, so every fold runs the same number of updates, :func:`smallest_training_rows`).

* :func:`kfold`: fold ids from a key; for class labels stratified (each class dealt round-robin
  over the folds after a shuffle, so every fold holds ⌊n_c/K⌋ or ⌈n_c/K⌉ of class c and
  ⌊n/K⌋ or ⌈n/K⌉ rows in all).
* :func:`check_folds`: a fold count K or user fold ids (glmnet's ``foldid``; any K distinct
  labels) validated: 2 ≤ K ≤ n, no empty hold-out, and for classifiers every class present in
  every training fold. ``ValueError`` naming ``folds``.
"""
from __future__ import annotations

from numbers import Integral

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.config import TrainData
from jaxreg.objective import Batch
from jaxreg.prepare import as_key

__all__ = ["kfold", "check_folds", "train_masks", "smallest_training_rows", "merge_fold"]


def kfold(n_samples: int, n_folds: int = 5, *, key=None, y=None, shuffle: bool = True) -> np.ndarray:
    """(n_samples,) int32 fold ids in [0, n_folds): rows shuffled by ``key`` (default
    ``PRNGKey(0)``; ``shuffle=False`` keeps the row order), stratified by ``y`` when given."""
    n_samples, n_folds = int(n_samples), _check_k(n_folds, int(n_samples))
    order = (np.asarray(jax.random.permutation(as_key(key, "fold_key"), n_samples)) if shuffle
             else np.arange(n_samples))
    if y is not None:
        order = order[np.argsort(np.asarray(y)[order], kind="stable")]  # classes grouped, shuffled within
    foldid = np.empty(n_samples, np.int32)
    foldid[order] = np.arange(n_samples) % n_folds
    return foldid


def _check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise ValueError(f"folds must be an int number of folds or an array of fold ids, got {k!r}")
    if not 2 <= int(k) <= n:
        raise ValueError(f"folds: the number of folds K must satisfy 2 <= K <= n_samples = {n}, got {int(k)}")
    return int(k)


def check_folds(folds, n_samples: int, *, y=None, classifier: bool = False, weight=None, key=None):
    """``(foldid (n,) int32 in [0, K), K)`` from ``folds``: an int K (drawn by :func:`kfold` from
    ``key``, stratified for classifiers) or one fold id per row (relabelled 0..K−1 in sorted
    order). Raises ValueError naming ``folds`` for K < 2 or K > n, a held-out fold with no
    (positive-weight) row, or, for a classifier, a class missing from a training fold."""
    y = None if y is None else np.asarray(y)
    labels = y.astype(np.int64) if classifier and y is not None else None
    if np.ndim(folds) == 0:
        foldid = kfold(n_samples, _check_k(folds, n_samples), key=key, y=labels)
    else:
        ids = np.asarray(folds)
        if ids.shape != (n_samples,):
            raise ValueError(f"folds as fold ids must have shape ({n_samples},), one per row, got {ids.shape}")
        if ids.dtype == object or not (np.issubdtype(ids.dtype, np.integer) or np.issubdtype(ids.dtype, np.str_)):
            raise ValueError(f"folds as fold ids must be integers or strings, got dtype {ids.dtype}")
        uniq, foldid = np.unique(ids, return_inverse=True)
        _check_k(len(uniq), n_samples)
        foldid = foldid.astype(np.int32)
    K = int(foldid.max()) + 1
    w = np.ones(n_samples) if weight is None else np.asarray(weight, np.float64)
    held = np.bincount(foldid, weights=w, minlength=K)
    if np.any(held <= 0):
        raise ValueError(f"folds: held-out fold(s) {np.flatnonzero(held <= 0).tolist()} have no row with positive weight")
    if labels is not None:
        classes = np.unique(labels[w > 0])
        for k in range(K):
            train = (foldid != k) & (w > 0)
            missing = np.setdiff1d(classes, np.unique(labels[train]))
            if missing.size:
                raise ValueError(f"folds: training fold {k} (all rows but fold {k}) has no example of class(es) "
                                 f"{missing.tolist()}; use more data per class or fewer folds")
    return foldid, K


def train_masks(foldid, n_folds: int) -> np.ndarray:
    """(K, n) bool: row n is in fold k's training part (``foldid[n] != k``)."""
    return np.asarray(foldid)[None, :] != np.arange(n_folds)[:, None]


def smallest_training_rows(foldid, n_folds: int, weight=None) -> int:
    """min over folds of the number of positive-weight training rows (``epoch_rows``)."""
    live = np.ones(len(foldid), bool) if weight is None else np.asarray(weight) > 0
    return int(min(np.sum(m & live) for m in train_masks(foldid, n_folds)))


def merge_fold(data: TrainData, train_mask) -> TrainData:
    """Inside the program: the shared data with one fold's weights, ``train`` = the training
    rows (w ⊙ m), ``holdout`` = the held-out rows (w ⊙ (1 − m)), ``test`` unchanged.
    ``train_mask``: (n,) bool (the engine's per-model ``model_data``)."""
    X, y, w = data.train
    m = jnp.asarray(train_mask, X.dtype)
    w = jnp.ones_like(m) if w is None else w
    return TrainData(Batch(X, y, w * m), Batch(X, y, w * (1 - m)), data.test)
