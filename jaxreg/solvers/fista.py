"""Batched FISTA for L1 (and elastic-net) paths: every λ₁ of a grid in one jitted program
(``vmap`` of a ``lax.while_loop``; see :mod:`jaxreg.solvers`)."""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import validation
from jaxreg.exported import cached_program
from jaxreg.tree import to_device
from jaxreg.objective import Batch, Objective
from jaxreg.solvers._common import (SolverResult, check_lambdas, freeze, lane_loop, loss_grad, loss_value, prepare, result,
                                   rows_weighted, vdot)

__all__ = ["LOSS_FIELDS", "solve_l1_path"]

# What this solver reads from a loss record (besides value and residual, and smooth=True): the
# curvature bound c on ℓ''(s), for its metric c·X̃ᵀX̃/n.
LOSS_FIELDS = ("curvature",)


def _fista(obj, data, dg, t0, tol, step_growth):
    """(init, step, finish, restart) of FISTA in the metric D = diag(dg) + λ₂ for one member
    (the caller vmaps); (λ₁, λ₂) are part of the state so a lane can move on to its next pair."""
    eps = jnp.finfo(dg.dtype).eps

    def smooth(s, th, lam2):
        return loss_value(obj, data, s) + 0.5 * vdot(lam2 * data.mask * th, th)

    def step(st):  # one prox-gradient trial from y; on acceptance, extrapolate to the next y
        x, sx, y, sy, t, mom = st["x"], st["sx"], st["y"], st["sy"], st["t"], st["mom"]
        pen2, thr = st["l2"] * data.mask, st["l1"] * data.mask
        D = dg + pen2
        z = y - t * st["gy"] / D
        xp = z - jnp.clip(z, -t * thr / D, t * thr / D)  # soft-thresholding (penalised rows)
        sp = data.Xa @ xp
        fp, diff = smooth(sp, xp, st["l2"]), xp - y
        ok = jnp.isfinite(fp) & (fp <= st["fy"] + vdot(st["gy"], diff) + vdot(diff * D, diff) / (2 * t)
                                 + 10 * eps * jnp.abs(st["fy"]))
        meas = jnp.max(jnp.abs(diff * D)) / t
        restart = vdot(-diff * D, xp - x) > 0  # momentum points uphill (O'Donoghue–Candès)
        mom_n = jnp.where(restart, 1.0, 0.5 * (1 + jnp.sqrt(1 + 4 * mom * mom)))
        beta = jnp.where(restart, 0.0, (mom - 1) / mom_n)
        yn, syn = xp + beta * (xp - x), sp + beta * (sp - sx)
        gyn = loss_grad(obj, data, syn) + pen2 * yn
        fyn = smooth(syn, yn, st["l2"])
        finite = jnp.isfinite(fyn) & jnp.all(jnp.isfinite(gyn))
        acc = ok & finite
        sel = lambda a, b: jnp.where(acc, a, b)
        new = dict(x=sel(xp, x), sx=sel(sp, sx), y=sel(yn, y), sy=sel(syn, sy), fy=sel(fyn, st["fy"]),
                   gy=sel(gyn, st["gy"]), t=jnp.where(acc, t * step_growth, 0.5 * t),
                   mom=sel(mom_n, mom), k=st["k"] + 1, meas=sel(meas, st["meas"]),
                   done=(acc & (meas <= tol)) | (ok & ~finite) | (t < 1e-12 * t0), l1=st["l1"], l2=st["l2"])
        return freeze(st["done"], st, new)

    def fresh(x, sx, fy, gy, t, lam):
        return dict(x=x, sx=sx, y=x, sy=sx, fy=fy, gy=gy, t=t, mom=jnp.ones((), x.dtype), k=jnp.int32(0),
                    meas=jnp.full((), jnp.inf, x.dtype), done=jnp.zeros((), bool), l1=lam[0], l2=lam[1])

    def init(theta0, lam):
        s0 = data.Xa @ theta0
        return fresh(theta0, s0, smooth(s0, theta0, lam[1]),
                     loss_grad(obj, data, s0) + lam[1] * data.mask * theta0, jnp.asarray(t0, theta0.dtype), lam)

    def finish(x, lam, meas):
        return smooth(data.Xa @ x, x, lam[1]) + vdot(lam[0] * data.mask, jnp.abs(x)), meas

    def restart(st, lam):
        """Move to (λ₁, λ₂) = lam from the extrapolated point y (its scores and gradient are known, so
        no product with X̃ is needed; at convergence y ≈ x): J and ∇J shift by the change of λ₂."""
        dpen = (lam[1] - st["l2"]) * data.mask
        y = st["y"]
        return fresh(y, st["sy"], st["fy"] + 0.5 * vdot(dpen * y, y), st["gy"] + dpen * y, st["t"], lam)

    return init, step, finish, restart


def _fista_one(obj, data, dg, t0, lam1, lam2, theta0, tol, max_iter, step_growth):
    """FISTA for one (λ₁, λ₂) (the caller vmaps)."""
    init, step, finish, _ = _fista(obj, data, dg, t0, tol, step_growth)
    st = lax.while_loop(lambda st: ~st["done"] & (st["k"] < max_iter), step, init(theta0, (lam1, lam2)))
    value, meas = finish(st["x"], (lam1, lam2), st["meas"])
    return st["x"], value, st["k"], meas <= tol, meas


def _fista_lane(obj, data, dg, t0, lam1, lam2, theta0, tol, max_iter, step_growth):
    """One lane of (λ₁, λ₂) pairs (T,) solved in turn, each warm-started (see lbfgs._lbfgs_lane)."""
    return lane_loop(_fista(obj, data, dg, t0, tol, step_growth), (lam1, lam2), theta0, max_iter, tol, key="x")


def _l1_path_program(obj, data, lam1, lam2, theta0, tol, max_iter, step_growth, precondition):
    c = obj.record.curvature * data.gram_scale  # the metric of the batch's weights g (module docstring)
    sq = data.Xa * data.Xa
    colsq = jnp.sum(sq, axis=0) if data.gram_w is None else data.gram_w @ sq
    dg = c * colsq if precondition else jnp.full(data.Xa.shape[1], c)
    dg = jnp.maximum(dg, 1e-8 * jnp.max(dg))
    op = lambda v: (data.XaT @ rows_weighted(data, data.Xa @ (v / jnp.sqrt(dg)))) / jnp.sqrt(dg)
    v = lax.fori_loop(0, 50, lambda _, v: op(v) / jnp.linalg.norm(op(v)), jnp.ones_like(dg))
    t0 = 1.0 / jnp.maximum(1.01 * c * vdot(v, op(v)), 1.0)  # 1/λ_max(D^-½ ∇²f D^-½) (λ₂ = 0)
    dg = dg[:, None] if data.mask.ndim == 2 else dg
    run = _fista_one if lam1.ndim == 1 else _fista_lane
    one = lambda l1, l2, th, dm: run(obj, dm, dg, t0, l1, l2, th, tol, max_iter, step_growth)
    return jax.vmap(one, in_axes=(0, 0, 0, data.member_axes))(lam1, lam2, theta0, data)


_l1_path = cached_program(_l1_path_program, static_argnames=("obj", "precondition"))  # jit, traced once per machine


def solve_l1_path(objective: Objective, batch: Batch, lambdas, *, l2=0.0, tol: float | None = None,
                  max_iter: int = 20000, init=None, step_growth: float = 1.05,
                  precondition: bool = True, dtype=None, member_weights=None) -> SolverResult:
    """Minimise ``reduce_n ℓ + (λ₂/2)‖W‖² + λ₁‖W‖₁`` for every λ₁ of ``lambdas`` (L,).

    FISTA (module docstring) until the prox-gradient mapping has ``‖G‖∞ ≤ tol`` (default 1e-7;
    1e-5 in float32) or ``max_iter``. ``l2``: λ₂ ≥ 0, a scalar or one per λ₁ (elastic net).
    ``precondition``: the Jacobi metric D (else D = cI). ``init``, ``dtype``, ``batch.weight``,
    ``member_weights``: as in :func:`solve_l2_path`.
    """
    data, lam, theta, max_iter, d, dtype, tol = prepare(objective, batch, lambdas, tol, 1e-7, max_iter,
                                                         init, dtype, member_weights, solver="solve_l1_path",
                                                         loss_fields=LOSS_FIELDS)
    if np.size(l2) != 1 and np.shape(l2) != lam.shape:
        raise ValueError(f"l2 must be a scalar or have the shape of lambdas {lam.shape}, got {l2!r}")
    l2 = np.asarray(l2, np.float64)
    l2 = check_lambdas(np.broadcast_to(l2.reshape(()) if l2.size == 1 else l2, lam.shape), "l2")
    step_growth = validation.check_scalar(step_growth, "step_growth", low=1.0)
    out = _l1_path(objective, data, lam, to_device(l2, dtype), theta, to_device(tol, dtype),
                   max_iter, to_device(step_growth, dtype), bool(precondition))
    return result(objective, d, *out, data=data, unpenalised=(np.asarray(lam) == 0) & (l2 == 0),
                  solver="solve_l1_path")
