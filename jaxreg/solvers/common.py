"""What both path solvers share: the augmented data X̃ = [X, 1], the data term and its gradient
from the scores, the mean curvature, freezing of stopped members, input validation.

θ = [W; b] is one array, (p,) or (p, C) with p = d + 1 (d without intercept); ``mask`` (p,) or
(p, 1) is 1 on penalised rows. The scores s = X̃θ are linear in θ, so a line search along d
costs one product X̃d.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import losses, tree, validation
from jaxreg.objective import Objective

SMOOTH_LOSSES = tuple(name for name, rec in losses.LOSSES.items() if rec.smooth)


class SolverResult(NamedTuple):
    """Results with a leading λ axis of length L = len(lambdas).

    params: ``{"W": (L, d[, C]), "b": (L[, C])}`` ("b" only with an intercept); value: J at
    params (L,); n_iter: iterations (L,) int; converged: (L,) bool; optimality: the final
    stopping measure (L,): ‖∇J‖∞ (L2) or ‖G‖∞ (L1).
    """

    params: Any
    value: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    optimality: jax.Array


class _Data(NamedTuple):
    Xa: jax.Array     # (n, p): X with a trailing column of ones if fit_intercept
    XaT: jax.Array    # (p, n): its transpose, stored
    y: jax.Array      # (n,)
    mask: jax.Array   # (p,) or (p, 1): 1 on penalised rows of θ
    scale: jax.Array  # 1/n (mean) or 1 (sum)


def vdot(a, b):
    """Σ a·b over every entry (θ is one array here: (p,) or (p, C))."""
    return jnp.sum(a * b)


def loss_value(obj, data, s):
    """The data term reduce_n ℓ(s_n, y_n) from the scores s = X̃θ."""
    return losses.reduce_losses(obj.record.value(s, data.y), obj.reduction)


def loss_grad(obj, data, s):
    """∇_θ of the data term from the scores: scale · X̃ᵀ r, r = ∂ℓ/∂s."""
    return data.scale * (data.XaT @ obj.record.residual(s, data.y))


def mean_curvature(obj, s):
    """c with X̃ᵀ diag(ℓ''(s)) X̃ ≈ c X̃ᵀX̃: the mean of the loss's ``curvature_at`` (p(1 − p) over
    every class), at least 1e-4 of the bound; the bound itself (2 squared) where there is none."""
    c0 = obj.record.curvature
    if obj.record.curvature_at is None:
        return jnp.asarray(c0, s.dtype)
    return jnp.maximum(jnp.mean(obj.record.curvature_at(s)), 1e-4 * c0)


def freeze(done, old, new):
    """A stopped member keeps its state (``tree.where(done, old, new)``)."""
    return tree.where(done, old, new)


def prepare(objective, batch, lambdas, tol, tol64, max_iter, init, dtype):
    """Validate at the boundary (plain Python/NumPy, before jit); build the augmented data."""
    if not isinstance(objective, Objective) or not objective.record.smooth:
        raise ValueError(f"objective must be an Objective with a smooth loss {SMOOTH_LOSSES}, "
                         f"got {getattr(objective, 'loss', objective)!r}")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"batch must be a Batch(X, y) or an (X, y) pair, got {type(batch).__name__}")
    X, y = validation.check_batch(batch[0], batch[1], objective, names=("batch.X", "batch.y"))
    if objective.is_classifier and np.unique(y).size < 2:  # as scikit-learn: no finite minimiser
        raise ValueError(f"batch.y holds a single class ({y[0]:g}); a classifier needs examples of at least "
                         "2 classes")
    lam = validation.check_values(lambdas, "lambdas", low=0.0)
    max_iter = validation.check_scalar(max_iter, "max_iter", low=1, integer=True)
    dtype = validation.check_float_dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(X.dtype)
    tol = tol64 if tol is None and dtype == np.float64 else 1e-5 if tol is None else tol
    tol = validation.check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    (n, d), L, C = X.shape, lam.size, objective.n_classes
    w_shape = (d, C) if objective.is_multiclass else (d,)
    Xa = np.concatenate([X, np.ones((n, 1), X.dtype)], 1) if objective.fit_intercept else X
    mask = np.ones(Xa.shape[1], dtype)
    mask[-1] = 0.0 if objective.fit_intercept and not objective.penalize_intercept else 1.0
    theta = np.zeros((L, Xa.shape[1]) + w_shape[1:], dtype)
    if init is not None:
        if not isinstance(init, dict) or set(init) != ({"W", "b"} if objective.fit_intercept else {"W"}):
            raise ValueError("init must be a params dict with the keys of objective.init_params(d)")
        for key, shape, rows in (("W", w_shape, slice(0, d)), ("b", w_shape[1:], d))[:len(init)]:
            v = np.asarray(init[key], dtype)
            if v.shape not in (shape, (L,) + shape):
                raise ValueError(f"init[{key!r}] must have shape {shape} or {(L,) + shape}, "
                                 f"got {v.shape}")
            theta[:, rows] = v
    Xa = jnp.asarray(Xa, dtype)
    data = _Data(Xa, Xa.T.copy(), jnp.asarray(y, jnp.int32 if objective.is_multiclass else dtype),
                 jnp.asarray(mask[:, None] if objective.is_multiclass else mask),
                 jnp.asarray(1.0 / n if objective.reduction == losses.MEAN else 1.0, dtype))
    return data, jnp.asarray(lam, dtype), jnp.asarray(theta), max_iter, d, dtype, tol


class ConvergenceWarning(UserWarning):
    """A solver's answer is not a minimiser (scikit-learn's name for its warning)."""


def separated(objective, data, theta, unpenalised) -> np.ndarray:
    """(L,) bool: members with no penalty (``unpenalised``) whose θ classifies every training
    example with a positive margin. The data are then separable, so the loss has no minimum:
    it tends to 0 as ‖W‖ → ∞ along θ (exact: a θ with all margins > 0 proves separability)."""
    out = np.zeros(len(unpenalised), bool)
    if objective.record.target == "real" or not np.any(unpenalised):
        return out
    Xa, y, th = np.asarray(data.Xa, np.float64), np.asarray(data.y), np.asarray(theta, np.float64)
    for i in np.flatnonzero(unpenalised):
        s = Xa @ th[i]
        if objective.is_multiclass:
            true = np.take_along_axis(s, y[:, None].astype(int), 1)[:, 0]
            rival = np.max(np.where(np.eye(s.shape[1], dtype=bool)[y.astype(int)], -np.inf, s), axis=1)
            out[i] = bool(np.all(true > rival))
        else:
            out[i] = bool(np.all((2 * y - 1) * s > 0))
    return out


def result(objective, d, theta, *rest, data=None, unpenalised=None, solver="solver"):
    """The :class:`SolverResult`; with ``data`` and ``unpenalised`` ((L,) bool: λ₁ = λ₂ = 0),
    a member on separable data (:func:`separated`) is marked not converged, with a
    :class:`ConvergenceWarning` naming its ``lambdas[i]``."""
    value, n_iter, converged, optimality = rest
    if data is not None:
        bad = separated(objective, data, theta, unpenalised)
        if bad.any():
            import warnings

            W = np.abs(np.asarray(theta))[bad].max()
            idx = ", ".join(f"lambdas[{i}]" for i in np.flatnonzero(bad))
            warnings.warn(f"{solver}: {idx} = 0 and the training data are linearly separable: the loss has no "
                          f"minimum (it tends to 0 as ||W|| grows), so the weights returned (max |W| = {W:.3g}) "
                          "depend on tol and max_iter; converged is False for them. Use a penalty > 0.",
                          ConvergenceWarning, stacklevel=3)
            converged = jnp.asarray(np.asarray(converged) & ~bad)
    params = {"W": theta[:, :d], **({"b": theta[:, d]} if objective.fit_intercept else {})}
    return SolverResult(params, value, n_iter, converged, optimality)


