"""The meta-learning report's section on issue 10's studies (``details["schedule"]`` from
:func:`experiments.meta_learning.learned.schedule_study`, ``details["implicit"]`` from the implicit λ study),
worded from the measurements."""
from __future__ import annotations

import numpy as np

from experiments.tables import markdown_table


def _f(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def schedule_lines(r: dict) -> list:
    rows = [("constant η (grid)", f"{len(r['const_eta'])} runs", _f(r["const_best_loss"]), f"η = {r['const_best_eta']:.3g}"),
            ("η0/(1 + epoch/T) (2-D grid)", f"{len(r['grid2d_loss'])} runs", _f(r["grid2d_best_loss"]),
             "(η0, T) = ({:.3g}, {:.3g})".format(*r["grid2d_best"])),
            ("SGD-HD", "1 run", _f(r["sgd_hd_loss"]), f"α0 = {r['sgd_hd_lr0']:g}, β = {r['sgd_hd_beta']:g}"),
            ("learned schedule", f"{r['n_steps']} reverse hypergradients", _f(r["learned_loss"]),
             f"{r['pieces']} rates (every {r['every']} updates) from η = {r['start_eta']:g}")]
    keys = ("constant", "inverse_time_2d", "sgd_hd", "learned")
    rows = [(*row, f"{r['grad_evals'][k]:,}", _f(r["cpu_s"][k], ".1f")) for row, k in zip(rows, keys)]
    won = r["schedule_vs_best_baseline_loss_ratio"] < 1
    cheaper = r["schedule_compute_vs_2d_grid"] <= 1, (r["schedule_compute_vs_2d_grid_cpu"] or np.inf) <= 1
    rates = np.asarray(r["learned_rates"])
    return [
        f"SGD on the Baydin set-up for K = {r['horizon']} updates, hold-out loss after the run (the same initial "
        "weights and batch order for every method):", "",
        *markdown_table(("method", "search", "hold-out loss", "chosen", "gradient evaluations", "CPU s"), rows), "",
        f"The learned schedule's loss is {r['schedule_vs_best_baseline_loss_ratio']:.4f} x the best other method's "
        f"({r['best_baseline']}): it {'wins' if won else 'does not win'}; its compute is "
        f"{r['schedule_compute_vs_2d_grid']:.3f} x the 2-D grid's in gradient evaluations "
        f"({'within' if cheaper[0] else 'above'} the grid's) and {_f(r['schedule_compute_vs_2d_grid_cpu'], '.3f')} x in "
        f"CPU time ({'within' if cheaper[1] else 'above'}). The learned rates range over [{rates.min():.3g}, "
        f"{rates.max():.3g}]; the last ones are {', '.join(f'{x:.3g}' for x in rates[-4:])}. Counting: a run is K "
        "gradient evaluations, a reverse-mode hypergradient with √K checkpointing 3K (forward, recomputation, "
        "backward); CPU seconds exclude compilation."]


def implicit_lines(r: dict) -> list:
    c, g, one, rows = r["check"], r["grid"], r["meta_one"], r.get("meta_rows")
    table = [("λ grid", f"{len(g['lambdas'])} λ, one path solve", f"{g['best_lambda']:.3g}", _f(g["best_holdout_loss"]),
              _f(g["best_test_loss"]), _f(g["cpu_s"], ".1f")),
             ("one λ, implicit hypergradient", f"{one['n_steps']} steps", f"{one['best_lambda'][0]:.3g}",
              _f(one["best_holdout_loss"]), _f(one["best_test_loss"]), _f(one["cpu_s"], ".1f"))]
    if rows:
        lam = np.asarray(rows["best_lambda"])
        table.append((f"{rows['n_hyper']} λ (one per image row)", f"{rows['n_steps']} steps",
                      f"[{lam.min():.2g}, {lam.max():.2g}]", _f(rows["best_holdout_loss"]), _f(rows["best_test_loss"]),
                      _f(rows["cpu_s"], ".1f")))
    return [
        f"Softmax regression with an unpenalised intercept on the pixels (centred), float64. The implicit "
        f"hypergradient d L_val / d log λ of the converged path, every λ at once, against forward mode through "
        f"K = {c['horizon']} full-batch Nesterov updates (η = 1/(L + max λ) = {c['learning_rate']:.3g}, μ = {c['momentum']}) "
        f"on {c['n_train']} training images: relative differences "
        f"{', '.join(f'{e:.1e}' for e in c['rel_err'])} for λ = {', '.join(f'{x:g}' for x in c['lambdas'])} "
        f"(max {c['implicit_batched_max_rel_err']:.2e}; CPU {c['cpu_s']['implicit']:.1f} s implicit, "
        f"{c['cpu_s']['unrolled']:.1f} s unrolled, compilation excluded). Below, CPU seconds include compilation.", "",
        *markdown_table(("λ by", "search", "λ", "hold-out loss", "test loss", "CPU s"), table), ""]


def markdown(details: dict) -> list:
    """The section's lines (empty when neither study ran)."""
    out = []
    if details.get("schedule"):
        out += ["", "## A learned schedule against grids and SGD-HD", "", *schedule_lines(details["schedule"])]
    if details.get("implicit"):
        out += ["", "## Batched implicit λ hypergradients", "", *implicit_lines(details["implicit"])]
    return out
