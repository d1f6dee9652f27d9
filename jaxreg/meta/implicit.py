"""Implicit differentiation with respect to λ (L2): at one optimum, and through whole converged paths.

**At one optimum** (:func:`implicit_l2_hypergrad`, :func:`implicit_l2`). At the minimiser θ*(λ) of J(θ, λ) = L_train(θ) + (λ/2)‖θ_p‖² (θ_p: the penalised parameters)
the stationarity condition ∇_θ J(θ*(λ), λ) = 0 holds for every λ; differentiating it (implicit
function theorem) gives

    H dθ*/dλ = −∂²J/∂θ∂λ = −θ*_p        (H = ∇²_θ J at θ*, θ*_p zero outside the penalised part)

so, with v = H⁻¹ ∇_θ L_val(θ*) (H is symmetric),

    d L_val / dλ = ∇_θ L_val · dθ*/dλ = −v · θ*_p,      d L_val / d log λ = λ d L_val / dλ.

H is never formed: Hessian-vector products are forward-over-reverse (``jax.jvp`` of
``jax.grad``) and the solve is conjugate gradients (``jax.scipy.sparse.linalg.cg``). Cost: one
gradient of L_val plus ``maxiter`` Hessian-vector products, independent of how θ* was found;
valid only at a (near-)optimum: ``stationarity`` (‖∇_θ J(θ)‖) says how near.

**Through converged L2 paths** (:func:`l2_path`, :func:`path_hypergrad`): ``jax.grad`` of a solve
simply works. For the L2-penalised objective with per-row strengths c (p,) on θ = [W; b] (p = d + 1 rows,
the bias row last when there is one)

    J(θ; λ) = reduce_n ℓ(x̃_n θ, y_n) + ½ Σ_j c_j(λ) ‖θ_j‖²,
    c(λ) = λ · mask               (one λ; mask = 1 on W, on b only if penalize_intercept), or
    c_j(λ) = λ_{groups[j]}        (one λ per feature group, e.g. one per image row; b unpenalised)

the solver's optimum θ*(λ) satisfies ∇_θ J(θ*(λ); λ) = 0, so (implicit function theorem)

    dθ*/dλ = −H⁻¹ ∂_λ ∇_θ J,   H = ∇²_θ J(θ*),  and for a cotangent θ̄:  λ̄ = −(∂_λ ∇_θ J)ᵀ H⁻¹ θ̄.

:func:`l2_path` returns θ*(λ) for every λ of a path (one call of the public
:func:`jaxreg.solvers.solve_l2_path`: its batched L-BFGS) and carries that rule as a
``jax.custom_vjp``: ``jax.grad`` of anything computed from the path's solutions gives every λ's
hypergradient at once, the L linear systems solved together (``vmap`` of preconditioned
conjugate gradients, Hessian-vector products forward-over-reverse; preconditioner
c̄ X̃ᵀX̃/n + diag(c), c̄ the mean curvature at θ*, one Cholesky per λ). Per-group λ is solved by
rescaling: with x̃_j = x_j/√c_j the problem has c = 1, so the same public solver applies.

The solves run on concrete λ: call ``jax.grad`` / ``jax.value_and_grad`` directly (not under
``jit`` or ``vmap``; the path axis is the batch). Exact at an exact optimum; the solver's
tolerance (``tol``, ‖∇J‖∞) bounds the error.
"""
from __future__ import annotations

import contextlib
import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.sparse.linalg import cg

from jaxreg import tree, validation
from jaxreg.config import TrainData
from jaxreg.objective import Batch, Objective, Penalty
from jaxreg.solvers import solve_l2_path

__all__ = ["ImplicitResult", "implicit_l2", "implicit_l2_hypergrad", "float64", "PathSpec", "strengths",
           "objective_value", "solve_path", "implicit_vjp", "grad_J", "l2_path", "holdout_loss", "path_hypergrad"]


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
    through :func:`implicit_l2` if needed.

    Raises ValueError naming ``data.holdout`` (missing) or ``l2`` (not a finite value > 0).
    """
    if not isinstance(data, TrainData) or data.holdout is None:
        raise ValueError("data.holdout is required: the hypergradient differentiates the hold-out loss")
    l2 = validation.check_scalar(l2, "l2", low=0, low_inclusive=False)
    dtype = tree.leaf_dtype(params)
    return _implicit_jit(objective, params, data, jnp.asarray(l2, dtype), float(tol), maxiter)

@contextlib.contextmanager
def float64():
    """Run a block with ``jax_enable_x64`` on (restored after)."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)


class PathSpec(NamedTuple):
    """Static choices of :func:`l2_path` (hashable): groups (d,) ints as a tuple, or None;
    solver keywords of ``solve_l2_path`` as sorted (name, value) pairs; CG tolerance and
    maximum iterations."""

    objective: Objective
    groups: Optional[tuple]
    solver: tuple
    cg_tol: float
    cg_maxiter: Optional[int]


def strengths(spec: PathSpec, lam, d: int, dtype):
    """c (p,) for one path point: λ · mask, or λ[groups] on the d feature rows (0 on b)."""
    obj = spec.objective
    if spec.groups is None:
        c = jnp.full((d,), lam, dtype)
        tail = [lam * jnp.ones((1,), dtype) if obj.penalize_intercept else jnp.zeros((1,), dtype)]
    else:
        c, tail = jnp.asarray(lam, dtype)[jnp.asarray(spec.groups)], [jnp.zeros((1,), dtype)]
    return jnp.concatenate([c] + (tail if obj.fit_intercept else []))


def _stack(params):
    """θ (p, C) or (p,) from {"W", "b"}."""
    W = params["W"]
    return W if "b" not in params else jnp.concatenate([W, params["b"][None]], 0)


def objective_value(spec: PathSpec, params, lam, batch: Batch):
    """J(θ; λ) of the module docstring for one path point."""
    theta = _stack(params)
    c = strengths(spec, lam, params["W"].shape[0], theta.dtype)
    sq = theta * theta if theta.ndim == 1 else jnp.sum(theta * theta, axis=1)
    return spec.objective.data_loss(params, batch) + 0.5 * jnp.sum(c * sq)


def _concrete(lambdas) -> np.ndarray:
    try:
        return np.asarray(lambdas, np.float64)
    except jax.errors.TracerArrayConversionError:
        raise ValueError("l2_path solves for concrete lambdas: call jax.grad / jax.value_and_grad on it directly, "
                         "not under jit or vmap (the path axis is the batch)") from None


def _rows(W, scale):
    """W (d,) or (d, C) with row j multiplied by scale_j."""
    return W * (scale[:, None] if W.ndim == 2 else scale)


def solve_path(spec: PathSpec, batch: Batch, lambdas, init=None):
    """The public solver's :class:`~jaxreg.solvers.SolverResult` for every path point: one
    ``solve_l2_path`` call for one λ per point; per group, one call per point on the rescaled
    features x_j/√c_j (c = 1), its W mapped back (W_j = W̃_j/√c_j). ``init``: starting params
    with a leading (L,) axis (a warm start), or None (zeros)."""
    lam, kw, obj = _concrete(lambdas), dict(spec.solver), spec.objective
    if spec.groups is None:
        return solve_l2_path(obj, batch, lam, init=init, **kw)
    if not np.all(lam > 0):
        raise ValueError(f"lambdas must be > 0 with groups (the solve rescales features by 1/√λ), got {lam.tolist()}")
    X, outs = np.asarray(batch.X), []
    for i, row in enumerate(lam):
        scale = np.sqrt(row[np.asarray(spec.groups)])
        start = None if init is None else {**{k: np.asarray(v)[i] for k, v in init.items()},
                                           "W": _rows(np.asarray(init["W"])[i], scale)}
        res = solve_l2_path(obj, Batch(X / scale, batch.y), [1.0], init=start, **kw)
        outs.append(res._replace(params={**res.params, "W": _rows(np.asarray(res.params["W"])[0], 1 / scale)[None]}))
    return jax.tree_util.tree_map(lambda *a: np.concatenate([np.asarray(x) for x in a]), *outs)


@functools.partial(jax.jit, static_argnums=0)
def implicit_vjp(spec: PathSpec, batch: Batch, params, lambdas, cotangent):
    """λ̄ (L, ...) for θ̄ = ``cotangent`` (L, ...) at the path's optima ``params`` (module
    docstring), and the relative CG residuals (L,); vmapped over the path."""
    obj = spec.objective
    X = batch.X
    Xa = jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], 1) if obj.fit_intercept else X
    scale = 1.0 / X.shape[0] if obj.reduction == "mean" else 1.0
    G = (Xa.T @ Xa) * scale

    def one(p, lam, gbar):
        hvp = lambda v: jax.jvp(lambda q: grad_J(spec, q, lam, batch), (p,), (v,))[1]  # noqa: E731
        s = obj.scores(p, X)
        cbar = jnp.mean(obj.record.curvature_at(s)) if obj.record.curvature_at is not None else obj.record.curvature
        c = strengths(spec, lam, X.shape[1], X.dtype)
        chol = jnp.linalg.cholesky(cbar * G + jnp.diag(c) + 1e-12 * jnp.trace(G) / G.shape[0] * jnp.eye(G.shape[0]))

        def precond(v):
            z = jax.scipy.linalg.cho_solve((chol, True), _stack(v))
            return {"W": z[:X.shape[1]], **({"b": z[X.shape[1]]} if "b" in v else {})}

        v, _ = cg(hvp, gbar, M=precond, tol=spec.cg_tol, maxiter=spec.cg_maxiter)
        r = tree.sub(hvp(v), gbar)
        rel = jnp.sqrt(tree.vdot(r, r) / jnp.maximum(tree.vdot(gbar, gbar), jnp.finfo(X.dtype).tiny))
        _, pull = jax.vjp(lambda l_: grad_J(spec, p, l_, batch), lam)
        return -pull(v)[0], rel

    return jax.vmap(one)(params, lambdas, cotangent)


def grad_J(spec, params, lam, batch):
    """∇_θ J(θ; λ) (a params pytree)."""
    return jax.grad(lambda q: objective_value(spec, q, lam, batch))(params)


def l2_path(objective: Objective, batch: Batch, lambdas, *, groups=None, tol: Optional[float] = None,
            max_iter: int = 1000, cg_tol: float = 1e-10, cg_maxiter: Optional[int] = None, init=None):
    """θ*(λ) for every λ of ``lambdas`` ((L,), or (L, n_groups) with ``groups`` (d,) ints),
    params with a leading (L,) axis, differentiable in ``lambdas`` by the implicit function
    theorem (module docstring). ``tol``, ``max_iter``: :func:`jaxreg.solvers.solve_l2_path`'s
    (default tol: 1e-8 float64, 1e-5 float32); ``init``: a warm start (params with a leading
    (L,) axis, not differentiated); ``cg_tol``, ``cg_maxiter``: the implicit solves'. Raises ValueError naming ``groups`` / ``lambdas``
    (shapes, a grouped penalty with a penalised intercept, λ ≤ 0 for groups)."""
    spec, batch = _spec(objective, batch, lambdas, groups, tol, max_iter, cg_tol, cg_maxiter)

    dtype = batch.X.dtype

    @jax.custom_vjp
    def path(lam):
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), solve_path(spec, batch, lam, init).params)

    def fwd(lam):
        params = path(lam)
        return params, (params, lam)

    def bwd(res, gbar):
        params, lam = res
        return (implicit_vjp(spec, batch, params, lam, gbar)[0],)

    path.defvjp(fwd, bwd)
    return path(jnp.asarray(lambdas, dtype))


def _spec(objective, batch, lambdas, groups, tol, max_iter, cg_tol, cg_maxiter):
    if not isinstance(batch, Batch):
        raise ValueError("batch must be a Batch(X, y)")
    d = np.shape(batch.X)[1]
    lam_shape = np.shape(lambdas)
    if groups is None:
        if len(lam_shape) != 1:
            raise ValueError(f"lambdas must have shape (L,) without groups, got {lam_shape}")
    else:
        g = np.asarray(groups)
        if g.shape != (d,) or not np.issubdtype(g.dtype, np.integer) or g.min() < 0:
            raise ValueError(f"groups must be ({d},) non-negative ints (a group per feature), got {g.shape} {g.dtype}")
        if len(lam_shape) != 2 or lam_shape[1] != g.max() + 1:
            raise ValueError(f"lambdas must have shape (L, {g.max() + 1}) with groups, got {lam_shape}")
        if objective.fit_intercept and objective.penalize_intercept:
            raise ValueError("groups need an unpenalised intercept (penalize_intercept=False)")
        groups = tuple(int(x) for x in g)
    solver = tuple(sorted({"tol": tol, "max_iter": max_iter}.items()))
    dtype = jnp.asarray(batch.X).dtype
    return PathSpec(objective, groups, solver, float(cg_tol), cg_maxiter), Batch(jnp.asarray(batch.X, dtype),
                                                                                  jnp.asarray(batch.y))


def holdout_loss(objective: Objective, params, batch: Batch):
    """(L,) mean per-example hold-out loss at each path point's params (L, ...)."""
    return jax.vmap(lambda p: jnp.mean(objective.per_example_loss(p, batch)))(params)


def path_hypergrad(objective: Objective, data, lambdas, **kw):
    """(hold-out loss (L,), d loss / d log λ (L,) or (L, n_groups)) at every λ of the path, by
    ``jax.value_and_grad`` through :func:`l2_path` (one solve, one batched implicit solve)."""
    log_lam = jnp.log(jnp.asarray(lambdas, data.train.X.dtype))

    def total(u):
        losses = holdout_loss(objective, l2_path(objective, data.train, jnp.exp(u), **kw), data.holdout)
        return jnp.sum(losses), losses

    (_, losses), g = jax.value_and_grad(total, has_aux=True)(log_lam)
    return np.asarray(losses), np.asarray(g)
