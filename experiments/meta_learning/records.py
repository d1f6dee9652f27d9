"""The meta-learning study's results as JSON-ready records (plain lists and floats; the
``details`` of meta_lr.json), read back by :mod:`experiments.meta_learning.report` and :mod:`experiments.meta_learning.figures`.
Log-hyperparameters are written as values (exp, in the working dtype); timings come from the
caller's :class:`experiments.benchmarks.timing.Timer` objects.
"""
from __future__ import annotations

import numpy as np

from experiments.meta_learning.compare import Comparison, HorizonBias, log_grid
from jaxreg.meta.online import OnlineRuns

TRACE_FLAGS = ("loss", "grad_norm", "bad", "exploded", "nonfinite", "diverged", "clipped")


def timing(cmp: Comparison, timer, label: str = "") -> dict:
    """Grid and meta compute side by side (``timer`` ran :func:`experiments.meta_learning.compare.grid_and_meta`): CPU
    and wall seconds (compilation excluded), compile seconds, counted gradient evaluations and
    the two compute fractions."""
    g, m = timer.of("grid_loss_program"), timer.of("meta_program")
    return {"grid_cpu_s": g["cpu_s"], "grid_wall_s": g["wall_s"], "meta_cpu_s": m["cpu_s"], "meta_wall_s": m["wall_s"],
            "compile_s": {"grid": g["compile_s"], "meta": m["compile_s"]}, "grid_grad_evals": cmp.grid_grad_evals,
            "meta_grad_evals": cmp.meta_grad_evals, f"meta{label}_compute_fraction_counted": cmp.compute_fraction,
            f"meta{label}_compute_fraction_cpu": m["cpu_s"] / g["cpu_s"]}


def eta_record(cmp: Comparison, grid_dloss, starts, timer) -> dict:
    """One η (log_lr) study: the grid (η, loss, dL/dlog η (N,), diverged), the meta runs from
    ``starts`` (best per start, traces (S, steps) with every flag), the comparison, compute."""
    g, m = cmp.grid, cmp.meta
    return {"grid_eta": np.exp(g.points[:, 0]).tolist(), "grid_loss": g.loss.tolist(),
            "grid_dloss_dlogeta": np.asarray(grid_dloss).tolist(), "grid_diverged": g.diverged.tolist(),
            "grid_best_eta": float(np.exp(g.points[g.best, 0])), "grid_best_loss": float(g.best_loss),
            "meta_starts": starts, "meta_best_eta": np.exp(m.log_hyper[:, 0]).tolist(), "meta_best_loss": m.loss.tolist(),
            "meta_trace_eta": np.exp(m.trace.log_hyper[..., 0]).tolist(),
            **{f"meta_trace_{k}": getattr(m.trace, k).tolist() for k in TRACE_FLAGS},
            "meta_vs_grid_loss_ratio": cmp.loss_ratio, "meta_steps_to_within_2pct": cmp.steps_to_within,
            **timing(cmp, timer), "horizon": cmp.horizon}


def joint_record(cmp: Comparison, axes, starts, timer) -> dict:
    """The joint study over a Cartesian grid with ``axes`` [(lo, hi, n), ...]: the grid's losses
    shaped (n₁, n₂, ...), its best, the meta runs (values (S, steps, m)), the comparison."""
    g, m = cmp.grid, cmp.meta
    return {"axes_values": [np.exp(log_grid(*a)).tolist() for a in axes],
            "grid_loss": g.loss.reshape([int(a[2]) for a in axes]).tolist(),
            "grid_n_diverged": int(np.sum(g.diverged | ~np.isfinite(g.loss))),
            "grid_best": np.exp(g.points[g.best]).tolist(), "grid_best_loss": float(g.best_loss),
            "meta_starts": starts, "meta_best": np.exp(m.log_hyper).tolist(), "meta_best_loss": m.loss.tolist(),
            "meta_trace": np.exp(m.trace.log_hyper).tolist(), "meta_trace_loss": m.trace.loss.tolist(),
            "meta_trace_bad": m.trace.bad.tolist(), "meta_trace_grad_norm": m.trace.grad_norm.tolist(),
            "meta3_vs_grid_loss_ratio": cmp.loss_ratio, **timing(cmp, timer, "3")}


def horizon_record(hb: HorizonBias, start: float, n_steps: int) -> dict:
    """The horizon study (a one-hyperparameter :class:`HorizonBias`), curves as [η, loss]."""
    return {"horizons": hb.horizons, "start": start, "n_steps": n_steps, "learned_eta": hb.learned[:, 0].tolist(),
            "learned_loss_at_K": hb.learned_loss.tolist(),
            "curves": {str(K): [np.exp(p[:, 0]).tolist(), loss.tolist()] for K, (p, loss) in hb.curves.items()},
            "loss_at_longest_K": hb.loss_at_longest.tolist()}


def online_record(runs: OnlineRuns, n_samples: int = 50, cpu_s=None) -> dict:
    """SGD-HD runs: η0, β, final η, hold-out loss per run, and η_t sampled every
    max(1, K // n_samples) updates."""
    K = runs.learning_rates.shape[1]
    return {"eta0": runs.learning_rate0.tolist(), "beta": runs.beta.tolist(),
            "final_eta": runs.final_learning_rate.tolist(), "loss": runs.holdout_loss.tolist(),
            "eta_trace": runs.learning_rates[:, ::max(1, K // n_samples)].tolist(), "cpu_s_incl_compile": cpu_s}


def cost_record(cost: dict, at_eta: float, modes: dict) -> dict:
    """:func:`experiments.benchmarks.timing.hypergrad_cost`'s numbers with the point and the three-way agreement
    (:func:`jaxreg.meta.compare_modes`) at it."""
    return {**cost, "at_eta": at_eta, "dloss_dlogeta": {k: g[0] for k, g in modes["grad"].items()},
            "rel_err_reverse_vs_forward": modes["rel_err_reverse_vs_forward"],
            "rel_err_fd_vs_forward": modes["rel_err_fd_vs_forward"], "hypergrad_rel_err": modes["max_rel_err"]}
