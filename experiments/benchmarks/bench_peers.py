"""Benchmark: jaxreg against the strongest peers, side by side, at matched accuracy.

    python -m experiments.benchmarks.bench_peers                  # results/bench_peers.json, .md, bench_peers_scaling.png
    python -m experiments.benchmarks.bench_peers --smoke --synthetic --out /tmp/p   # a small look

Problems (no intercept, mean loss, float64 solves, so every solver solves the same problem):
2 vs 3 (the paper's text split) L2 and L1 logistic, the 10-class softmax split L2, each over the λ
path ``lambdas``. Per problem the reference optimum J*(λ) is the lowest objective any solver
reaches; each solver runs from its loosest tolerance down (``ladder``) and is timed at the first
that brings every λ within ``rel`` of J* — a first call in a fresh process (compilation included;
jaxreg with an empty and with a warm compilation cache) and warm calls (medians of ``repeats``).
A solver that never gets there within its cap is shown failing. Then the 42-model sweep against a
hand-written ``jit(vmap(lax.scan))`` and the float32 matmul roofline, and the scaling study.
"""
from __future__ import annotations

import dataclasses
import functools
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments.benchmarks import figures, peer_report, peers, timing
from jaxreg import Batch, Objective, plots
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.data import logistic_text_split, softmax_split
from jaxreg.solvers import solve_l1_path, solve_l2_path

PROBLEMS = {"2v3-l2": ("logistic", "l2", ("sklearn-lbfgs", "jaxopt-lbfgs")),
            "softmax-l2": ("softmax", "l2", ("sklearn-lbfgs", "jaxopt-lbfgs")),
            "2v3-l1": ("logistic", "l1", ("sklearn-saga", "celer", "skglm", "jaxopt-proxgrad"))}
JAX_SOLVERS = ("jaxreg", "jaxopt-lbfgs", "jaxopt-proxgrad")  # compiled: a first call with an empty and a warm cache
LADDER = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)


@dataclasses.dataclass(frozen=True)
class BenchPeersConfig:
    """``python -m experiments.benchmarks.bench_peers`` (``--smoke``: :func:`smoke_config`). cap_s: seconds a
    solver's tolerance search may take (after its first try) before it is stopped and shown
    failing; subsets: ``(problem, solver, k)``: that solver gets only the k largest λ (jaxreg is
    then timed on the same k too), for the peers that need minutes per path here;
    repeat_budget_s: warm repeats stop once a solver's calls would exceed it (at least one)."""

    problems: tuple = tuple(PROBLEMS)
    lambdas: tuple = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)
    rel: float = 1e-6
    repeats: int = 3
    repeat_budget_s: float = 20.0
    pool: tuple = (20000, 2000, 2000)
    max_iter: int = 100_000
    cap_s: float = 60.0
    subsets: tuple = (("2v3-l2", "jaxopt-lbfgs", 3), ("softmax-l2", "sklearn-lbfgs", 2), ("softmax-l2", "jaxopt-lbfgs", 2),
                      ("2v3-l1", "sklearn-saga", 1), ("2v3-l1", "skglm", 3), ("2v3-l1", "jaxopt-proxgrad", 3))
    reference_tol: tuple = (("l2", 1e-12), ("l1", 1e-10))  # jaxreg's own start for J*, per penalty
    sweep_epochs: int = 10
    scaling_models: tuple = (1, 4, 16, 64, 256, 1024)
    scaling_n: tuple = (1000, 4000, 16000, 60000)
    scaling_d: tuple = (16, 64, 256, 784)


def default_config() -> BenchPeersConfig:
    return BenchPeersConfig()


def smoke_config() -> BenchPeersConfig:
    return BenchPeersConfig(lambdas=(0.1, 0.01, 0.001), repeats=1, pool=(3000, 300, 500), cap_s=10.0,
                            subsets=(("2v3-l1", "sklearn-saga", 1),), sweep_epochs=2, scaling_models=(1, 8),
                            scaling_n=(500, 2000), scaling_d=(16, 128))


def problem_arrays(data: dict, name: str, pool) -> tuple:
    """(objective, X float64, y) of problem ``name`` (shared with the fresh processes)."""
    if PROBLEMS[name][0] == "softmax":
        s = softmax_split(data, n_train_pool=pool[0], n_holdout=pool[1], n_test=pool[2])
        return Objective("softmax", 10, fit_intercept=False), s.X_train.astype(np.float64), s.y_train
    s = logistic_text_split(data, (2, 3), n_train_pool=pool[0], n_test_pool=pool[2])
    return Objective("logistic", fit_intercept=False), s.X_train.astype(np.float64), s.y_train


def fit(solver, objective, X, y, kind, lambdas, tol, max_iter):
    """Weights (L, ...) of ``solver`` ("jaxreg" or a peer of :data:`experiments.benchmarks.peers.PEERS`)."""
    if solver == "jaxreg":
        solve = solve_l2_path if kind == "l2" else solve_l1_path
        return np.asarray(solve(objective, Batch(X, y), lambdas, tol=tol, max_iter=max_iter).params["W"])
    return peers.fit_path(solver, objective, X, y, kind, lambdas, tol=tol, max_iter=max_iter)


def fresh_first_call(solver, name, lambdas, tol, cfg, env) -> float:
    """Seconds of the first call in a new process (imports and data loading not timed)."""
    setup = ("import jax; jax.config.update('jax_enable_x64', True)\nfrom jaxreg.data import load_digits\n"
             "from experiments.benchmarks import bench_peers as B\n"
             f"data, _ = load_digits(None, synthetic={cfg['synthetic']})\n"
             f"obj, X, y = B.problem_arrays(data, {name!r}, {tuple(cfg['pool'])!r})")
    call = f"B.fit({solver!r}, obj, X, y, {PROBLEMS[name][1]!r}, {[float(x) for x in lambdas]!r}, {tol!r}, {cfg['max_iter']!r})"
    return timing.fresh_process_seconds(setup, call, env=env, cwd=str(Path(__file__).resolve().parents[2]))


def solver_subsets(name, config) -> dict:
    """{row label: (solver, k)}: every solver of the problem on its λ (the k largest), and jaxreg
    on each smaller k too (``jaxreg@k``), so every peer has a jaxreg row doing the same work."""
    L, caps = len(config.lambdas), {(p, s): k for p, s, k in config.subsets}
    out = {"jaxreg": ("jaxreg", L)}
    for s in PROBLEMS[name][2]:
        out[s] = (s, min(L, caps.get((name, s), L)))
    for k in sorted({k for _, k in out.values() if k < L}):
        out[f"jaxreg@{k}"] = ("jaxreg", k)
    return out


def compare_problem(name, data, config, synthetic, progress) -> list:
    """Rows of one problem: each solver's loosest matching tolerance, its gap to J*, its first-call
    (fresh process) and warm times."""
    _, kind, _ = PROBLEMS[name]
    obj, X, y = problem_arrays(data, name, config.pool)
    lams, cfg = np.asarray(config.lambdas), dict(pool=config.pool, max_iter=config.max_iter, synthetic=synthetic)
    rows = []
    with jax.enable_x64(True):
        ref_tol = dict(config.reference_tol)[kind]
        ref = peers.objectives(obj, fit("jaxreg", obj, X, y, kind, lams, ref_tol, config.max_iter), X, y, kind, lams)
        matches = {}
        for label, (solver, k) in solver_subsets(name, config).items():
            call = functools.partial(fit, solver, obj, X, y, kind, lams[:k], max_iter=config.max_iter)
            matches[label] = peers.match_tolerance(lambda tol: call(tol=tol),
                                                   lambda W: peers.objectives(obj, W, X, y, kind, lams[:k]),
                                                   ref[:k], LADDER, config.rel, config.cap_s)
        for label, m in matches.items():  # J*: the lowest objective any solver reached, per λ
            ref[:len(m["values"])] = np.minimum(ref[:len(m["values"])], m["values"])
        for label, (solver, k) in solver_subsets(name, config).items():
            m = matches[label]
            gap = float(np.max(peers.relative_gap(m["values"], ref[:k])))
            row = dict(problem=name, solver=label, n_lambdas=k, lambdas=lams[:k].tolist(), tol=m["tol"], gap=gap,
                       tolerances_tried=m["tried"], status="ok" if m["tol"] is not None and gap <= config.rel else "failed")
            if row["status"] == "failed":
                row["note"] = (f"no tolerance of {LADDER[0]:g}..{LADDER[-1]:g} within {config.rel:g} of J* in "
                               f"{config.cap_s:g} s" if m["tol"] is None else "matched its own start, not the final J*")
                rows.append(row)
                progress.log(f"{name} {label}: FAILED to match (best gap {gap:.1e})")
                continue
            call = functools.partial(fit, solver, obj, X, y, kind, lams[:k], m["tol"], config.max_iter)
            n = max(1, min(config.repeats, int(config.repeat_budget_s / max(m["seconds"], 1e-9))))
            row["warm_s"], row["warm_samples_s"] = timing.median_seconds(call, n, warmup=0)
            with tempfile.TemporaryDirectory(prefix="jaxreg-xla-") as cache:  # empty, then warm
                env = {"JAXREG_XLA_CACHE": cache}
                first = fresh_first_call(solver, name, lams[:k], m["tol"], cfg, env)
                row["cold_empty_cache_s"] = first if solver in JAX_SOLVERS else None
                row["cold_s"] = fresh_first_call(solver, name, lams[:k], m["tol"], cfg, env) if solver in JAX_SOLVERS else first
            rows.append(row)
            progress.log(f"{name} {label}: tol {m['tol']:g}, gap {gap:.1e}, first call {row['cold_s']:.2f} s"
                         + (f" (empty cache {first:.2f} s)" if solver in JAX_SOLVERS else "")
                         + f", warm {row['warm_s']:.3f} s")
    return rows


def compare_sweep(data, config, progress) -> dict:
    """The 42-model grid of bench_sweep (7 λ × L1/L2 × 3 η, full batch): jaxreg's sweep against the
    hand-written program and the float32 matmul roofline of the same shapes."""
    from jaxreg.sweep_grid import expand_grid, hyper_of
    from jaxreg.sweeps import sweep
    from jaxreg.config import Hyper, TrainConfig
    from jaxreg.prepare import prepare_data

    s = softmax_split(data, n_train_pool=config.pool[0], n_holdout=config.pool[1], n_test=config.pool[2])
    obj = Objective("softmax", 10, fit_intercept=False)
    cfg = TrainConfig("full_batch", config.sweep_epochs, record_history=False)
    td = prepare_data(obj, cfg, s.X_train, s.y_train)
    grid = {"penalty": ["l1", "l2"], "lam": list(config.lambdas), "learning_rate": [0.1, 0.3, 1.0]}
    hypers = [hyper_of(c, Hyper()) for c in expand_grid(grid, len(s.y_train))[2]]
    col = lambda f: jnp.asarray([getattr(h, f) for h in hypers], jnp.float32)  # noqa: E731
    X, Y = td.train.X, jax.nn.one_hot(td.train.y, 10, dtype=jnp.float32)
    t_jx, _ = timing.median_seconds(lambda: sweep(obj, td, cfg, grid, progress=False).flat.params["W"], config.repeats)
    t_hw, _ = timing.median_seconds(lambda: peers.handwritten_sweep(col("learning_rate"), col("l2"), col("l1"), X, Y,
                                                            n_epochs=config.sweep_epochs), config.repeats)
    (n, d), G = X.shape, len(hypers)
    flops = 4.0 * n * d * 10 * G * config.sweep_epochs  # forward XW and backward XᵀR per model and epoch
    roof = timing.matmul_gflops(n, d, 10 * G)
    out = dict(n_models=G, n=n, d=d, epochs=config.sweep_epochs, jaxreg_s=t_jx, handwritten_s=t_hw,
               sweep_vs_handwritten=t_hw / t_jx, gflops=flops / t_jx / 1e9, matmul_gflops=roof,
               fraction_of_matmul=flops / t_jx / 1e9 / roof)
    progress.log(f"sweep: jaxreg {t_jx:.2f} s, hand-written {t_hw:.2f} s (ratio {t_hw / t_jx:.2f}); "
                 f"{out['gflops']:.1f} of {roof:.1f} GFLOP/s")
    return out


def scaling(data, config, progress) -> dict:
    """Seconds per model-epoch as the grid grows, per epoch as n grows and as d grows (a random
    projection of the pixels, as seed 000 does), each beside the float32 matmul roofline of the
    same shapes (XW and XᵀR at matmul speed)."""
    from jaxreg.data import project, random_projection
    from jaxreg.engine import stack_hypers, train_models
    from jaxreg.config import Hyper, TrainConfig
    from jaxreg.prepare import prepare_data

    images, labels = data["train_images"], data["train_labels"]
    obj, epochs = Objective("softmax", 10, fit_intercept=False), 3
    cfg = TrainConfig("full_batch", epochs, record_history=False)

    def point(n, d, G):
        X = images[:n].reshape(n, -1).astype(np.float32) / 255
        if d < X.shape[1]:
            X = project(random_projection(jax.random.PRNGKey(2), X.shape[1], d), X)[0].astype(np.float32)
        td = prepare_data(obj, cfg, X, labels[:n])
        hypers = stack_hypers(G, Hyper(learning_rate=0.1), l2=np.geomspace(1e-4, 1e-1, G))
        t, _ = timing.median_seconds(lambda: train_models(obj, cfg, td, hypers).result.params["W"], config.repeats)
        roof = 4.0 * n * d * 10 * G * epochs / (timing.matmul_gflops(n, d, 10 * G) * 1e9)
        progress.log(f"scaling n={n} d={d} models={G}: {t:.3f} s ({roof / t:.0%} of the matmul roofline)")
        return dict(n=n, d=d, models=G, seconds=t, roofline_s=roof, epochs=epochs)

    n0 = min(4000, len(labels))
    return {"models": [point(n0, 784, G) for G in config.scaling_models],
            "n": [point(min(n, len(labels)), 784, 16) for n in config.scaling_n],
            "d": [point(n0, d, 16) for d in config.scaling_d]}


def contraction(data, config, progress) -> dict:
    """v0.1's finding in this harness: the closed-form gradient's Xᵀr as ``X.T @ r`` (v0.1),
    as ``(rᵀX)ᵀ`` (now, :func:`jaxreg.grads.transpose_times`) and ``jax.grad``'s, one binary model
    and a 42-model grid on 2 vs 3 (float32)."""
    _, X, _ = problem_arrays(data, "2v3-l2", config.pool)
    out = {f"{name}_{form}_s": s for name, G in (("single", None), ("grid", 42))
           for form, s in timing.gradient_contraction_seconds(X.astype(np.float32), G, config.repeats).items()}
    progress.log("contraction: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in out.items()))
    return out


def run(out_dir, config: BenchPeersConfig, data: dict, progress) -> dict:
    """Measure; write bench_peers.json, bench_peers.md, bench_peers_scaling.png."""
    import os
    import platform

    unknown = set(config.problems) - set(PROBLEMS)
    if unknown:
        raise ValueError(f"config.problems must be among {tuple(PROBLEMS)}, got {sorted(unknown)}")
    t0, load = time.perf_counter(), os.getloadavg()
    synthetic = len(data["train_labels"]) != 60000
    timings, rows = {}, []
    for name in config.problems:
        with progress.step(f"{name}: matched-accuracy paths", timings):
            rows += compare_problem(name, data, config, synthetic, progress)
    with progress.step("sweep vs hand-written", timings):
        sweep_out = compare_sweep(data, config, progress)
    with progress.step("scaling", timings):
        scale = scaling(data, config, progress)
    with progress.step("gradient contraction", timings):
        contract = contraction(data, config, progress)
    out = dict(peer_report.summary(rows, sweep_out), rows=rows, sweep=sweep_out, scaling=scale, contraction=contract,
               scaling_note=timing.scaling_note(scale), definitions=peer_report.DEFINITIONS, config=to_jsonable(config),
               command="python -m experiments.benchmarks.bench_peers " + " ".join(sys.argv[1:]), load=[round(x, 2) for x in load],
               machine=f"{platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}", synthetic=synthetic,
               wall_s=time.perf_counter() - t0)
    write_json(Path(out_dir) / "bench_peers.json", out)
    write_text(Path(out_dir) / "bench_peers.md", peer_report.markdown(out))
    files = plots.save_figures(out_dir, {"bench_peers_scaling.png": figures.scaling_figure(scale)})
    return {"rows": [], "files": ["bench_peers.json", "bench_peers.md", *files], "config": to_jsonable(config),
            "timings": timings}


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
