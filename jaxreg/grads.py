"""Closed-form gradients from the source documents, and a finite-difference checker.

All gradients factor through the scores: with s = X W + b and r = ∂ℓ/∂s per example,

    ∇_W = Xᵀ r / n   (mean)  or  Xᵀ r  (sum);      ∇_b = Σ_n r_n / n  (or Σ_n r_n).

With per-example weights w (``Batch.weight``): r_n ← w_n r_n and n ← Σ_n w_n (mean), i.e.
∇_W = Xᵀ(w ⊙ r) / Σ w.

with r written once per loss in its record (:mod:`jaxreg.losses`): 2(s − y) for squared [001],
σ(s) − y for logistic [000, 001, 003 eq. (5)], (σ(s) − y)σ(s)(1 − σ(s)) for logistic_mse (the
attenuation of the MSE-logistic lecture), softmax(s) − onehot(y) for softmax (so ∇_W = Xᵀ(P − Y); [001, 003
eq. (15), 004]) and the indicator form r_j = 1[m_j > 0] (j ≠ y), r_y = −Σ_{j≠y} 1[m_j > 0] for the
hinge [002],

and the penalty adds λ₂ θ + λ₁ sign(θ) (sign(0) = 0) on the penalised parameters θ.
"""
from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxreg import losses

__all__ = ["score_residual", "transpose_times", "objective_grad", "relative_error", "finite_difference_grad",
           "check_grad"]


def score_residual(loss, scores, y):
    """r = ∂ℓ/∂s for each example: (n,) or (n, C), closed form (the loss record's ``residual``);
    ``loss`` a name or a :class:`~jaxreg.losses.Loss` record."""
    return losses.residual_of(losses.get_loss(loss), scores, y)


def transpose_times(X, r):
    """Xᵀ r for X (n, d) and r (n,) or (n, C), written as (rᵀ X)ᵀ: the same sum, but XLA:CPU
    runs ``X.T @ r`` for a vector r as a strided pass over X, 10-25x slower than ``r @ X``
    (measured with ``experiments/benchmarks/bench_peers.py``'s harness; equal for a matrix r in float32,
    faster in float64 under vmap)."""
    return r @ X if r.ndim == 1 else (r.T @ X).T


def objective_grad(objective, params, pen, batch):
    """Closed-form ∇J for ``objective`` (an :class:`~jaxreg.objective.Objective`); a params pytree."""
    X, y, w = batch
    r = losses.residual_of(objective.record, objective.scores(params, X), y)
    if w is None:
        scale = 1.0 / X.shape[0] if objective.reduction == losses.MEAN else 1.0
    else:  # weighted: r_n ← w_n r_n, divided by Σ w (mean) or not (sum)
        r = r * (w[:, None] if r.ndim == 2 else w)
        scale = 1.0 / jnp.sum(w) if objective.reduction == losses.MEAN else 1.0
    grads = {"W": scale * transpose_times(X, r)}
    if "b" in params:
        grads["b"] = scale * jnp.sum(r, axis=0)
    penalized = objective.penalized_part(params)
    for name, theta in penalized.items():
        grads[name] = grads[name] + pen.l2 * theta + pen.l1 * jnp.sign(theta)
    return grads


def relative_error(a, b) -> float:
    """‖a − b‖ / ‖a + b‖ over whole pytrees (the notebook's check); 0 when both are zero."""
    va, _ = ravel_pytree(a)
    vb, _ = ravel_pytree(b)
    va, vb = np.asarray(va, np.float64), np.asarray(vb, np.float64)
    denom = np.linalg.norm(va + vb)
    num = np.linalg.norm(va - vb)
    return 0.0 if num == 0.0 else float(num / max(denom, np.finfo(np.float64).tiny))


def finite_difference_grad(f, params, eps: float = 1e-6):
    """Central differences (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε for every coordinate of a pytree.

    ``f`` maps a params pytree to a scalar. Cost: 2 × (number of parameters) calls to ``f``
    (jitted once). Use float64 (``jax.config.update("jax_enable_x64", True)``) for tight checks.
    """
    flat, unravel = ravel_pytree(params)
    f_flat = jax.jit(lambda v: f(unravel(v)))
    eye = jnp.eye(flat.size, dtype=flat.dtype)

    def one(e):
        return (f_flat(flat + eps * e) - f_flat(flat - eps * e)) / (2 * eps)

    return unravel(jax.lax.map(one, eye))


def check_grad(f, grad_fn, params, eps: float = 1e-6) -> float:
    """Relative error between ``grad_fn(params)`` and central differences of ``f`` at ``params``."""
    return relative_error(grad_fn(params), finite_difference_grad(f, params, eps))
