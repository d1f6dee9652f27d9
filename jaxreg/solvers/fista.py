"""Batched FISTA for L1 (and elastic-net) paths: every λ₁ of a grid in one jitted program
(``vmap`` of a ``lax.while_loop``; see :mod:`jaxreg.solvers`)."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import validation
from jaxreg.objective import Batch, Objective
from jaxreg.solvers.common import SolverResult, freeze, loss_grad, loss_value, prepare, result, rows_weighted, vdot


def _fista_one(obj, data, dg, t0, lam1, lam2, theta0, tol, max_iter, step_growth):
    """FISTA in the metric D = diag(dg) + λ₂ for one (λ₁, λ₂) (the caller vmaps)."""
    pen2, thr = lam2 * data.mask, lam1 * data.mask
    D, eps = dg + pen2, jnp.finfo(theta0.dtype).eps
    smooth = lambda s, th: loss_value(obj, data, s) + 0.5 * vdot(pen2 * th, th)

    def step(st):  # one prox-gradient trial from y; on acceptance, extrapolate to the next y
        x, sx, y, sy, t, mom = st["x"], st["sx"], st["y"], st["sy"], st["t"], st["mom"]
        z = y - t * st["gy"] / D
        xp = z - jnp.clip(z, -t * thr / D, t * thr / D)  # soft-thresholding (penalised rows)
        sp = data.Xa @ xp
        fp, diff = smooth(sp, xp), xp - y
        ok = jnp.isfinite(fp) & (fp <= st["fy"] + vdot(st["gy"], diff) + vdot(diff * D, diff) / (2 * t)
                                 + 10 * eps * jnp.abs(st["fy"]))
        meas = jnp.max(jnp.abs(diff * D)) / t
        restart = vdot(-diff * D, xp - x) > 0  # momentum points uphill (O'Donoghue–Candès)
        mom_n = jnp.where(restart, 1.0, 0.5 * (1 + jnp.sqrt(1 + 4 * mom * mom)))
        beta = jnp.where(restart, 0.0, (mom - 1) / mom_n)
        yn, syn = xp + beta * (xp - x), sp + beta * (sp - sx)
        gyn = loss_grad(obj, data, syn) + pen2 * yn
        fyn = smooth(syn, yn)
        finite = jnp.isfinite(fyn) & jnp.all(jnp.isfinite(gyn))
        acc = ok & finite
        sel = lambda a, b: jnp.where(acc, a, b)
        new = dict(x=sel(xp, x), sx=sel(sp, sx), y=sel(yn, y), sy=sel(syn, sy), fy=sel(fyn, st["fy"]),
                   gy=sel(gyn, st["gy"]), t=jnp.where(acc, t * step_growth, 0.5 * t),
                   mom=sel(mom_n, mom), k=st["k"] + 1, meas=sel(meas, st["meas"]),
                   done=(acc & (meas <= tol)) | (ok & ~finite) | (t < 1e-12 * t0))  # stalled
        return freeze(st["done"], st, new)

    s0 = data.Xa @ theta0
    st = dict(x=theta0, sx=s0, y=theta0, sy=s0, fy=smooth(s0, theta0),
              gy=loss_grad(obj, data, s0) + pen2 * theta0, t=jnp.asarray(t0, theta0.dtype),
              mom=jnp.ones((), theta0.dtype), k=jnp.int32(0), meas=jnp.full((), jnp.inf, theta0.dtype),
              done=jnp.zeros((), bool))
    st = lax.while_loop(lambda st: ~st["done"] & (st["k"] < max_iter), step, st)
    x = st["x"]
    value = smooth(data.Xa @ x, x) + vdot(thr, jnp.abs(x))
    return x, value, st["k"], st["meas"] <= tol, st["meas"]


@partial(jax.jit, static_argnames=("obj", "precondition"))
def _l1_path(obj, data, lam1, lam2, theta0, tol, max_iter, step_growth, precondition):
    c = obj.record.curvature * data.gram_scale  # the metric of the batch's weights g (module docstring)
    sq = data.Xa * data.Xa
    colsq = jnp.sum(sq, axis=0) if data.gram_w is None else data.gram_w @ sq
    dg = c * colsq if precondition else jnp.full(data.Xa.shape[1], c)
    dg = jnp.maximum(dg, 1e-8 * jnp.max(dg))
    op = lambda v: (data.XaT @ rows_weighted(data, data.Xa @ (v / jnp.sqrt(dg)))) / jnp.sqrt(dg)
    v = lax.fori_loop(0, 50, lambda _, v: op(v) / jnp.linalg.norm(op(v)), jnp.ones_like(dg))
    t0 = 1.0 / jnp.maximum(1.01 * c * vdot(v, op(v)), 1.0)  # 1/λ_max(D^-½ ∇²f D^-½) (λ₂ = 0)
    dg = dg[:, None] if data.mask.ndim == 2 else dg
    one = lambda l1, l2, th, dm: _fista_one(obj, dm, dg, t0, l1, l2, th, tol, max_iter, step_growth)
    return jax.vmap(one, in_axes=(0, 0, 0, data.member_axes))(lam1, lam2, theta0, data)


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
                                                         init, dtype, member_weights)
    if np.ndim(l2) > 1 or np.size(l2) not in (1, lam.size):
        raise ValueError(f"l2 must be a scalar or have one entry per lambda ({lam.size}), got {l2!r}")
    l2 = validation.check_values(np.broadcast_to(np.ravel(l2), lam.shape), "l2", low=0.0)
    step_growth = validation.check_scalar(step_growth, "step_growth", low=1.0)
    out = _l1_path(objective, data, lam, jnp.asarray(l2, dtype), theta, jnp.asarray(tol, dtype),
                   max_iter, jnp.asarray(step_growth, dtype), bool(precondition))
    return result(objective, d, *out)
