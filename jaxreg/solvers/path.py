"""Regularisation paths: λ_max from the data, glmnet's λ grid, elastic net, warm-started blocks.

Penalty (glmnet's, with α = ``l1_ratio`` = scikit-learn's): ``λ (α‖W‖₁ + (1 − α)/2 ‖W‖²)``, i.e.
``(λ₁, λ₂) = (α λ, (1 − α) λ)`` (:func:`jaxreg.objective.elastic_net`).

* :func:`lambda_max`: the smallest λ at which every penalised weight is zero. At W = 0 with the
  unpenalised intercept at its optimum b* (the scores are then the constant b*, and b* makes the
  weighted mean of the link equal the weighted mean of the targets: b* = ȳ, logit ȳ, or log p̄_k),
  the optimality condition of W = 0 is ``|∇_W f(0, b*)|_j ≤ α λ`` for every j, so
  ``λ_max = max_j |∇_W f(0, b*)|_j / α`` (α floored at 1e-3 as glmnet does, so ridge has a finite
  start). Without an intercept, or with a penalised one, the start is θ = 0.
* :func:`lambda_path`: ``n_lambdas`` values log-spaced from λ_max down to
  ``lambda_min_ratio · λ_max``; glmnet's defaults: 100 values, ratio 1e-4 when n ≥ d, else 1e-2.
* :func:`solve_members`: any list of members ``(λ₁, λ₂[, weights])`` in one call: members with
  λ₁ = 0 by batched L-BFGS, the others by batched FISTA (elastic net when λ₂ > 0), each a single
  ``vmap`` program.
* :func:`solve_path`: a path (× optional per-member weights, e.g. folds) in **warm-started
  lanes**: the L values (largest first) are cut into B contiguous blocks; each block is one
  *lane* that solves its λ values in turn inside ONE ``while_loop``, each warm-started from the
  previous solution (a converged member moves on to its next λ instead of idling). All lanes
  of all weight rows are one vmapped program. A vmapped ``while_loop`` runs until its slowest
  member stops (a known property of vmapped while loops in JAX): with one λ per member (B = L, the cold parallel solve) every
  member waits for the slowest λ; with lanes, a lane waits only for the slowest lane's total.
  :func:`straggler_fraction` measures the share of member-iterations spent frozen.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import validation, weights
from jaxreg.objective import Batch, Objective, Penalty
from jaxreg.solvers._common import SolverResult
from jaxreg.solvers.fista import solve_l1_path
from jaxreg.solvers.lbfgs import solve_l2_path

__all__ = ["ALPHA_FLOOR", "check_l1_ratio", "intercept_only", "lambda_max", "default_min_ratio", "lambda_path",
           "solve_members", "PathResult", "lanes", "solve_grid", "solve_path", "straggler_fraction"]

ALPHA_FLOOR = 1e-3  # glmnet: lambda_max for alpha < 1e-3 is computed at alpha = 1e-3


def check_l1_ratio(l1_ratio, name: str = "l1_ratio") -> float:
    """α in [0, 1] as a float; ValueError naming ``name`` otherwise."""
    return validation.check_scalar(l1_ratio, name, low=0.0, high=1.0)


def intercept_only(objective: Objective, y, weight=None, dtype=np.float64) -> dict:
    """The parameters W = 0, b = b* (the optimal unpenalised intercept; b = 0 without an
    intercept or when it is penalised): b* = ȳ (real targets), logit ȳ (0/1), log p̄_k (classes),
    weighted means with ``weight``. ValueError naming ``y`` when b* is infinite (a class absent)."""
    y = np.asarray(y)
    w = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
    C = objective.n_classes
    W = np.zeros((0, C) if objective.is_multiclass else (0,))
    if not objective.fit_intercept or objective.penalize_intercept:
        return {"W": W, **({"b": np.zeros(W.shape[1:])} if objective.fit_intercept else {})}
    kind = objective.record.target
    if kind == "class":
        p = np.bincount(y.astype(int), weights=w, minlength=C) / w.sum()
    else:
        p = np.asarray(np.sum(w * y) / w.sum())
    absent = kind != "real" and (np.any(p <= 0) or (kind == "binary" and p >= 1))
    if absent:
        raise ValueError("y: every class must carry positive weight for the intercept-only fit "
                         f"(class frequencies {np.round(np.atleast_1d(p), 4).tolist()})")
    b = {"real": lambda: p, "binary": lambda: np.log(p / (1 - p)), "class": lambda: np.log(p)}[kind]()
    return {"W": W, "b": np.asarray(b, dtype)}


def lambda_max(objective: Objective, batch: Batch, l1_ratio=1.0) -> float:
    """The smallest λ with every penalised weight zero at the optimum of
    ``f + λ(α‖W‖₁ + (1 − α)/2‖W‖²)`` (module docstring), in float64 from ``batch`` (X, y[, weight])."""
    alpha = check_l1_ratio(l1_ratio)
    X, y = validation.check_batch(batch.X, batch.y, objective, names=("batch.X", "batch.y"))
    w = getattr(batch, "weight", None)
    w = None if w is None else weights.check_sample_weight(w, X.shape[0], "batch.weight")
    theta0 = intercept_only(objective, y, w)
    shapes = objective.param_shapes(X.shape[1])
    params = {"W": np.zeros(shapes["W"]), **({"b": theta0["b"]} if "b" in shapes else {})}
    with jax.enable_x64(True):
        grad = objective.grad({k: jnp.asarray(v, jnp.float64) for k, v in params.items()}, Penalty(),
                              Batch(jnp.asarray(X, jnp.float64), jnp.asarray(y), None if w is None else jnp.asarray(w)))
        pen = objective.penalized_part(grad)
        g = max(float(jnp.max(jnp.abs(v))) for v in jax.tree_util.tree_leaves(pen))
    return g / max(alpha, ALPHA_FLOOR)


def default_min_ratio(n_samples: int, n_features: int) -> float:
    """glmnet's ``lambda.min.ratio``: 1e-4 when n ≥ d, else 1e-2."""
    return 1e-4 if n_samples >= n_features else 1e-2


def lambda_path(objective: Objective, batch: Batch, n_lambdas: int = 100, lambda_min_ratio: Optional[float] = None,
                l1_ratio=1.0) -> np.ndarray:
    """(n_lambdas,) values from :func:`lambda_max` down to ``lambda_min_ratio · lambda_max``,
    log-spaced (decreasing); ``lambda_min_ratio`` default :func:`default_min_ratio`."""
    n_lambdas = validation.check_scalar(n_lambdas, "n_lambdas", low=1, integer=True)
    n, d = np.shape(batch.X)
    ratio = default_min_ratio(n, d) if lambda_min_ratio is None else lambda_min_ratio
    ratio = validation.check_scalar(ratio, "lambda_min_ratio", low=0.0, high=1.0, low_inclusive=False)
    top = lambda_max(objective, batch, l1_ratio)
    return top * ratio ** (np.arange(n_lambdas) / max(n_lambdas - 1, 1))


def solve_members(objective: Objective, batch: Batch, l1, l2, *, member_weights=None, init=None,
                  tol: Optional[float] = None, max_iter: Optional[int] = None, dtype=None) -> SolverResult:
    """Solve G members with penalties ``(λ₁, λ₂)`` = ``(l1[g], l2[g])`` (and weights
    ``member_weights[g]`` times ``batch.weight``) in one call: members with λ₁ = 0 by L-BFGS,
    the others by FISTA, one vmapped program each. ``l1``, ``l2`` of shape (G, T) make each
    member a *lane* of T tasks solved in turn, each warm-started from the previous one
    (results (G, T, ...)). ``init``: params with a leading (G,) axis (warm starts) or None
    (zeros). Results in member order (NumPy)."""
    l1, l2 = np.asarray(l1, np.float64), np.asarray(l2, np.float64)
    l2 = np.broadcast_to(l2, l1.shape) if l2.ndim == 0 else l2
    if l1.ndim not in (1, 2) or l1.shape != l2.shape:
        raise ValueError(f"l1 and l2 must have one entry per member (G,) or per member and task (G, T) alike, "
                         f"got shapes {l1.shape} and {l2.shape}")
    smooth = np.all(l1.reshape(len(l1), -1) == 0, axis=1)
    parts, order = [], []
    for idx, kind in ((np.flatnonzero(smooth), "l2"), (np.flatnonzero(~smooth), "l1")):
        if idx.size == 0:
            continue
        sub = lambda a: None if a is None else np.asarray(a)[idx]  # noqa: E731
        kw = dict(tol=tol, dtype=dtype, member_weights=sub(member_weights),
                  init=None if init is None else jax.tree_util.tree_map(sub, init))
        if max_iter is not None:
            kw["max_iter"] = max_iter
        if kind == "l2":
            res = solve_l2_path(objective, batch, l2[idx], **kw)
        else:
            res = solve_l1_path(objective, batch, l1[idx], l2=l2[idx], **kw)
        parts.append(jax.tree_util.tree_map(np.asarray, res))
        order.append(idx)
    inverse = np.argsort(np.concatenate(order), kind="stable")
    return jax.tree_util.tree_map(lambda *a: np.concatenate(a)[inverse], *parts)


class PathResult(NamedTuple):
    """lambdas (L,) as given (default decreasing); l1_ratio α; result: a :class:`SolverResult`
    whose leaves have the leading axes ``(M, L)`` (M weight rows, e.g. folds; M = 1 without
    ``member_weights``); n_blocks: lanes per weight row."""

    lambdas: np.ndarray
    l1_ratio: float
    result: SolverResult
    n_blocks: int


def lanes(lambdas, n_blocks: int):
    """(order, tasks): the path positions sorted by decreasing λ, cut into ``n_blocks`` contiguous
    lanes of T = ⌈L/B⌉ tasks each ((B, T) indices into ``lambdas``, the last lane padded by
    repeating its last λ)."""
    order = np.argsort(-np.asarray(lambdas), kind="stable")
    T = -(-order.size // n_blocks)
    pos = np.minimum(np.arange(n_blocks * T), order.size - 1).reshape(n_blocks, T)
    return order, order[pos]


def solve_grid(objective: Objective, batch: Batch, lambdas, l1_ratios=(1.0,), *, member_weights=None,
               n_blocks: int = 1, tol: Optional[float] = None, max_iter: Optional[int] = None,
               dtype=None) -> SolverResult:
    """Every (row m, α, λ) of a grid in one call: ``lambdas`` (L,) shared or (M, L) per weight
    row (e.g. scikit-learn's C scaled by each fold's Σ w), ``l1_ratios`` (A,), weight rows
    ``member_weights`` (M, n) (None: one row, the batch's weights). Each (m, α) path is cut into
    ``n_blocks`` warm-started lanes (module docstring; the order of row 0's λ, largest first).
    Returns a :class:`SolverResult` whose leaves lead with (M, A, L)."""
    ratios = np.asarray([check_l1_ratio(a, f"l1_ratios[{i}]") for i, a in enumerate(np.ravel(l1_ratios))])
    n = np.shape(batch.X)[0]
    mw = None if member_weights is None else np.asarray(member_weights, np.float64)
    if mw is not None and (mw.ndim != 2 or mw.shape[1] != n):
        raise ValueError(f"member_weights must have shape (M, {n}), got {mw.shape}")
    M = 1 if mw is None else mw.shape[0]
    lam = np.asarray(lambdas, np.float64)
    lam = np.broadcast_to(lam, (M, lam.size)) if lam.ndim == 1 else lam
    if lam.shape[0] != M:
        raise ValueError(f"lambdas must have shape (L,) or ({M}, L), one row per weight row, got {lam.shape}")
    validation.check_values(lam.ravel(), "lambdas", low=0.0)
    L, A = lam.shape[1], ratios.size
    n_blocks = validation.check_scalar(n_blocks, "n_blocks", low=1, high=L, integer=True)
    _, tasks = lanes(lam[0], n_blocks)  # (B, T) indices into the path
    B, T = tasks.shape
    lane = lam[:, None, tasks]  # (M, 1, B, T)
    alpha = ratios[None, :, None, None]
    l1 = (alpha * lane).reshape(M * A * B, T)
    l2 = ((1 - alpha) * lane).reshape(M * A * B, T)
    rows = None if mw is None else np.repeat(mw, A * B, axis=0)
    res = solve_members(objective, batch, l1[:, 0] if T == 1 else l1, l2[:, 0] if T == 1 else l2,
                        member_weights=rows, tol=tol, max_iter=max_iter, dtype=dtype)
    res = jax.tree_util.tree_map(lambda a: a.reshape((M, A, B * T) + a.shape[1 + (T > 1):]), res)
    where = np.empty(L, int)  # the (lane, task) slot of each path position (first occurrence)
    for slot, k in reversed(list(enumerate(tasks.ravel()))):
        where[k] = slot
    return jax.tree_util.tree_map(lambda a: a[:, :, where], res)


def solve_path(objective: Objective, batch: Batch, lambdas=None, *, l1_ratio=1.0, n_lambdas: int = 100,
               lambda_min_ratio: Optional[float] = None, member_weights=None, n_blocks: int = 1,
               tol: Optional[float] = None, max_iter: Optional[int] = None, dtype=None) -> PathResult:
    """The elastic-net path ``λ (α‖W‖₁ + (1 − α)/2‖W‖²)`` over ``lambdas`` (default
    :func:`lambda_path`) for each of M weight rows ``member_weights`` (M, n) (default one: the
    batch's weights), cut into ``n_blocks`` warm-started lanes per row (:func:`solve_grid`;
    ``n_blocks = L``: the cold parallel solve of every λ at once). Returns a :class:`PathResult`
    with results shaped (M, L, ...)."""
    alpha = check_l1_ratio(l1_ratio)
    lams = (lambda_path(objective, batch, n_lambdas, lambda_min_ratio, alpha) if lambdas is None
            else validation.check_values(lambdas, "lambdas", low=0.0))
    res = solve_grid(objective, batch, lams, [alpha], member_weights=member_weights, n_blocks=n_blocks, tol=tol,
                     max_iter=max_iter, dtype=dtype)
    return PathResult(lams, alpha, jax.tree_util.tree_map(lambda a: a[:, 0], res), n_blocks)


def straggler_fraction(n_iter) -> float:
    """The share of member-iterations a vmapped ``while_loop`` spends on frozen members: the loop
    runs max(n_iter) iterations for all G members while member g needs n_iter[g], so
    1 − Σ n_iter / (G · max n_iter) of the (per-member) work is waiting on the slowest."""
    it = np.asarray(n_iter, np.float64).ravel()
    return float(1.0 - it.sum() / (it.size * it.max())) if it.size and it.max() > 0 else 0.0
