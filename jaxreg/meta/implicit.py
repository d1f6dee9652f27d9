"""The hypergradient of the hold-out loss with respect to λ (L2) by implicit differentiation.

At the minimiser θ*(λ) of J(θ, λ) = L_train(θ) + (λ/2)‖θ_p‖² (θ_p: the penalised parameters)
the stationarity condition ∇_θ J(θ*(λ), λ) = 0 holds for every λ; differentiating it (implicit
function theorem) gives

    H dθ*/dλ = −∂²J/∂θ∂λ = −θ*_p        (H = ∇²_θ J at θ*, θ*_p zero outside the penalised part)

so, with v = H⁻¹ ∇_θ L_val(θ*) (H is symmetric),

    d L_val / dλ = ∇_θ L_val · dθ*/dλ = −v · θ*_p,      d L_val / d log λ = λ d L_val / dλ.

H is never formed: Hessian-vector products are forward-over-reverse (``jax.jvp`` of
``jax.grad``) and the solve is conjugate gradients (``jax.scipy.sparse.linalg.cg``). Cost: one
gradient of L_val plus ``maxiter`` Hessian-vector products, independent of how θ* was found;
valid only at a (near-)optimum: ``stationarity`` (‖∇_θ J(θ)‖) says how near.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg

from jaxreg import tree, validation
from jaxreg.objective import Objective, Penalty
from jaxreg.config import TrainData

__all__ = ["ImplicitResult", "implicit_l2", "implicit_l2_hypergrad"]


class ImplicitResult(NamedTuple):
    """val_loss: L_val(θ); grad_log_l2 / grad_l2: d L_val / d log λ and d L_val / dλ;
    stationarity: ‖∇_θ J(θ, λ)‖ (≈0 at the optimum, where the result is exact);
    cg_residual: ‖H v − ∇L_val‖ / ‖∇L_val‖ of the linear solve."""

    val_loss: jax.Array
    grad_log_l2: jax.Array
    grad_l2: jax.Array
    stationarity: jax.Array
    cg_residual: jax.Array


def implicit_l2(objective: Objective, params, data: TrainData, l2, tol, maxiter):
    pen = Penalty(l2=l2, l1=jnp.zeros_like(l2))
    train_J = lambda p: objective.value(p, pen, data.train)  # noqa: E731
    val_L = lambda p: jnp.mean(objective.per_example_loss(p, data.holdout))  # noqa: E731
    grad_J = jax.grad(train_J)

    def hvp(v):
        return jax.jvp(grad_J, (params,), (v,))[1]

    loss, g_val = jax.value_and_grad(val_L)(params)
    v, _ = cg(hvp, g_val, tol=tol, maxiter=maxiter)
    pen_part = objective.penalized_part(params)
    dtheta_dl = {k: (pen_part[k] if k in pen_part else jnp.zeros_like(x)) for k, x in params.items()}
    grad_l2 = -tree.vdot(v, dtheta_dl)
    resid = tree.sub(hvp(v), g_val)
    rel = jnp.sqrt(tree.vdot(resid, resid) / jnp.maximum(tree.vdot(g_val, g_val), jnp.finfo(loss.dtype).tiny))
    gJ = grad_J(params)
    return ImplicitResult(loss, l2 * grad_l2, grad_l2, jnp.sqrt(tree.vdot(gJ, gJ)), rel)


_implicit_jit = jax.jit(implicit_l2, static_argnums=(0, 4, 5))


def implicit_l2_hypergrad(objective: Objective, params, data: TrainData, l2, *, tol: float = 1e-10,
                          maxiter: Optional[int] = None) -> ImplicitResult:
    """d L_val / d log λ at ``params`` = θ*(λ), the minimiser of the L2-penalised training
    objective ``objective.value(θ, Penalty(l2=λ), data.train)``; L_val is the mean per-example
    loss on ``data.holdout`` (no penalty). Jitted; differentiable and vmappable in ``l2``
    through :func:`jaxreg.meta.implicit.implicit_l2` if needed.

    Raises ValueError naming ``data.holdout`` (missing) or ``l2`` (not a finite value > 0).
    """
    if not isinstance(data, TrainData) or data.holdout is None:
        raise ValueError("data.holdout is required: the hypergradient differentiates the hold-out loss")
    l2 = validation.check_scalar(l2, "l2", low=0, low_inclusive=False)
    dtype = tree.leaf_dtype(params)
    return _implicit_jit(objective, params, data, jnp.asarray(l2, dtype), float(tol), maxiter)
