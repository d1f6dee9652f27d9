"""Benchmark: one vmapped grid vs a loop of jitted fits vs a NumPy loop vs scikit-learn.

    python -m experiments.benchmarks.bench_sweep                     # ≈10 min on 2 cores: results/bench_sweep.json, .md
    python -m experiments.benchmarks.bench_sweep --smoke --synthetic --out /tmp/b   # small variant, for a look

On MNIST (the paper's softmax split, 18,000 × 785, 10 classes; and 2 vs 3): (1) ``jaxreg.sweeps`` of 7 λ
× {L1, L2} × 3 η (42 models), full-batch epochs, one jitted vmapped program; (2) the jitted trainer
in a Python loop; (3) a NumPy loop in the seeds' style (float64); (4) scikit-learn fitting the λ path
(lbfgs L2, saga L1) against ``jaxreg.solvers`` at matched objective; (5) a float32 matmul of the same
shapes. Every ratio is a ratio of medians taken in this one run."""
from __future__ import annotations

import dataclasses
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments.benchmarks.reference import SOLVERS, numpy_softmax_gd, sklearn_fit, value64
from experiments.benchmarks.timing import median_time as timed
from experiments.tables import markdown_table
from jaxreg import Batch, Objective, penalty
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.config import as_hyper_arrays
from jaxreg.data import logistic_text_split, softmax_split
from jaxreg.solvers import solve_l1_path, solve_l2_path
from jaxreg.sweep_grid import expand_grid, hyper_of
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import jitted_trainer

LAMBDAS = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)
LEARNING_RATES = (0.1, 0.3, 1.0)


@dataclasses.dataclass(frozen=True)
class BenchSweepConfig:
    """``python -m experiments.benchmarks.bench_sweep`` (``--smoke``: :func:`smoke_config`). sk_tol: scikit-learn
    lbfgs tolerance (1e-6: at 1e-8 its 10-class path alone takes tens of minutes here; matched-accuracy
    timings are bench_peers'); saga_tol: saga's (tighter takes many minutes on MNIST); softmax_l1: also time saga
    on 10-class L1 (slow); skip_solvers: time only parts 1, 2, 3, 5 (scikit-learn's saga and 10-class
    lbfgs take tens of minutes at tight tolerances here); pool: (training pool, hold-out, test) sizes."""

    epochs: int = 10
    repeats: int = 3
    numpy_configs: int = 6
    sk_tol: float = 1e-6
    saga_tol: float = 1e-4
    sk_max_iter: int = 10000
    softmax_l1: bool = False
    skip_solvers: bool = False
    pool: tuple = (20000, 2000, 2000)


def default_config() -> BenchSweepConfig:
    return BenchSweepConfig()


def smoke_config() -> BenchSweepConfig:
    return BenchSweepConfig(epochs=3, repeats=2, pool=(3000, 300, 500))


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
    grid = [("(1) jaxreg vmapped sweep", f"{g['t_vmap_s']:.2f}", "1"),
            ("(2) loop of the jitted trainer", f"{g['t_loop_s']:.2f}", f"vmap_vs_loop = {g['vmap_vs_loop']:.2f}"),
            (f"(3) NumPy loop, seed style ({g['numpy_note']})", f"{g['t_numpy_s']:.2f}",
             f"vmap_vs_numpy = {g['vmap_vs_numpy']:.2f}"),
            ("(5) float32 matmul, same shapes", f"{g['t_matmul_s']:.4f}", f"(1) reaches {g['gflops_vmap']:.1f} of "
             f"{g['gflops_matmul']:.1f} GFLOP/s: fraction_of_matmul = {g['fraction_of_matmul']:.2f}")]
    solvers = [(r["problem"], r["penalty"].upper(), f"{r['sklearn_tol']:g}", f"{r['t_sklearn_s']:.1f}",
                f"{r['t_jaxreg_s']:.2f}", f"{r['speedup']:.1f}", f"{r['max_rel_gap']:.2e}") for r in report["solvers"]]
    summary = [f"- `{k}`: {report[k]:.4g}" for k in ("vmap_vs_loop", "vmap_vs_numpy", "solver_vs_sklearn",
                                                   "fraction_of_matmul", "max_objective_gap") if report[k] is not None]
    return "\n".join([
        "# Sweep benchmark", "", f"Machine: {report['machine']}; command: `{report['command']}`.", "",
        f"Grid: {g['grid']}.", "", *markdown_table(("measurement", "time (s, median)", "ratio"), grid), "",
        *(["Converged λ paths, scikit-learn vs `jaxreg.solvers` (7 λ each):", "", *markdown_table(
            ("problem", "penalty", "scikit-learn tol", "scikit-learn (s)", "jaxreg (s)", "speedup",
             "max relative objective gap"), solvers), ""] if solvers else []),
        "Summary (`results/bench_sweep.json`):", "", *summary, "", report["coverage"], ""])


def run(out_dir, config: BenchSweepConfig, data: dict, progress) -> dict:
    """Time parts 1-5; write bench_sweep.json and bench_sweep.md; return ``{"rows", "files", "config", "timings"}``."""
    t0, args, log = time.perf_counter(), config, progress.log
    pool, hold, test = config.pool
    soft = softmax_split(data, n_train_pool=pool, n_holdout=hold, n_test=test)
    binary = logistic_text_split(data, digits=(2, 3), n_train_pool=pool, n_test_pool=test)
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
        "coverage": "Solver comparison (4) skipped (skip_solvers)." if not solvers else ("Grid timings (1, 2, 3, 5): softmax regression, 42 models. Solver comparison (4): "
                     + "; ".join(f"{r['problem']} {r['penalty'].upper()}" for r in solvers)
                     + ("" if args.softmax_l1 else "; 10-class L1 (saga) left out for time: --set softmax_l1=True")
                     + ". solver_vs_sklearn is total scikit-learn time / total jaxreg time over these. "
                     "Where a gap is negative, jaxreg's objective is lower than scikit-learn's, so "
                     "scikit-learn's time is a lower bound on its time to match jaxreg."),
        "grid": grid, "solvers": solvers,
        "machine": f"{platform.processor() or platform.machine()}, {jax.local_device_count()} JAX device(s), "
                   f"jax {jax.__version__}",
        "command": "python -m experiments.benchmarks.bench_sweep " + " ".join(sys.argv[1:]),
        "wall_time_s": time.perf_counter() - t0, "config": to_jsonable(config),
    }
    write_json(Path(out_dir) / "bench_sweep.json", report)
    write_text(Path(out_dir) / "bench_sweep.md", markdown(report))
    return {"rows": [], "files": ["bench_sweep.json", "bench_sweep.md"], "config": to_jsonable(config),
            "timings": {"total": round(report["wall_time_s"], 2)}}


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
