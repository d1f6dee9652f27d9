"""References to compare jaxreg's solutions against, in jaxreg's conventions.

* :func:`sklearn_fit`: scikit-learn's ``LogisticRegression`` at jaxreg's λ (mean loss:
  ``C = 1/(nλ)``), as a jaxreg params dict (scikit-learn is an optional dependency, imported here
  only);
* :func:`value64`: the objective J of a params dict evaluated in float64, so solutions found in
  different precisions (or by different solvers) compare at matched objective;
* :func:`numpy_softmax_gd`: full-batch softmax regression in plain NumPy, as the source
  documents write it (the baseline the sweep benchmark times).
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import validation
from jaxreg.objective import Batch, Objective, Penalty

SOLVERS = {"l2": "lbfgs", "l1": "saga"}


def sklearn_fit(objective: Objective, X, y, kind: str, lam: float, *, tol: float = 1e-8,
                max_iter: int = 10_000) -> dict:
    """``LogisticRegression(C=1/(nλ))`` fitted to ``(X, y)``: lbfgs for ``kind="l2"``, saga for
    ``"l1"``; with an intercept iff ``objective.fit_intercept``. Returns ``{"W"[, "b"]}`` shaped as
    ``objective.init_params`` (``W`` = ``coef_.T`` for multiclass: the same over-parametrised
    multinomial model). Convergence warnings are silenced: ``max_iter`` bounds the work."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if objective.loss not in ("logistic", "softmax"):
        raise ValueError(f"objective.loss must be 'logistic' or 'softmax' for scikit-learn, got {objective.loss!r}")
    if kind not in SOLVERS:
        raise ValueError(f"kind must be one of {tuple(SOLVERS)}, got {kind!r}")
    lam = validation.check_scalar(lam, "lam", low=0, low_inclusive=False)
    X = np.asarray(X)
    model = LogisticRegression(C=1.0 / (X.shape[0] * lam), l1_ratio=1.0 if kind == "l1" else 0.0,
                               solver=SOLVERS[kind], tol=tol, max_iter=max_iter,
                               fit_intercept=objective.fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, np.asarray(y))
    multi = objective.is_multiclass
    params = {"W": model.coef_.T if multi else model.coef_[0]}
    if objective.fit_intercept:
        params["b"] = model.intercept_ if multi else model.intercept_[0]
    return params


def value64(objective: Objective, params: dict, pen: Penalty, X, y) -> float:
    """``objective.value(params, pen, (X, y))`` computed in float64 (whatever the params' dtype)."""
    with jax.enable_x64(True):
        p = {k: jnp.asarray(np.asarray(v, np.float64)) for k, v in params.items()}
        pen = Penalty(*(jnp.asarray(v, jnp.float64) for v in pen))
        return float(objective.value(p, pen, Batch(jnp.asarray(X, jnp.float64), jnp.asarray(y))))


def numpy_softmax_gd(X, Y, learning_rate: float, l2: float, l1: float, n_epochs: int) -> np.ndarray:
    """Full-batch softmax regression the way the source documents write it (seed 003 §6.2):
    ``W`` from zeros, ``n_epochs`` steps of ``W -= η (Xᵀ(softmax(XW) − Y)/n + λ₂W + λ₁ sign(W))``
    with one-hot ``Y`` (n, C), in the precision of ``X`` (float64 for the seeds' ``/255.``).
    Returns ``W`` (d, C): jaxreg's ``TrainConfig("full_batch", optimizer="sgd")`` on the mean
    cross-entropy without an intercept computes the same."""
    n = X.shape[0]
    W = np.zeros((X.shape[1], Y.shape[1]), X.dtype)
    for _ in range(n_epochs):
        a = np.matmul(X, W)
        e = np.exp(a - np.max(a, 1).reshape(n, 1))
        pred_y = e / np.sum(e, 1).reshape(n, 1)
        W = W - learning_rate * (np.dot(X.T, pred_y - Y) / n + l2 * W + l1 * np.sign(W))
    return W
