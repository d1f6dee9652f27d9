"""The written report of the meta-learning study (``experiments/meta_lr.py``): its headline
numbers, the setup sentence, the Markdown page and the paragraph answering seed 004's exercise,
each worded from the measurements (the ``details`` records the study writes to meta_lr.json:
``softmax``, ``cost``, ``hd``, ``joint`` and optionally ``binary``, ``horizon``).
"""
from __future__ import annotations

import hashlib
import struct

import numpy as np

from experiments.baydin import report as report_hd
from jaxreg.data.idx import MD5_TRAIN_LABELS

ROWS = (
    ("meta_vs_grid_loss_ratio", "log η, softmax: meta best / best of the η grid"),
    ("meta_compute_fraction", "its compute / the grid's (gradient evaluations)"),
    ("meta_compute_fraction_cpu", "same, measured CPU time"),
    ("binary_meta_vs_grid_loss_ratio", "log η, binary 2-vs-3: meta / grid"),
    ("binary_meta_compute_fraction", "its compute / the grid's (gradient evaluations)"),
    ("meta3_vs_grid_loss_ratio", "(log η0, log T, log λ): meta best / best of the joint grid"),
    ("meta3_compute_fraction", "its compute / the grid's (gradient evaluations)"),
    ("meta3_compute_fraction_cpu", "same, measured CPU time"),
    ("jvp_cost_ratio", "forward-mode hypergradient / one training run (CPU time)"),
    ("vjp_cost_ratio", "reverse mode with √K checkpointing / one run (CPU time)"),
    ("jvp_cost_ratio_wall", "forward / run (wall time)"),
    ("vjp_cost_ratio_wall", "reverse / run (wall time)"),
    ("jvp_cost_ratio_paired", "forward / run, median of per-round CPU ratios"),
    ("vjp_cost_ratio_paired", "reverse / run, median of per-round CPU ratios"),
    ("hypergrad_rel_err", "max relative disagreement forward / reverse / finite differences"),
)


#: issue 10's headline numbers (present when their study ran).
ROWS_V02 = (
    ("schedule_vs_best_baseline_loss_ratio", "learned schedule / best of constant-η grid, η0/(1+t/T) grid, SGD-HD"),
    ("schedule_compute_vs_2d_grid", "its compute / the 2-D (η0, T) grid's (gradient evaluations)"),
    ("schedule_compute_vs_2d_grid_cpu", "same, measured CPU time"),
    ("implicit_batched_max_rel_err", "implicit vs unrolled d L_val / d log λ, max over the λ path (float64)"),
)


def headline_v02(details: dict) -> dict:
    """The top-level numbers of the learned-schedule and implicit studies (:data:`ROWS_V02`)."""
    s, i = details.get("schedule"), details.get("implicit")
    return {k: (s if k.startswith("schedule") else i)[k] for k, _ in ROWS_V02 if (s if k.startswith("schedule") else i)}


def data_source(data: dict) -> str:
    """How the report names a ``load_mnist``-style dict: "MNIST" when its training labels are
    MNIST's (the MD5 of their IDX file, header included), else "synthetic (not MNIST)"."""
    labels = np.asarray(data["train_labels"], np.uint8)
    idx = struct.pack(">II", 0x801, labels.size) + labels.tobytes()
    return "MNIST" if hashlib.md5(idx).hexdigest() == MD5_TRAIN_LABELS else "synthetic (not MNIST)"


def headline(details: dict) -> dict:
    """The top-level numbers of meta_lr.json (the keys of :data:`ROWS`, in order)."""
    s, b, j, c = details["softmax"], details.get("binary"), details["joint"], details["cost"]
    out = {"meta_vs_grid_loss_ratio": s["meta_vs_grid_loss_ratio"],
           "meta_compute_fraction": s["meta_compute_fraction_counted"],
           "meta_compute_fraction_cpu": s["meta_compute_fraction_cpu"],
           "binary_meta_vs_grid_loss_ratio": b["meta_vs_grid_loss_ratio"] if b else None,
           "binary_meta_compute_fraction": b["meta_compute_fraction_counted"] if b else None,
           "meta3_vs_grid_loss_ratio": j["meta3_vs_grid_loss_ratio"],
           "meta3_compute_fraction": j["meta3_compute_fraction_counted"],
           "meta3_compute_fraction_cpu": j["meta3_compute_fraction_cpu"]}
    out.update({k: c[k] for k, _ in ROWS[8:]})
    return out


def setup(cfg: dict, train_shape, holdout_shape) -> str:
    """One paragraph describing every setup, from the JSON config ``cfg`` and the softmax set
    shapes."""
    sc, bc, hc, jc = cfg["softmax"], cfg.get("binary"), cfg.get("horizon"), cfg["joint"]
    K_joint = jc["epochs"] * (jc["n_train"] // jc["batch_size"])
    return (
        f"softmax: train {tuple(train_shape)}, hold-out {tuple(holdout_shape)}, mini-batch SGD batch "
        f"{sc['batch_size']}, constant η, K = {sc['horizon']}, zero init, no penalty; grid {sc['grid'][2]} log-spaced η in "
        f"[{sc['grid'][0]:g}, {sc['grid'][1]:g}]; meta: Adam({sc['outer_lr']}) on log η, {sc['n_steps']} steps from "
        f"η0 = {sc['starts']}, forward mode. "
        + (f"binary 2-vs-3: logistic, batch {bc['batch_size']}, K = {bc['horizon']}, same grid and meta settings. " if bc else "")
        + f"horizon study: the softmax setup for K = {hc['horizons'] if hc else '-'}. "
        f"SGD-HD: the softmax setup, η0 x β = {cfg['hd']['starts']} x {cfg['hd']['betas']}. "
        f"joint: first {jc['n_train']} training images, batch {jc['batch_size']}, {jc['epochs']} epochs "
        f"(K = {K_joint}), η0/(1 + epoch/T), L2 (λ/2)‖W‖²; grid "
        f"{'x'.join(str(a[2]) for a in jc['axes'])} over η0 in [{jc['axes'][0][0]:g}, {jc['axes'][0][1]:g}], "
        f"T in [{jc['axes'][1][0]:g}, {jc['axes'][1][1]:g}] epochs, λ in [{jc['axes'][2][0]:g}, {jc['axes'][2][1]:g}]; "
        f"meta: Adam({jc['outer_lr']}), {jc['n_steps']} steps from {len(jc['starts'])} starts, forward mode "
        "(3 tangents). Compute counted in gradient evaluations: a run of K steps = K; a forward-mode "
        "hypergradient with m hyperparameters = (1 + m) K. CPU times exclude compilation.")


def _r4(xs):
    return [round(float(x), 4) for x in xs]


def _g3(xs):
    return [float("%.3g" % x) for x in xs]


def markdown(summary: dict, details: dict) -> str:
    """The Markdown page: the headline table, the setups, one line per study, the answer."""
    s, b, j, h, c, hd = (details.get(k) for k in ("softmax", "binary", "joint", "horizon", "cost", "hd"))
    lines = ["# Meta-learning the learning rate (seed 004's exercise)", "",
             f"Data: {summary['data_source']}; {'SMOKE run' if summary['smoke'] else 'full run'}; "
             f"total {summary['total_wall_s']:.0f} s wall, {summary['total_cpu_s']:.0f} s CPU.", "",
             "| quantity | value | meaning |", "|---|---|---|"]
    for k, meaning in ROWS + tuple(r for r in ROWS_V02 if r[0] in summary):
        v = summary.get(k)
        lines.append(f"| `{k}` | {v:.4g} | {meaning} |" if isinstance(v, (int, float)) else f"| `{k}` | {v} | {meaning} |")
    lines += ["", "## Setups", "", summary["setup"], "", "## Details", ""]
    for name, r in (("softmax", s), ("binary 2-vs-3", b)):
        if r:
            lines.append(
                f"* {name} η grid: best η = {r['grid_best_eta']:.3g}, loss {r['grid_best_loss']:.4f}; meta from η0 = "
                f"{r['meta_starts']}: best η {_g3(r['meta_best_eta'])}, loss {_r4(r['meta_best_loss'])}; outer steps to "
                f"within 2% of the grid's best, per start: {r['meta_steps_to_within_2pct']}; rejected (chaotic / "
                f"diverged) steps per start: {[int(np.sum(x)) for x in r['meta_trace_bad']]}; grid {r['grid_cpu_s']:.2f} s "
                f"CPU, meta {r['meta_cpu_s']:.2f} s CPU.")
    lines.append(f"* joint: grid best (η0, T, λ) = {_g3(j['grid_best'])}, loss {j['grid_best_loss']:.4f} "
                 f"({j['grid_n_diverged']} grid runs diverged); meta best losses {_r4(j['meta_best_loss'])} at "
                 f"{[_g3(p) for p in j['meta_best']]}; grid {j['grid_cpu_s']:.2f} s CPU ({j['grid_wall_s']:.2f} s wall), "
                 f"meta {j['meta_cpu_s']:.2f} s CPU ({j['meta_wall_s']:.2f} s wall).")
    if h:
        lines.append(f"* horizon (one start, η0 = {h['start']}, {h['n_steps']} outer steps): learned η for K = "
                     f"{h['horizons']}: {_g3(h['learned_eta'])}; hold-out loss after K = {h['horizons'][-1]} steps with "
                     f"each: {_r4(h['loss_at_longest_K'])}.")
    lines += [f"* SGD-HD (online, one run of K = {s['horizon']} steps each): (η0, β) = "
              f"{[(float('%.3g' % a), float('%.1g' % b_)) for a, b_ in zip(hd['eta0'], hd['beta'])]} -> final η "
              f"{_g3(hd['final_eta'])}, hold-out loss {_r4(hd['loss'])}.",
              f"* cost at η = {c['at_eta']:.3g}: run {c['run_cpu_s']:.3f} s CPU, forward {c['forward_cpu_s']:.3f} s, "
              f"reverse+remat {c['reverse_cpu_s']:.3f} s (medians of {c['repeats']} interleaved repeats); dL/dlog η: "
              f"forward {c['dloss_dlogeta']['forward']:.6g}, reverse {c['dloss_dlogeta']['reverse']:.6g}, "
              f"central differences {c['dloss_dlogeta']['fd']:.6g}.",
              "", "## Answer to the exercise", "", summary["answer"]]
    return "\n".join(lines + report_hd.markdown(details) + [""])


def _pct(r) -> str:
    return f"{100 * abs(r - 1):.1f}% {'below' if r < 1 else 'above'}"


def answer(summary: dict, details: dict) -> str:
    """The paragraph answering seed 004's exercise; every claim is a measured number or a
    comparison of measured numbers (the wording follows which way each comparison went)."""
    s, j, h, hd, c = (details.get(k) for k in ("softmax", "joint", "horizon", "hd", "cost"))
    big = [e for e, g in zip(s["grid_eta"], s["grid_dloss_dlogeta"]) if g is None or not np.isfinite(g) or abs(g) > 1e2]
    r1, f1, f1c = summary["meta_vs_grid_loss_ratio"], summary["meta_compute_fraction"], summary["meta_compute_fraction_cpu"]
    r3, f3, f3c = summary["meta3_vs_grid_loss_ratio"], summary["meta3_compute_fraction"], summary["meta3_compute_fraction_cpu"]
    text = [
        "With a fixed initialisation and batch order, SGD's final hold-out loss is a deterministic, differentiable "
        "function of ε. Its derivative is exact: forward mode, reverse mode and central differences agree to "
        f"{c['hypergrad_rel_err']:.1e} (float32). Forward mode costs {c['jvp_cost_ratio']:.1f}x one training run and "
        f"reverse mode with √K checkpointing {c['vjp_cost_ratio']:.1f}x (CPU time).",
        f"Gradient descent on log ε (Adam on the hyperparameter) reached a hold-out loss {_pct(r1)} the best of a "
        f"{len(s['grid_eta'])}-point grid " + ("(within the 2% target). " if r1 <= 1.02 else "(outside the 2% target). ")
        + (f"For this one scalar the grid is the cheaper tool: the meta-optimisation ({len(s['meta_starts'])} starts "
           f"x {len(s['meta_trace_loss'][0])} steps) used {f1:.1f}x the grid's gradient evaluations and {f1c:.1f}x its "
           "CPU time, and the grid, one vmapped call, also shows the whole curve."
           if f1 >= 1 or f1c >= 1 else f"It used {f1:.2f}x the grid's gradient evaluations ({f1c:.2f}x its CPU time)."),
        "A grid's cost is exponential in the number of hyperparameters, a hypergradient's linear. "
        f"Jointly over (log η0, log T, log λ), the meta-optimisation reached {_pct(r3)} the best of a "
        f"{int(np.prod([len(a) for a in j['axes_values']]))}-point grid "
        f"with {100 * f3:.1f}% of the grid's gradient evaluations ({100 * f3c:.1f}% of its CPU time)"
        + ("." if r3 <= 1.02 and f3 <= 0.10 else "; the targets were within 2% for at most 10% of the compute."),
        "Where it fails: past the edge of stability the loss stays finite, but the unrolled derivative becomes chaotic "
        "and grows exponentially with K"
        + (f" (|dL/dlog ε| > 100 or non-finite for ε ≳ {min(big):.2g} at K = {s['horizon']})" if big else "")
        + ". A naive gradient step from there flies off; the outer loop here detects such steps, rejects them and "
        "steps back.",
    ]
    if h:
        lo = np.asarray(h["loss_at_longest_K"], float)
        spread = 100 * (lo.max() - lo.min()) / lo.min()
        eta = np.asarray(h["learned_eta"], float)
        monotone = bool(np.all(np.diff(eta) > 0) or np.all(np.diff(eta) < 0))
        text.append(
            f"The horizon K changes the learned ε: {[float('%.2g' % x) for x in eta]} for K = {h['horizons']}"
            + (", monotonically" if monotone else ", with no consistent direction")
            + f". Run for {h['horizons'][-1]} steps, these give hold-out losses {_r4(lo)}, a spread of {spread:.1f}%: "
            + ("the short-horizon bias is small here." if spread < 2 else
               "the short-horizon bias is substantial; tune on the horizon you will train for."))
    if hd:
        text.append(
            "Online hypergradient descent (SGD-HD) costs about one training run, but where it ends up depends on β "
            f"and on the start: final ε {[float('%.2g' % x) for x in hd['final_eta']]} for (ε0, β) = "
            f"{[(float('%.2g' % a), float('%.0e' % b)) for a, b in zip(hd['eta0'], hd['beta'])]}.")
    return " ".join(text)
