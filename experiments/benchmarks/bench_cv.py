"""Benchmark: scikit-learn's LogisticRegressionCV against jaxreg's, whose fit solves every fold × C
× l1_ratio (and the refit candidates) in one batched call; the straggler cost of a vmapped
while_loop; a cross-validated SGD sweep (η × λ × folds in one program) with its figures.

    python -m experiments.benchmarks.bench_cv                 # MNIST, < 10 min on 2 cores: results/bench_cv.json, .md, 2 PNGs
    python -m experiments.benchmarks.bench_cv --smoke         # fewer rows and Cs, a minute or two
    python -m experiments.benchmarks.bench_cv --set softmax_rows=18000   # any config field

Problems (``LogisticRegressionCV(Cs=10, cv=5)``, the same StratifiedKFold(5) splitter object for
both): MNIST 2 vs 3 with L2 (scikit-learn lbfgs) and L1 (scikit-learn saga; jaxreg FISTA), and the
paper's 10-class softmax split with L2 (lbfgs; multinomial). Wall time includes compilation
(jaxreg's first fit in the process; its second, compiled, fit is reported apart). scikit-learn's
share is capped by the row counts in the config (stated in the output), the same rows for both.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np

from experiments import common
from experiments.tables import markdown_table
from jaxreg import Objective, plots
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.cv import cross_validate
from jaxreg.data import logistic_text_split, softmax_split
from jaxreg.solvers.path import lanes, solve_grid, straggler_fraction
from jaxreg.config import TrainConfig
from jaxreg.prepare import prepare_data

PROBLEMS = ("mnist_2v3_l2", "mnist_2v3_l1", "mnist_softmax_l2")


@dataclasses.dataclass(frozen=True)
class BenchCVConfig:
    """``python -m experiments.benchmarks.bench_cv`` (``--smoke``: :func:`smoke_config`). Cs, folds: the CV
    grid; tol: both sides' tolerance (scikit-learn's default 1e-4); sk_max_iter: scikit-learn's
    iteration cap (its default 100 stops lbfgs short at large C); binary_rows, l1_rows,
    softmax_rows: rows of the 2-vs-3 L2, 2-vs-3 L1 (saga is slow) and softmax problems given to
    both (0 = all of the split); dtype: jaxreg's precision; n_blocks:
    jaxreg's warm-started lanes per path; straggler, sgd_cv: run those parts
    (straggler_rows_for_2: the largest problem also timed with 2 lanes per fold)."""

    problems: tuple = PROBLEMS
    Cs: int = 10
    folds: int = 5
    tol: float = 1e-4
    sk_max_iter: int = 1000
    jx_max_iter: int = 2000
    binary_rows: int = 0
    l1_rows: int = 1000
    softmax_rows: int = 4000
    dtype: str = "float32"
    n_blocks: int = 1
    straggler: bool = True
    straggler_rows_for_2: int = 4005  # also time 2 lanes per fold up to this many rows
    sgd_cv: bool = True
    sgd_epochs: int = 10
    pool: tuple = (20000, 2000, 2000)


def default_config() -> BenchCVConfig:
    return BenchCVConfig()


def smoke_config() -> BenchCVConfig:
    return BenchCVConfig(Cs=4, folds=3, binary_rows=1200, l1_rows=600, softmax_rows=1200, sk_max_iter=300,
                         sgd_epochs=3, pool=(6000, 600, 600))


def load(data: dict, config: BenchCVConfig) -> dict:
    """{problem: (X (n, 784) float64, y int labels, penalty)} with the rows the config allows."""
    pool, hold, test = config.pool
    binary = logistic_text_split(data, digits=(2, 3), n_train_pool=pool, n_test_pool=test, bias_feature=False)
    soft = softmax_split(data, n_train_pool=pool, n_holdout=hold, n_test=test, bias_feature=False)
    rows = {"mnist_2v3_l2": config.binary_rows, "mnist_2v3_l1": config.l1_rows, "mnist_softmax_l2": config.softmax_rows}
    out = {}
    for name in config.problems:
        split = binary if name.startswith("mnist_2v3") else soft
        X = np.concatenate([split.X_train, split.X_holdout]).astype(np.float64)
        y = np.concatenate([split.y_train, split.y_holdout]).astype(np.int64)
        n = rows[name] or len(y)
        out[name] = (X[:n], y[:n], name.rsplit("_", 1)[1])
    return out


def _cv_score(est, C):
    """Mean fold score at C (the estimator's simplified-layout scores_: folds × l1_ratios × Cs)."""
    return float(np.mean(est.scores_, axis=0)[0, list(est.Cs_).index(C)])


def compare(name, X, y, penalty, config, log) -> dict:
    """One problem: jaxreg's LogisticRegressionCV (cold, then compiled) and scikit-learn's."""
    from sklearn import linear_model
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold

    from jaxreg.sklearn import LogisticRegressionCV

    folds = StratifiedKFold(config.folds)
    kw = dict(Cs=config.Cs, cv=folds, tol=config.tol)
    ours = LogisticRegressionCV(penalty=penalty, max_iter=config.jx_max_iter, dtype=config.dtype,
                                n_blocks=config.n_blocks, **kw)
    log(f"{name}: jaxreg LogisticRegressionCV on {X.shape[0]} x {X.shape[1]}, {len(np.unique(y))} classes")
    t = time.perf_counter()
    ours.fit(X, y)
    jx_s = time.perf_counter() - t
    t = time.perf_counter()
    ours.fit(X, y)
    jx_warm = time.perf_counter() - t
    solver = "saga" if penalty == "l1" else "lbfgs"
    log(f"{name}: jaxreg {jx_s:.1f}s (compiled: {jx_warm:.1f}s); scikit-learn ({solver})")
    theirs = linear_model.LogisticRegressionCV(l1_ratios=(1.0 if penalty == "l1" else 0.0,), solver=solver,
                                               max_iter=config.sk_max_iter, scoring="accuracy",
                                               use_legacy_attributes=False, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        t = time.perf_counter()
        theirs.fit(X, y)
        sk_s = time.perf_counter() - t
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    sk_C, jx_C = float(theirs.C_), float(ours.C_)
    row = {"name": name, "sklearn_s": sk_s, "jaxreg_s": jx_s, "speedup": sk_s / jx_s, "sklearn_C": sk_C,
           "jaxreg_C": jx_C, "same_C": bool(np.isclose(sk_C, jx_C, rtol=1e-12)),
           "cv_score_gap": abs(_cv_score(ours, jx_C) - _cv_score(theirs, sk_C)),
           "sklearn_cv_score": _cv_score(theirs, sk_C), "jaxreg_cv_score": _cv_score(ours, jx_C),
           "max_fold_score_gap": float(np.max(np.abs(ours.scores_ - theirs.scores_))),
           "jaxreg_compiled_s": jx_warm, "speedup_compiled": sk_s / jx_warm,
           "n": int(X.shape[0]), "d": int(X.shape[1]), "classes": int(len(np.unique(y))), "penalty": penalty,
           "sklearn_solver": solver, "sklearn_convergence_warnings": unconverged,
           "jaxreg_max_iter_used": int(np.max(ours.n_iter_)), "sklearn_max_iter_used": int(np.max(theirs.n_iter_))}
    log(f"{name}: scikit-learn {sk_s:.1f}s; speedup {row['speedup']:.1f}x; C {sk_C:.4g} vs {jx_C:.4g}; "
        f"CV score gap {row['cv_score_gap']:.2e}")
    return row


def straggler(name, X, y, config, log) -> dict:
    """The L2 fold × C grid of one problem solved (a) cold, every (fold, C) a member of one
    vmapped while_loop, (b) in warm-started lanes (1, and 2 for the smaller problem, per fold
    path). Wall time of the first
    call (with compilation) and of a second, compiled call; the share of member-iterations spent
    frozen (waiting for the slowest member or lane)."""
    from sklearn.model_selection import StratifiedKFold

    from jaxreg import Batch

    Cs, K = np.logspace(-4, 4, config.Cs), len(np.unique(y))
    rows = np.zeros((config.folds, len(y)), bool)
    for k, (tr, _) in enumerate(StratifiedKFold(config.folds).split(X, y)):
        rows[k, tr] = True
    lam = 1.0 / (Cs[None, :] * rows.sum(axis=1)[:, None])
    obj = Objective("softmax", K) if K > 2 else Objective("logistic")
    batch = Batch(X.astype(config.dtype), y if K > 2 else y.astype(config.dtype), np.ones(len(y), config.dtype))
    out = {}
    layouts = {config.Cs, 1} | ({2} if len(y) <= config.straggler_rows_for_2 else set())
    for B in sorted(layouts & set(range(1, config.Cs + 1)), reverse=True):
        def run():
            return solve_grid(obj, batch, lam, [0.0], member_weights=rows, n_blocks=B, tol=config.tol,
                              max_iter=config.jx_max_iter, dtype=config.dtype)
        t = time.perf_counter()
        res = run()
        first = time.perf_counter() - t
        t = time.perf_counter()
        run()
        wall = time.perf_counter() - t
        it = np.asarray(res.n_iter)[:, 0]  # (folds, Cs)
        per_lane = np.stack([it[:, tasks].sum(axis=1) for tasks in lanes(1.0 / Cs, B)[1]], axis=1)  # (folds, B)
        key = "cold_all_Cs_at_once" if B == config.Cs else f"lanes_{B}_per_fold"
        out[key] = {"lanes": int(per_lane.size), "wall_s": wall, "first_call_s": first,
                    "iterations_total": int(it.sum()), "loop_iterations": int(per_lane.max()),
                    "straggler_fraction": straggler_fraction(per_lane), "converged": bool(np.all(res.converged))}
        log(f"straggler {name}: {key}: {wall:.2f}s compiled ({first:.1f}s first), {out[key]['loop_iterations']} "
            f"loop iterations, waiting {100 * out[key]['straggler_fraction']:.0f}%")
    return out


def sgd_cv(X, y, config, out_dir, log) -> tuple[dict, list]:
    """Mini-batch SGD, η × λ (L2) × folds in one program (jaxreg.cv), with the CV curve and the
    η × λ heatmap."""
    obj = Objective("logistic")
    cfg = TrainConfig("minibatch", config.sgd_epochs, batch_size=100, record_history=False)
    data = prepare_data(obj, cfg, X.astype(np.float32), y.astype(np.float32))
    grid = {"learning_rate": [0.03, 0.1, 0.3, 1.0], "lam": list(np.logspace(-1, -5, 7)), "l1_ratio": [0.0]}
    t = time.perf_counter()
    cvr = cross_validate(obj, data, cfg, grid, folds=config.folds, progress=False)
    wall = time.perf_counter() - t
    best, one = cvr.select(), cvr.select(rule="1se")
    figs = plots.cv_figures(cvr, lam_axis="lam", row_axis="learning_rate",
                            title=f"MNIST 2 vs 3, {config.folds}-fold CV of mini-batch SGD ({config.sgd_epochs} epochs)")
    names = {"cv_curve": "bench_cv_curve.png", "heatmap": "bench_cv_heatmap.png"}
    files = plots.save_figures(out_dir, {names[k]: f for k, f in figs.items()})
    log(f"sgd cv: {len(cvr.sweep.configs)} models in {wall:.1f}s; best {best.config}, 1se {one.config}")
    return {"models": len(cvr.sweep.configs), "wall_s": wall, "epochs": config.sgd_epochs, "batch_size": 100,
            "best": {**best.config, "mean": best.mean, "se": best.se},
            "one_se": {**one.config, "mean": one.mean, "se": one.se}}, files


def markdown(report) -> str:
    rows = [(p["name"], f"{p['n']}x{p['d']}", p["sklearn_solver"], f"{p['sklearn_s']:.1f}", f"{p['jaxreg_s']:.1f}",
             f"{p['jaxreg_compiled_s']:.1f}", f"{p['speedup']:.1f}", f"{p['sklearn_C']:.4g}", f"{p['jaxreg_C']:.4g}",
             p["same_C"], f"{p['cv_score_gap']:.1e}") for p in report["problems"]]
    lines = ["# Cross-validation benchmark", "", f"Machine: {report['machine']}; load before/after: "
             f"{report['load_before']} / {report['load_after']}; command: `{report['command']}`.", "",
             report["settings"], "", *markdown_table(
                 ("problem", "n x d", "scikit-learn", "scikit-learn (s)", "jaxreg (s)", "jaxreg compiled (s)",
                  "speedup", "sklearn C", "jaxreg C", "same C", "CV score gap"), rows), "",
             f"`min_speedup` = {report['min_speedup']:.2f}.", ""]
    if report.get("straggler"):
        st = [(p, k, v["lanes"], f"{v['wall_s']:.2f}", f"{v['first_call_s']:.2f}", v["loop_iterations"],
               v["iterations_total"], f"{v['straggler_fraction']:.2f}")
              for p, layouts in report["straggler"].items() for k, v in layouts.items()]
        lines += ["Straggler cost (L2, folds x Cs, in one solve_grid call):", "", *markdown_table(
            ("problem", "layout", "lanes", "compiled (s)", "first call (s)", "loop iterations", "member iterations",
             "waiting share"), st), ""]
    if report.get("sgd_cv"):
        s = report["sgd_cv"]
        lines += [f"SGD cross-validation: {s['models']} models (η × λ × folds) in one program, {s['wall_s']:.1f}s; "
                  f"best {s['best']}, one-SE {s['one_se']}.", ""]
    return "\n".join(lines)


def run(out_dir, config: BenchCVConfig, data: dict, progress) -> dict:
    """Every part; writes bench_cv.json, bench_cv.md and the two figures."""
    t0, log = time.perf_counter(), progress.log
    load_before = os.getloadavg()[0]
    problems = load(data, config)
    rows = [compare(name, X, y, pen, config, log) for name, (X, y, pen) in problems.items()]
    files = ["bench_cv.json", "bench_cv.md"]
    report = {"problems": rows, "min_speedup": min(r["speedup"] for r in rows)}
    if config.straggler:
        report["straggler"] = {name: straggler(name, *problems[name][:2], config, log)
                               for name in ("mnist_2v3_l2", "mnist_softmax_l2") if name in problems}
    if config.sgd_cv and "mnist_2v3_l2" in problems:
        report["sgd_cv"], figs = sgd_cv(*problems["mnist_2v3_l2"][:2], config, out_dir, log)
        files += figs
    report.update(
        settings=(f"LogisticRegressionCV(Cs={config.Cs}, cv=StratifiedKFold({config.folds})), tol={config.tol} on both "
                  f"sides; scikit-learn max_iter={config.sk_max_iter} (its default 100 stops lbfgs early at large C), "
                  f"float64; jaxreg dtype={config.dtype}, n_blocks={config.n_blocks}, max_iter={config.jx_max_iter}. "
                  f"scikit-learn's share is capped by rows: "
                  + ", ".join(f"{r['name']} {r['n']} rows" for r in rows) + " (the same rows for both)."),
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}",
        load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2),
        command="python -m experiments.benchmarks.bench_cv " + " ".join(sys.argv[1:]),
        wall_time_s=time.perf_counter() - t0, config=to_jsonable(config))
    write_json(Path(out_dir) / "bench_cv.json", report)
    write_text(Path(out_dir) / "bench_cv.md", markdown(report))
    return {"rows": [], "files": files, "config": to_jsonable(config), "timings": {"total": round(report["wall_time_s"], 2)}}


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
