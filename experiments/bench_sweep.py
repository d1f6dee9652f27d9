"""Benchmark: one vmapped grid vs a loop of jitted fits vs a NumPy loop vs scikit-learn.

Command, from the repository root (defaults finish in about 10 minutes on 2 cores)::

    python -m experiments.bench_sweep            # writes results/bench_sweep.json and .md
    python -m experiments.bench_sweep --quick    # small variant (synthetic data), for a look

On MNIST (the paper's softmax split: 18,000 x 785, 10 classes; and the 2-vs-3 split) it times:

1. ``jaxreg.sweep`` of the paper's 7 λ x {L1, L2} x 3 learning rates (42 models), a fixed number
   of full-batch epochs, one jitted, vmapped program;
2. the same jitted single-model trainer called once per configuration in a Python loop;
3. a NumPy loop written as the source documents write it (float64, as their ``/255.`` gives);
4. scikit-learn fitting the λ grid to the optimum (lbfgs for L2, saga for L1) against
   ``jaxreg.solvers`` at matched objective;
5. a float32 matmul of the same shapes (X @ W for all 42 models' W at once) on the same machine.

Every ratio is a ratio of medians over repeats taken in this one run.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import make_out_dir
from jaxreg import Batch, Objective, penalty
from jaxreg.atomic import write_json, write_text
from jaxreg.config import as_hyper_arrays
from jaxreg.data import load_mnist, logistic_text_split, softmax_split, synthetic_mnist
from jaxreg.progress import StepLog
from jaxreg.reference import SOLVERS, numpy_softmax_gd, sklearn_fit, value64
from jaxreg.solvers import solve_l1_path, solve_l2_path
from jaxreg.sweep import expand_grid, hyper_of, sweep
from jaxreg.train import Hyper, TrainConfig, jitted_trainer, prepare_data

LAMBDAS = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)
LEARNING_RATES = (0.1, 0.3, 1.0)


def timed(fn, repeats: int):
    """Median wall time of ``fn()`` over ``repeats`` calls (after one untimed warm-up call)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return float(np.median(times)), times


def bench_grid(split, args, log):
    """Parts 1, 2, 3 and 5 on the softmax problem."""
    obj = Objective("softmax", 10, fit_intercept=False)
    cfg = TrainConfig("full_batch", args.epochs, record_history=False)
    data = prepare_data(obj, cfg, split.X_train, split.y_train)
    grid = {"penalty": ["l1", "l2"], "lam": list(LAMBDAS), "learning_rate": list(LEARNING_RATES)}
    n_models = 2 * len(LAMBDAS) * len(LEARNING_RATES)
    n, d = data.train.X.shape
    C = obj.n_classes

    log(f"[1] vmapped sweep: {n_models} models x {args.epochs} epochs")
    t_vmap, t_vmap_all = timed(lambda: sweep(obj, data, cfg, grid, progress=False).flat.params["W"],
                               args.repeats)

    log("[2] loop of the jitted single-model trainer")
    one = jitted_trainer(obj, cfg)
    hypers = [hyper_of(c, Hyper()) for c in expand_grid(grid, n)[2]]  # the sweep's models, in its order
    p0 = obj.init_params(d, dtype=data.train.X.dtype)
    key = jax.random.PRNGKey(0)
    stacked = [as_hyper_arrays(h, data.train.X.dtype) for h in hypers]
    t_loop, t_loop_all = timed(lambda: [one(h, p0, data, key).params["W"] for h in stacked],
                               max(1, args.repeats - 1))

    log(f"[3] NumPy loop (float64, as in the seeds), timed on {args.numpy_configs} configurations")
    X64 = np.asarray(split.X_train, np.float64)
    Y64 = np.eye(C)[np.asarray(split.y_train)]
    chosen = np.linspace(0, n_models - 1, args.numpy_configs).round().astype(int)
    per_config = []
    for i in chosen:
        h = hypers[i]
        t = time.perf_counter()
        numpy_softmax_gd(X64, Y64, h.learning_rate, h.l2, h.l1, args.epochs)
        per_config.append(time.perf_counter() - t)
    t_numpy = float(np.median(per_config)) * n_models

    log("[5] float32 matmul of the same shapes")
    W_all = jnp.zeros((d, C * n_models), jnp.float32)
    matmul = jax.jit(lambda X, W: X @ W)
    t_mm, _ = timed(lambda: matmul(data.train.X, W_all), 10)
    gflops_mm = 2 * n * d * C * n_models / t_mm / 1e9
    # per model per epoch: forward X W (2ndC) and backward Xᵀ R (2ndC); elementwise work ignored
    gflops_vmap = 4 * n * d * C * n_models * args.epochs / t_vmap / 1e9
    return {
        "grid": f"softmax {n}x{d}, C={C}: 7 lambdas x {{L1,L2}} x 3 learning rates = {n_models} models, "
                f"{args.epochs} full-batch epochs, float32",
        "t_vmap_s": t_vmap, "t_vmap_all_s": t_vmap_all, "t_loop_s": t_loop, "t_loop_all_s": t_loop_all,
        "t_numpy_s": t_numpy, "numpy_note": f"median of {len(per_config)} configurations x {n_models}",
        "numpy_per_config_s": per_config, "t_matmul_s": t_mm,
        "gflops_vmap": gflops_vmap, "gflops_matmul": gflops_mm,
        "vmap_vs_loop": t_loop / t_vmap, "vmap_vs_numpy": t_numpy / t_vmap,
        "fraction_of_matmul": gflops_vmap / gflops_mm,
    }


def bench_solvers(problems, args, log):
    """Part 4: jaxreg's converged λ path vs scikit-learn's, at matched objective (in float64)."""
    rows = []
    for name, obj, X, y, kind in problems:
        lams = np.asarray(LAMBDAS)
        log(f"[4] {name} {kind.upper()}: scikit-learn ({SOLVERS[kind]})")
        tol = args.sk_tol if kind == "l2" else args.saga_tol
        t = time.perf_counter()
        sk_params = [sklearn_fit(obj, X, y, kind, lam, tol=tol, max_iter=args.sk_max_iter) for lam in lams]
        t_sk = time.perf_counter() - t
        log(f"[4] {name} {kind.upper()}: jaxreg solver")
        batch = Batch(jnp.asarray(X, jnp.float32), jnp.asarray(y))
        solve = solve_l2_path if kind == "l2" else solve_l1_path
        t_jx, _ = timed(lambda: solve(obj, batch, lams).params["W"], max(1, args.repeats - 1))
        res = solve(obj, batch, lams)
        gaps = []
        for i, lam in enumerate(lams):
            j_jx = value64(obj, {"W": res.params["W"][i]}, penalty(kind, lam), X, y)
            j_sk = value64(obj, sk_params[i], penalty(kind, lam), X, y)
            gaps.append((j_jx - j_sk) / abs(j_sk))
        rows.append({"problem": name, "penalty": kind, "n": int(X.shape[0]), "sklearn_tol": tol, "t_sklearn_s": t_sk,
                     "t_jaxreg_s": t_jx, "speedup": t_sk / t_jx, "max_rel_gap": float(max(gaps)),
                     "rel_gaps": [float(g) for g in gaps], "converged": np.asarray(res.converged).tolist()})
        log(f"    sklearn {t_sk:.1f}s  jaxreg {t_jx:.1f}s  speedup {t_sk / t_jx:.1f}x  max gap {max(gaps):.2e}")
    return rows


def markdown(report) -> str:
    g = report["grid"]
    lines = [
        "# Sweep benchmark", "",
        f"Machine: {report['machine']}; command: `{report['command']}`.", "",
        f"Grid: {g['grid']}.", "",
        "| measurement | time (s, median) | ratio |", "|---|---|---|",
        f"| (1) jaxreg vmapped sweep | {g['t_vmap_s']:.2f} | 1 |",
        f"| (2) loop of the jitted trainer | {g['t_loop_s']:.2f} | vmap_vs_loop = {g['vmap_vs_loop']:.2f} |",
        f"| (3) NumPy loop, seed style ({g['numpy_note']}) | {g['t_numpy_s']:.2f} | vmap_vs_numpy = {g['vmap_vs_numpy']:.2f} |",
        f"| (5) float32 matmul, same shapes | {g['t_matmul_s']:.4f} | (1) reaches {g['gflops_vmap']:.1f} of {g['gflops_matmul']:.1f} GFLOP/s: fraction_of_matmul = {g['fraction_of_matmul']:.2f} |",
        "", "Converged λ paths, scikit-learn vs `jaxreg.solvers` (7 λ each):", "",
        "| problem | penalty | scikit-learn tol | scikit-learn (s) | jaxreg (s) | speedup | max relative objective gap |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["solvers"]:
        lines.append(f"| {r['problem']} | {r['penalty'].upper()} | {r['sklearn_tol']:g} | {r['t_sklearn_s']:.1f} | {r['t_jaxreg_s']:.2f} | "
                     f"{r['speedup']:.1f} | {r['max_rel_gap']:.2e} |")
    lines += ["", "Summary (`results/bench_sweep.json`):", "",
              *(f"- `{k}`: {report[k]:.4g}" for k in
                ("vmap_vs_loop", "vmap_vs_numpy", "solver_vs_sklearn", "fraction_of_matmul", "max_objective_gap")
                if report[k] is not None),
              "", report["coverage"], ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m experiments.bench_sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--numpy-configs", type=int, default=6)
    ap.add_argument("--sk-tol", type=float, default=1e-8, help="scikit-learn lbfgs tolerance")
    ap.add_argument("--saga-tol", type=float, default=1e-4,
                    help="scikit-learn saga tolerance (tighter takes many minutes on MNIST)")
    ap.add_argument("--sk-max-iter", type=int, default=10000)
    ap.add_argument("--softmax-l1", action="store_true", help="also time saga on 10-class L1 (slow)")
    ap.add_argument("--quick", action="store_true", help="synthetic data, few epochs: a quick look")
    ap.add_argument("--skip-solvers", action="store_true",
                    help="time only parts 1, 2, 3, 5 (scikit-learn's saga and 10-class lbfgs take "
                         "tens of minutes at tight tolerances on this machine)")
    args = ap.parse_args(argv)
    make_out_dir(ap, args.out)
    t0 = time.perf_counter()
    log = StepLog(prefix="[bench]").log
    data = synthetic_mnist(3000, 1000) if args.quick else load_mnist(args.data_dir, verbose=False)
    if args.quick:
        args.epochs, args.repeats = 3, 2
        soft = softmax_split(data, n_train_pool=3000, n_holdout=300, n_test=500)
        binary = logistic_text_split(data, digits=(2, 3), n_train_pool=3000, n_test_pool=500)
    else:
        soft = softmax_split(data)
        binary = logistic_text_split(data, digits=(2, 3))
    grid = bench_grid(soft, args, log)
    softmax_obj = Objective("softmax", 10, fit_intercept=False)
    logistic_obj = Objective("logistic", fit_intercept=False)
    problems = [("MNIST 2 vs 3", logistic_obj, binary.X_train, binary.y_train, "l2"),
                ("MNIST 2 vs 3", logistic_obj, binary.X_train, binary.y_train, "l1"),
                ("MNIST softmax", softmax_obj, soft.X_train, soft.y_train, "l2")]
    if args.softmax_l1:
        problems.append(("MNIST softmax", softmax_obj, soft.X_train, soft.y_train, "l1"))
    solvers = [] if args.skip_solvers else bench_solvers(problems, args, log)
    t_sk = sum(r["t_sklearn_s"] for r in solvers)
    t_jx = sum(r["t_jaxreg_s"] for r in solvers)
    report = {
        "vmap_vs_loop": grid["vmap_vs_loop"], "vmap_vs_numpy": grid["vmap_vs_numpy"],
        "solver_vs_sklearn": t_sk / t_jx if solvers else None,
        "fraction_of_matmul": grid["fraction_of_matmul"],
        "max_objective_gap": max(r["max_rel_gap"] for r in solvers) if solvers else None,
        "coverage": "Solver comparison (4) skipped (--skip-solvers)." if not solvers else ("Grid timings (1, 2, 3, 5): softmax regression, 42 models. Solver comparison (4): "
                     + "; ".join(f"{r['problem']} {r['penalty'].upper()}" for r in solvers)
                     + ("" if args.softmax_l1 else "; 10-class L1 (saga) left out for time: pass --softmax-l1")
                     + ". solver_vs_sklearn is total scikit-learn time / total jaxreg time over these. "
                     "Where a gap is negative, jaxreg's objective is lower than scikit-learn's, so "
                     "scikit-learn's time is a lower bound on its time to match jaxreg."),
        "grid": grid, "solvers": solvers,
        "machine": f"{platform.processor() or platform.machine()}, {jax.local_device_count()} JAX device(s), "
                   f"jax {jax.__version__}",
        "command": "python -m experiments.bench_sweep " + " ".join(argv if argv is not None else sys.argv[1:]),
        "wall_time_s": time.perf_counter() - t0, "quick": args.quick,
    }
    write_json(Path(args.out) / "bench_sweep.json", report)
    write_text(Path(args.out) / "bench_sweep.md", markdown(report))
    print(json.dumps({k: report[k] for k in ("vmap_vs_loop", "vmap_vs_numpy", "solver_vs_sklearn",
                                             "fraction_of_matmul", "max_objective_gap", "wall_time_s")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
