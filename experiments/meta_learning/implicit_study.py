"""The batched implicit λ study of ``experiments/meta_lr.py``: the implicit hypergradient of a
converged L2 path checked against the unrolled derivative of long converged training runs,
then used to meta-learn λ (one, or one per feature group) against a λ grid.

* :func:`unrolled_check`: d L_val / d log λ at every λ of a path by :func:`path_hypergrad`
  (one solve, one batched implicit solve) and by forward mode through ``horizon`` full-batch
  Nesterov updates of the jaxreg trainer (η = 1/(L + max λ), L the loss's curvature bound times
  the largest eigenvalue of X̃ᵀX̃/n, max λ the penalty's curvature), all λ in one vmapped
  program; their relative differences.
* :func:`lambda_grid`: the hold-out and test losses of a λ path (one solve).
* :func:`meta_lambda`: Adam on log λ (shape (1,) or (n_groups,)), each step a warm-started
  solve and the implicit hypergradient, from ``start``.

Features are centred with the training mean (:func:`centred`): with an unpenalised intercept
this is an exact reparametrisation (the same W, the same predictions and losses), and it lowers
the curvature bound ~10x, so the unrolled reference converges in thousands of updates.
"""
from __future__ import annotations

import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.benchmarks.timing import Timer
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.meta.hypergrad import grid_hypergrad
from jaxreg.meta.implicit import float64, holdout_loss, l2_path, path_hypergrad
from jaxreg.meta.unrolled import make_val_loss
from jaxreg.objective import Batch, Objective


def centred(data: TrainData) -> TrainData:
    """Every set's features minus the training mean."""
    mu = jnp.mean(data.train.X, axis=0)
    return TrainData(*(None if b is None else Batch(b.X - mu, b.y) for b in data))


def smoothness(objective: Objective, X) -> float:
    """L = curvature bound · λ_max(X̃ᵀX̃ · scale) (X̃ = [X, 1] with an intercept): the gradient's
    Lipschitz constant without the penalty."""
    X = np.asarray(X, np.float64)
    Xa = np.concatenate([X, np.ones((len(X), 1))], 1) if objective.fit_intercept else X
    scale = 1.0 / len(X) if objective.reduction == "mean" else 1.0
    return float(objective.record.curvature * np.linalg.eigvalsh(Xa.T @ Xa * scale)[-1])


def unrolled_check(objective: Objective, data: TrainData, lambdas, *, horizon: int, momentum: float,
                   tol: float = 1e-10) -> dict:
    """Implicit vs unrolled d L_val / d log λ at every λ of ``lambdas`` (module docstring)."""
    lambdas = np.asarray(lambdas, np.float64)
    path_hypergrad(objective, data, lambdas, tol=tol)  # compile apart
    t = time.process_time()
    loss_i, g_i = path_hypergrad(objective, data, lambdas, tol=tol)
    cpu_i = time.process_time() - t
    L = smoothness(objective, data.train.X) + float(lambdas.max())  # the penalty ½λ‖W‖² adds λ
    cfg = TrainConfig(method="full_batch", optimizer="nesterov")
    vl = make_val_loss(objective, cfg, data, None, 0, horizon=horizon, hyper_names=("log_l2",),
                       base=Hyper(learning_rate=1.0 / L, extra={"momentum": momentum}))
    timer = Timer()  # compiles ahead, times the call
    out = grid_hypergrad(vl, np.log(lambdas)[:, None], "forward", runner=timer)
    cpu_u = timer.last["cpu_s"]
    g_u = np.asarray(out.grad, np.float64)[:, 0]
    rel = np.abs(g_i - g_u) / np.abs(g_u)
    return {"lambdas": lambdas.tolist(), "implicit_dloss_dloglam": g_i.tolist(), "unrolled_dloss_dloglam": g_u.tolist(),
            "implicit_holdout_loss": loss_i.tolist(), "unrolled_holdout_loss": np.asarray(out.loss).tolist(),
            "rel_err": rel.tolist(), "implicit_batched_max_rel_err": float(rel.max()), "horizon": int(horizon),
            "momentum": momentum, "learning_rate": 1.0 / L, "n_train": int(data.train.X.shape[0]),
            "cpu_s": {"implicit": cpu_i, "unrolled": cpu_u}}  # compilation excluded


def lambda_grid(objective: Objective, data: TrainData, lambdas, *, tol: Optional[float] = None) -> dict:
    """Hold-out and test loss at every λ of the path (one solve); the best on hold-out. CPU
    seconds include compilation (as :func:`meta_lambda`'s)."""
    t = time.process_time()
    params = l2_path(objective, data.train, np.asarray(lambdas, np.float64), tol=tol)
    hold = np.asarray(holdout_loss(objective, params, data.holdout))
    test = np.asarray(holdout_loss(objective, params, data.test)) if data.test is not None else None
    best = int(np.argmin(hold))
    return {"lambdas": np.asarray(lambdas).tolist(), "holdout_loss": hold.tolist(),
            "test_loss": None if test is None else test.tolist(), "best_lambda": float(np.asarray(lambdas)[best]),
            "best_holdout_loss": float(hold[best]), "best_test_loss": None if test is None else float(test[best]),
            "cpu_s": time.process_time() - t}


def meta_lambda(objective: Objective, data: TrainData, start, *, n_steps: int, learning_rate: float,
                groups=None, tol: Optional[float] = None, cg_tol: float = 1e-10) -> dict:
    """Adam(``learning_rate``) on u = log λ from ``start`` (a float: one λ; with ``groups`` (d,),
    one value per group), ``n_steps`` steps; each step solves (warm-started from the previous
    solution) and takes the implicit hypergradient (CG to ``cg_tol``). Returns the trace and the
    best hold-out point with its test loss."""
    n_groups = None if groups is None else int(np.max(groups)) + 1
    u = np.full(n_groups or 1, np.log(start), np.float64)
    tx = optax.adam(learning_rate)
    state, init, trace = tx.init(u), None, {"lambda": [], "holdout_loss": [], "test_loss": [], "grad_norm": []}
    t = time.process_time()
    for _ in range(n_steps):
        def f(v):
            lam = jnp.exp(v)[None] if groups is not None else jnp.exp(v)
            params = l2_path(objective, data.train, lam, groups=groups, tol=tol, init=init, cg_tol=cg_tol)
            return holdout_loss(objective, params, data.holdout)[0], params

        (loss, params), g = jax.value_and_grad(f, has_aux=True)(jnp.asarray(u))
        init = jax.tree_util.tree_map(np.asarray, params)
        test = float(holdout_loss(objective, params, data.test)[0]) if data.test is not None else None
        for k, v in (("lambda", np.exp(u).tolist()), ("holdout_loss", float(loss)), ("test_loss", test),
                     ("grad_norm", float(jnp.linalg.norm(g)))):
            trace[k].append(v)
        updates, state = tx.update(np.asarray(g), state)
        u = u + np.asarray(updates)
    best = int(np.argmin(trace["holdout_loss"]))
    return {"start": start, "n_steps": n_steps, "learning_rate": learning_rate, "n_hyper": len(u),
            "trace": trace, "best_lambda": trace["lambda"][best], "best_holdout_loss": trace["holdout_loss"][best],
            "best_test_loss": trace["test_loss"][best], "cpu_s": time.process_time() - t}


def row_groups(side: int = 28) -> np.ndarray:
    """One group per image row: pixel j of a side × side image is in group j // side."""
    return np.arange(side * side) // side


def study(split, *, check_n_train: int, check_n_holdout: Optional[int], check_lambdas, check_horizon: int,
          check_momentum: float, n_train: int, grid, start: float, n_steps: int, group_steps: int, outer_lr: float,
          cg_tol: float) -> dict:
    """The study of ``experiments/meta_lr.py`` on a :class:`jaxreg.data.Split` (the softmax split:
    its first column, the bias pixel, dropped; an intercept instead), in float64: the
    :func:`unrolled_check` on the first ``check_n_train`` / ``check_n_holdout`` images, then on
    the first ``n_train`` training images (all hold-out and test images) the λ grid ``grid``
    (lo, hi, n) against :func:`meta_lambda` from ``start`` with one λ (``n_steps``) and one per
    image row (``group_steps``; 0: skipped)."""
    with float64():
        obj = Objective("softmax", n_classes=10)
        mk = lambda X, y, n=None: Batch(jnp.asarray(X[:n, 1:], jnp.float64), jnp.asarray(y[:n], jnp.int32))  # noqa: E731
        check = centred(TrainData(mk(split.X_train, split.y_train, check_n_train),
                                  mk(split.X_holdout, split.y_holdout, check_n_holdout)))
        rec = {"check": unrolled_check(obj, check, check_lambdas, horizon=check_horizon, momentum=check_momentum)}
        td = centred(TrainData(mk(split.X_train, split.y_train, n_train), mk(split.X_holdout, split.y_holdout),
                               mk(split.X_test, split.y_test)))
        rec["grid"] = lambda_grid(obj, td, np.exp(np.linspace(np.log(grid[0]), np.log(grid[1]), int(grid[2]))))
        rec["meta_one"] = meta_lambda(obj, td, start, n_steps=n_steps, learning_rate=outer_lr, cg_tol=cg_tol)
        if group_steps:
            rec["meta_rows"] = meta_lambda(obj, td, start, n_steps=group_steps, learning_rate=outer_lr,
                                           groups=row_groups(), cg_tol=cg_tol)
    rec["implicit_batched_max_rel_err"] = rec["check"]["implicit_batched_max_rel_err"]
    return rec
