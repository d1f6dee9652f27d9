"""Grid search against meta-optimisation on the same unrolled hold-out loss, and the bias of a
short horizon: the analyses of ``experiments/meta_lr.py`` as library functions.

Compute is counted in gradient evaluations: a training run of K updates costs K; a hypergradient
with m hyperparameters costs (1 + m) K in forward mode (each JVP of a gradient ≈ one gradient)
and (2m + 1) K by central differences (:func:`grad_evals`). Timing is the caller's (pass a
:class:`experiments.benchmarks.timing.Timer` as ``runner``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np

from jaxreg.meta.hypergrad import direct, grid_val_loss
from jaxreg.meta.outer import MetaResult, MetaTrace, meta_optimize


def log_grid(lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` points evenly spaced in log space from log ``lo`` to log ``hi`` (float64, (n,))."""
    return np.linspace(np.log(lo), np.log(hi), int(n))


def log_mesh(axes: Sequence[Sequence]) -> np.ndarray:
    """The Cartesian product of :func:`log_grid` axes ``[(lo, hi, n), ...]``: ``(Π n, len(axes))``
    in C order (the last axis fastest)."""
    grids = [log_grid(*a) for a in axes]
    return np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(grids))


def best_finite(loss, diverged) -> int:
    """Index of the lowest finite loss of a run that did not diverge (the first on ties).
    Raises ValueError when there is none."""
    loss = np.asarray(loss)
    ok = ~np.asarray(diverged, bool) & np.isfinite(loss)
    if not ok.any():
        raise ValueError("no grid point has a finite hold-out loss without diverging")
    return int(np.argmin(np.where(ok, loss, np.inf)))


class GridSearch(NamedTuple):
    """points (N, n_hyper): log-hyperparameters; loss, diverged (N,); best: :func:`best_finite`."""

    points: np.ndarray
    loss: np.ndarray
    diverged: np.ndarray
    best: int

    @property
    def best_loss(self):
        return self.loss[self.best]


def grid_search(val_loss, points, *, chunk_size: Optional[int] = None, runner: Callable = direct) -> GridSearch:
    """``val_loss`` at every row of ``points`` (N, n_hyper), one program (chunks of ``chunk_size``)."""
    points = np.asarray(points, np.float64).reshape(-1, val_loss.n_hyper)
    loss, aux = grid_val_loss(val_loss, points, chunk_size=chunk_size, runner=runner)
    loss, diverged = np.asarray(loss), np.asarray(aux.diverged)
    return GridSearch(points, loss, diverged, best_finite(loss, diverged))


def grad_evals(mode: str, n_hyper: int, horizon: int) -> Optional[int]:
    """Gradient evaluations of one hypergradient over K = ``horizon`` updates: (1 + m) K forward,
    (2m + 1) K by finite differences; None for reverse mode (not a count of gradients)."""
    per_step = {"forward": 1 + n_hyper, "fd": 2 * n_hyper + 1}.get(mode)
    return None if per_step is None else per_step * horizon


def accepted_losses(trace: MetaTrace, n_steps: Optional[int] = None) -> np.ndarray:
    """(S, n) losses of the first ``n_steps`` outer steps, +inf where the step was rejected."""
    n = trace.loss.shape[1] if n_steps is None else n_steps
    return np.where(trace.bad[:, :n], np.inf, trace.loss[:, :n])


def steps_to_within(trace: MetaTrace, target) -> list:
    """Per start, the number of outer steps until an accepted loss <= ``target`` (None: never)."""
    return [int(np.argmax(tr <= target)) + 1 if np.any(tr <= target) else None for tr in accepted_losses(trace)]


class Comparison(NamedTuple):
    """grid, meta: the two searches; best_start: the start with the lowest meta loss;
    loss_ratio: meta best / grid best (in the working dtype); steps_to_within: per start (see
    :func:`steps_to_within`, target ``within`` × grid best); grid_grad_evals = N K,
    meta_grad_evals = S · n_steps · :func:`grad_evals` (None in reverse mode)."""

    grid: GridSearch
    meta: MetaResult
    horizon: int
    best_start: int
    loss_ratio: float
    steps_to_within: list
    grid_grad_evals: int
    meta_grad_evals: Optional[int]

    @property
    def compute_fraction(self) -> Optional[float]:
        """meta_grad_evals / grid_grad_evals (counted compute)."""
        return None if self.meta_grad_evals is None else self.meta_grad_evals / self.grid_grad_evals


def compare(grid: GridSearch, meta: MetaResult, horizon: int, *, within: float = 1.02) -> Comparison:
    """The grid's best against the meta-optimiser's best on the same loss (see
    :class:`Comparison`)."""
    best = int(np.argmin(meta.loss))
    S, n_hyper = meta.log_hyper.shape
    per = grad_evals(meta.mode, n_hyper, horizon)
    return Comparison(grid, meta, horizon, best, float(meta.loss[best] / grid.best_loss),
                      steps_to_within(meta.trace, within * grid.best_loss), len(grid.points) * horizon,
                      None if per is None else S * meta.n_hypergrads * per)


class HorizonBias(NamedTuple):
    """horizons (H,); learned (H, n_hyper): exp of the meta-learned log-hyperparameters per
    horizon (in the working dtype); learned_loss (H,): their hold-out loss at their own K;
    curves: {K: (points (n, n_hyper) log, losses (n,))} (every K but the longest from the curve
    grid, the longest from the coarse grid); loss_at_longest (H,): each learned value run for
    the longest horizon; meta_results: {K: MetaResult} of the runs made here."""

    horizons: tuple
    learned: np.ndarray
    learned_loss: np.ndarray
    curves: dict
    loss_at_longest: np.ndarray
    meta_results: dict


def horizon_bias(val_loss, horizons: Sequence[int], start, *, n_steps: int, optimizer, curve_points,
                 coarse_points, known: Optional[Comparison] = None, runner: Callable = direct) -> HorizonBias:
    """Meta-learn the hyperparameters from ``start`` (n_hyper,) for each horizon K (``n_steps``
    outer steps of ``optimizer``; ``val_loss.replace(horizon=K)``), then run every learned value
    for the longest horizon, together with ``coarse_points`` in one program (evaluated at
    log(exp h), the learned value as the working precision rounds it).

    ``known``: a :class:`Comparison` already made on ``val_loss`` at one of the horizons (e.g.
    by :func:`grid_and_meta`, same outer optimizer settings); when ``start`` is one
    of its starts and ``n_steps`` <= its steps, that start's trace is reused (starts are
    independent under ``vmap``): the best accepted point of its first ``n_steps`` steps, and its
    grid as that horizon's curve.
    """
    horizons = tuple(int(K) for K in horizons)
    start = np.asarray(start, np.float64).reshape(1, -1)
    learned, learned_loss, curves, results, last = [], [], {}, {}, None
    for K in horizons:
        vl = val_loss if K == val_loss.horizon else val_loss.replace(horizon=K)
        rows = []
        if known is not None and K == known.horizon and n_steps <= known.meta.n_hypergrads:
            first = known.meta.trace.log_hyper[:, 0]  # (S, n_hyper): each start's first point
            rows = np.flatnonzero(np.all(first == np.asarray(vl.as_array(start)), axis=1))
        if len(rows):
            tl = accepted_losses(known.meta.trace, n_steps)[rows[0]]
            i = int(np.argmin(tl))
            learned.append(np.exp(known.meta.trace.log_hyper[rows[0], i]))
            learned_loss.append(tl[i])
        else:
            res = results[K] = meta_optimize(vl, start, n_steps=n_steps, optimizer=optimizer, runner=runner)
            learned.append(np.exp(res.log_hyper[0]))
            learned_loss.append(res.loss[0])
        if known is not None and K == known.horizon:
            curves[K] = (known.grid.points, known.grid.loss)
        elif K != horizons[-1]:
            curves[K] = (np.asarray(curve_points), np.asarray(grid_val_loss(vl, curve_points, runner=runner)[0]))
        last = vl
    coarse = np.asarray(coarse_points, np.float64).reshape(-1, val_loss.n_hyper)
    pts = np.concatenate([coarse, np.log(np.asarray(learned, np.float64))])
    loss, _ = grid_val_loss(last, pts, runner=runner)
    loss = np.asarray(loss)
    curves[horizons[-1]] = (coarse, loss[:len(coarse)])
    return HorizonBias(horizons, np.asarray(learned), np.asarray(learned_loss), curves, loss[len(coarse):], results)


def grid_and_meta(val_loss, points, starts, *, n_steps: int, optimizer, chunk_size: Optional[int] = None,
                  within: float = 1.02, runner: Callable = direct) -> Comparison:
    """:func:`grid_search` over ``points`` (N, n_hyper) and :func:`meta_optimize` from ``starts``
    (S, n_hyper), both log-hyperparameters, :func:`compare`-d."""
    grid = grid_search(val_loss, points, chunk_size=chunk_size, runner=runner)
    res = meta_optimize(val_loss, starts, n_steps=n_steps, optimizer=optimizer, runner=runner)
    return compare(grid, res, val_loss.horizon, within=within)
