"""A learned learning-rate schedule against grids and SGD-HD, on one training set-up: where
reverse-mode hypergradients pay (many hyperparameters, a long run).

Four ways to set SGD's learning rate for a run of K updates, all on the same trainer, initial
weights and batch order, scored by the hold-out loss after the K updates:

* the best constant η of a log grid (``const_points``, one vmapped program);
* the best η0/(1 + epoch/T) of a 2-D log grid over (η0, T) (``grid2d_points``);
* SGD-HD (:func:`jaxreg.meta.online.sgd_hd`) from ``hd_lr0`` with ``hd_beta``: one run;
* a piecewise-constant schedule (:class:`jaxreg.meta.schedules.Piecewise`, n pieces of
  ``every`` updates) meta-learned by :func:`jaxreg.meta.outer.meta_optimize` in reverse mode
  (√K checkpointing, ``checkpoint="sqrt"``) from a constant start.

Compute is counted in gradient evaluations — a run K; a reverse-mode hypergradient with √K
checkpointing 3K (the forward pass, its recomputation, the backward pass: a vector-Jacobian
product of a gradient costs about one gradient) — and measured in CPU seconds (compilation
excluded) with the caller's :class:`experiments.benchmarks.timing.Timer`.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from experiments.meta_learning.compare import grid_search
from jaxreg.config import Hyper, TrainConfig
from jaxreg.meta.hypergrad import direct, grid_val_loss
from jaxreg.meta.online import sgd_hd
from jaxreg.meta.outer import meta_optimize
from jaxreg.meta.schedules import Piecewise
from jaxreg.meta.unrolled import make_val_loss

REVERSE_GRAD_EVALS = 3  # per update, for one reverse-mode hypergradient with √K checkpointing


def schedule_study(objective, config: TrainConfig, data, params0, key, *, horizon: int, base: Hyper,
                   const_points, grid2d_points, hd_lr0: float, hd_beta: float, pieces_every, start_eta: float,
                   n_steps: int, optimizer, runner=direct) -> dict:
    """The four methods of the module docstring on ``config`` (method, batches; its optimizer
    must be plain SGD), ``horizon`` K updates, the other hyperparameters from ``base`` (e.g.
    λ₂); points are log-hyperparameters ((N, 1) log η, (N, 2) (log η0, log T)). Returns a
    JSON-ready record with the losses, the learned rates, compute and the two headline ratios
    (``schedule_vs_best_baseline_loss_ratio``, ``schedule_compute_vs_2d_grid`` (counted) and
    ``_cpu`` (measured; needs a Timer runner, else None))."""
    timed = hasattr(runner, "last")
    cpu = lambda: runner.last["cpu_s"] if timed else None  # noqa: E731
    mk = lambda cfg, **kw: make_val_loss(objective, cfg, data, params0, key, horizon=horizon, **kw)  # noqa: E731
    const = grid_search(mk(config, base=base), const_points, runner=runner)
    const_cpu = cpu()
    grid2d = grid_search(mk(dataclasses.replace(config, schedule="inverse_time"), base=base,
                            hyper_names=("log_lr", "log_decay_time")), grid2d_points, runner=runner)
    grid2d_cpu = cpu()
    hd_vl = mk(dataclasses.replace(config, optimizer=sgd_hd), base=base._replace(extra={"beta": hd_beta}))
    hd_loss, hd_aux = grid_val_loss(hd_vl, [[math.log(hd_lr0)]], runner=runner)
    hd_cpu = cpu()
    sched = Piecewise("rates", pieces_every)
    n = sched.pieces(horizon, config.steps_per_epoch(data.train.X.shape[0]))
    svl = mk(dataclasses.replace(config, schedule=sched), hyper_names=("log_rates",), checkpoint="sqrt",
             base=base._replace(extra={"rates": np.full(n, start_eta)}))
    res = meta_optimize(svl, np.full((1, n), math.log(start_eta)), n_steps=n_steps, optimizer=optimizer,
                        mode="reverse", runner=runner)
    meta_cpu = cpu()
    best = {"constant": float(const.best_loss), "inverse_time_2d": float(grid2d.best_loss), "sgd_hd": float(hd_loss[0])}
    K = int(horizon)
    evals = {"constant": len(const.points) * K, "inverse_time_2d": len(grid2d.points) * K, "sgd_hd": K,
             "learned": n_steps * REVERSE_GRAD_EVALS * K}
    cpus = {"constant": const_cpu, "inverse_time_2d": grid2d_cpu, "sgd_hd": hd_cpu, "learned": meta_cpu}
    learned_loss = float(res.loss[0])
    return {
        "horizon": K, "pieces": n, "every": pieces_every, "start_eta": start_eta, "n_steps": n_steps,
        "steps_per_epoch": config.steps_per_epoch(data.train.X.shape[0]),
        "const_eta": np.exp(const.points[:, 0]).tolist(), "const_loss": const.loss.tolist(),
        "const_best_eta": float(np.exp(const.points[const.best, 0])), "const_best_loss": best["constant"],
        "grid2d_points": np.exp(grid2d.points).tolist(), "grid2d_loss": grid2d.loss.tolist(),
        "grid2d_best": np.exp(grid2d.points[grid2d.best]).tolist(), "grid2d_best_loss": best["inverse_time_2d"],
        "sgd_hd_lr0": hd_lr0, "sgd_hd_beta": hd_beta, "sgd_hd_loss": best["sgd_hd"],
        "sgd_hd_diverged": bool(np.asarray(hd_aux.diverged)[0]),
        "learned_rates": np.exp(res.log_hyper[0]).tolist(), "learned_loss": learned_loss,
        "meta_trace_loss": res.trace.loss[0].tolist(), "meta_trace_bad": res.trace.bad[0].tolist(),
        "grad_evals": evals, "cpu_s": cpus, "best_baseline": min(best, key=best.get),
        "schedule_vs_best_baseline_loss_ratio": learned_loss / min(best.values()),
        "schedule_compute_vs_2d_grid": evals["learned"] / evals["inverse_time_2d"],
        "schedule_compute_vs_2d_grid_cpu": None if not timed else meta_cpu / grid2d_cpu,
    }
