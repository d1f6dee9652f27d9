"""Batched L-BFGS for L2 paths: every λ₂ of a grid in one jitted program (``vmap`` of a
``lax.while_loop``; see :mod:`jaxreg.solvers`)."""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import validation
from jaxreg.exported import cached_program
from jaxreg.tree import to_device
from jaxreg.objective import Batch, Objective
from jaxreg.solvers._common import (SolverResult, freeze, lane_loop, loss_grad, loss_value, mean_curvature, prepare,
                                   result, vdot)

__all__ = ["LOSS_FIELDS", "solve_l2_path"]

# What this solver reads from a loss record (besides value and residual, and smooth=True): the
# curvature bound c on ℓ''(s), for its metric c·X̃ᵀX̃/n.
LOSS_FIELDS = ("curvature",)


def _lbfgs(obj, data, V, evals, tol, memory, max_ls=30):
    """(init, step, finish) of L-BFGS for one member (the caller vmaps); λ₂ is part of the state
    (``st["lam"]``) so a lane can move on to its next λ (:func:`_lbfgs_lane`). V, evals:
    eigenpairs of the preconditioner metric, or None."""

    def precond(v, c, lam):  # M⁻¹ v = V diag(1/(cΛ + λ)) Vᵀ v
        if V is None:
            return v
        ev = evals if v.ndim == 1 else evals[:, None]
        return V @ ((V.T @ v) / (c * ev + lam + 1e-8 * obj.record.curvature * evals[-1]))

    def direction(st):  # d = −H g by the two-loop recursion, newest pair first
        idx = (st["head"] - 1 - jnp.arange(memory)) % memory

        def back(q, i):
            a = st["rho"][i] * vdot(st["S"][i], q)
            return q - a * st["Y"][i], a

        q, alpha = lax.scan(back, st["g"], idx)

        def fwd(r, ia):
            i, a = ia
            return r + (a - st["rho"][i] * vdot(st["Y"][i], r)) * st["S"][i], None

        return -lax.scan(fwd, st["gamma"] * precond(q, st["c"], st["lam"]), (idx[::-1], alpha[::-1]))[0]

    def step(st):
        theta, s, f, g, lam = st["theta"], st["s"], st["f"], st["g"], st["lam"]
        pen, eps = lam * data.mask, jnp.finfo(theta.dtype).eps
        d = direction(st)
        bad = ~(vdot(g, d) < 0)  # not a descent direction: use the preconditioned gradient
        d = jnp.where(bad, -precond(g, st["c"], lam), d)
        dphi0, q = vdot(g, d), data.Xa @ d
        a0, a1, a2 = 0.5 * vdot(pen * theta, theta), vdot(pen * theta, d), vdot(pen * d, d)
        phi = lambda t: loss_value(obj, data, s + t * q) + a0 + a1 * t + 0.5 * a2 * t * t
        armijo = lambda t, ft: ft <= f + 1e-4 * t * dphi0 + 10 * eps * jnp.abs(f)

        def ls_body(c):  # t ← t · argmin of the quadratic interpolant, clipped to [0.1, 0.5]
            ratio = -dphi0 * c[0] / (2 * (c[1] - f - dphi0 * c[0]))
            t = c[0] * jnp.where(jnp.isfinite(ratio), jnp.clip(ratio, 0.1, 0.5), 0.1)
            ft = phi(t)
            return t, ft, c[2] + 1, armijo(t, ft)

        f1 = phi(1.0)
        t, ft, _, ok = lax.while_loop(lambda c: ~c[3] & (c[2] < max_ls), ls_body,
                                      (jnp.ones_like(f), f1, 0, st["done"] | armijo(1.0, f1)))
        theta_n, s_n = theta + t * d, s + t * q
        g_n = loss_grad(obj, data, s_n) + pen * theta_n
        c_n = mean_curvature(obj, s_n, data.w)
        sk, yk = t * d, g_n - g
        sy, h = vdot(sk, yk), st["head"]
        good = ok & (sy > 1e-10 * jnp.sqrt(vdot(sk, sk) * vdot(yk, yk)))  # curvature pair
        finite = jnp.isfinite(ft) & jnp.all(jnp.isfinite(g_n))
        acc = ok & finite
        new = dict(
            theta=jnp.where(acc, theta_n, theta), s=jnp.where(acc, s_n, s), f=jnp.where(acc, ft, f),
            g=jnp.where(acc, g_n, g), c=jnp.where(acc, c_n, st["c"]),
            S=st["S"].at[h].set(jnp.where(good, sk, st["S"][h])),
            Y=st["Y"].at[h].set(jnp.where(good, yk, st["Y"][h])),
            rho=jnp.where(ok, st["rho"].at[h].set(jnp.where(good, 1 / sy, st["rho"][h])), 0.0),
            head=jnp.where(good, (h + 1) % memory, h),  # a failed line search resets memory
            gamma=jnp.where(good, sy / vdot(yk, precond(yk, c_n, lam)), jnp.where(ok, st["gamma"], 1.0)),
            k=st["k"] + 1, meas=jnp.where(acc, jnp.max(jnp.abs(g_n)), st["meas"]),
            fails=jnp.where(ok, 0, st["fails"] + 1), lam=lam)
        new["done"] = (new["meas"] <= tol) | ~finite | (new["fails"] >= 2)  # 2 failures: stalled
        return freeze(st["done"], st, new)

    def fresh(st, theta, s, f, g, lam):
        """A new L-BFGS run at θ (scores s, J f, ∇J g) for λ₂ = lam: empty memory, k = 0."""
        mem = jnp.zeros((memory,) + theta.shape, theta.dtype)
        meas = jnp.max(jnp.abs(g))
        return dict(theta=theta, s=s, f=f, g=g, c=st["c"], S=mem, Y=mem, rho=jnp.zeros(memory, theta.dtype),
                    head=jnp.int32(0), gamma=jnp.ones((), theta.dtype), k=jnp.int32(0), meas=meas,
                    fails=jnp.int32(0), lam=lam, done=meas <= tol)

    def init(theta0, lam):
        pen = lam * data.mask
        s0 = data.Xa @ theta0
        g0 = loss_grad(obj, data, s0) + pen * theta0
        f0 = loss_value(obj, data, s0) + 0.5 * vdot(pen * theta0, theta0)
        return fresh(dict(c=mean_curvature(obj, s0, data.w)), theta0, s0, f0, g0, lam)

    def finish(theta, lam, _meas=None):
        """(J, ‖∇J‖∞) at θ from scratch: the loop updates the scores incrementally."""
        pen = lam * data.mask
        s = data.Xa @ theta
        meas = jnp.max(jnp.abs(loss_grad(obj, data, s) + pen * theta))
        return loss_value(obj, data, s) + 0.5 * vdot(pen * theta, theta), meas

    def restart(st, lam):
        """The state moved to λ₂ = lam at the same θ (a warm start): J and ∇J shift by the change
        of the penalty alone, so no product with X̃ is needed."""
        dpen = (lam - st["lam"]) * data.mask
        return fresh(st, st["theta"], st["s"], st["f"] + 0.5 * vdot(dpen * st["theta"], st["theta"]),
                     st["g"] + dpen * st["theta"], lam)

    return init, step, finish, restart


def _lbfgs_one(obj, data, V, evals, lam, theta0, tol, max_iter, memory):
    """L-BFGS for one λ₂ (the caller vmaps)."""
    init, step, finish, _ = _lbfgs(obj, data, V, evals, tol, memory)
    st = lax.while_loop(lambda st: ~st["done"] & (st["k"] < max_iter), step, init(theta0, lam))
    value, meas = finish(st["theta"], lam)
    return st["theta"], value, st["k"], meas <= tol, meas


def _lbfgs_lane(obj, data, V, evals, lams, theta0, tol, max_iter, memory):
    """One lane: the λ₂ values ``lams`` (T,) solved one after the other, each warm-started from
    the previous solution, in ONE while_loop (so a vmap of lanes waits only for the slowest
    lane's total, not for the slowest λ of every round)."""
    return lane_loop(_lbfgs(obj, data, V, evals, tol, memory), lams, theta0, max_iter, tol)


def _l2_path_program(obj, data, lams, theta0, tol, max_iter, memory, precondition):
    V = evals = None
    if precondition:  # a preconditioner need not be exact: float32 eigh is ~5x faster
        f32 = jnp.float32
        XaT = data.XaT if data.gram_w is None else data.XaT * data.gram_w
        G = (XaT.astype(f32) @ data.Xa.astype(f32)) * data.gram_scale.astype(f32)
        evals, V = (a.astype(data.Xa.dtype) for a in jnp.linalg.eigh(G))
        evals = jnp.maximum(evals, 0.0)
    run = _lbfgs_one if lams.ndim == 1 else _lbfgs_lane
    one = lambda lam, th, dm: run(obj, dm, V, evals, lam, th, tol, max_iter, memory)
    return jax.vmap(one, in_axes=(0, 0, data.member_axes))(lams, theta0, data)


_l2_path = cached_program(_l2_path_program, static_argnames=("obj", "memory", "precondition"))  # jit, traced once per machine


def solve_l2_path(objective: Objective, batch: Batch, lambdas, *, tol: float | None = None,
                  max_iter: int = 1000, init=None, memory: int = 10, precondition=None,
                  dtype=None, member_weights=None) -> SolverResult:
    """Minimise ``reduce_n ℓ + (λ/2)‖W‖²`` for every λ of ``lambdas`` (L,), in one jitted program.

    Preconditioned L-BFGS (module docstring) until ``‖∇J‖∞ ≤ tol`` (default 1e-8; 1e-5 in
    float32) or ``max_iter``. ``init``: params like ``objective.init_params(d)``, optionally
    with a leading λ axis (default zeros). ``memory``: L-BFGS pairs m. ``precondition``: use
    ``M = c X̃ᵀX̃/n + λI`` (default: if d + 1 ≤ 4096). ``dtype``: arithmetic dtype (default:
    that of ``batch.X``; float32 is ~2x faster on CPU and can reach tol ≈ 1e-6).
    ``batch.weight`` (n,) weighs the data term (Σ w ℓ / Σ w); ``member_weights`` (L, n)
    multiplies it per member, e.g. cross-validation folds as 0/1 masks (all members share one
    preconditioner, from ``batch.weight``).
    """
    data, lam, theta, max_iter, d, dtype, tol = prepare(objective, batch, lambdas, tol, 1e-8, max_iter,
                                                         init, dtype, member_weights, solver="solve_l2_path",
                                                         loss_fields=LOSS_FIELDS)
    memory = validation.check_scalar(memory, "memory", low=1, integer=True)
    precondition = data.Xa.shape[1] <= 4096 if precondition is None else bool(precondition)
    out = _l2_path(objective, data, lam, theta, to_device(tol, dtype), max_iter, memory, precondition)
    return result(objective, d, *out, data=data, unpenalised=np.asarray(lam) == 0, solver="solve_l2_path")


