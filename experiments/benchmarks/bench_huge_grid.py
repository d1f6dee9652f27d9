"""Benchmark: a 10⁵-configuration sweep on small data in bounded memory (peak RSS vs memory_budget).

    python -m experiments.benchmarks.bench_huge_grid                       # ≈2 min on 2 cores: results/bench_huge_grid.json, .md
    python -m experiments.benchmarks.bench_huge_grid --smoke --out /tmp/b  # 10⁴ configurations, for a look

A logistic grid (learning rate × λ₂ × seed) on 200 × 10 synthetic rows, full-batch epochs, swept with
``keep_history=False`` under several ``memory_budget`` values, and once keeping the history. Each run is
a fresh interpreter that first runs a one-model sweep (imports, XLA's start-up, one compile) and reads
its resident memory (``VmRSS``), then sweeps the grid and reads the peak (``VmHWM``): the growth is
what the grid costs. The stated bound, checked for every run:

    growth ≤ memory_budget + result bytes + per_config_kib · n_configs + fixed_mib

with per_config_kib = 0.6 (the grid's Python bookkeeping: a dict and a validated Hyper per
configuration, measured alone by the ``bookkeeping`` run) and fixed_mib = 40 (the grid program's
compile and XLA's buffers, measured by a 1,000-configuration run at the smallest budget).
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from experiments import common
from experiments.tables import markdown_table
from jaxreg.atomic import write_json, write_text

MIB = 2**20


@dataclasses.dataclass(frozen=True)
class BenchHugeGridConfig:
    """``python -m experiments.benchmarks.bench_huge_grid`` (``--smoke``: :func:`smoke_config`). n_configs: grid
    size (n_lr × n_l2 × seeds); budgets_mib: the memory_budget values (MiB) swept without history;
    history_budget_mib: one more run keeping the history; per_config_kib, fixed_mib: the constants of
    the stated bound (module docstring); n_train, n_features, n_epochs, eval_every: the small problem."""

    n_configs: int = 100_000
    n_lr: int = 50
    n_l2: int = 20
    budgets_mib: tuple = (4, 16, 64, 256)
    history_budget_mib: int = 64
    per_config_kib: float = 0.6
    fixed_mib: float = 40.0
    n_train: int = 200
    n_features: int = 10
    n_epochs: int = 20
    eval_every: int = 5


def default_config() -> BenchHugeGridConfig:
    return BenchHugeGridConfig()


def smoke_config() -> BenchHugeGridConfig:
    return BenchHugeGridConfig(n_configs=10_000, budgets_mib=(4, 64), history_budget_mib=16)


def memory_mib() -> tuple:
    """(resident, peak resident) of this process in MiB, from /proc/self/status."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return tuple(int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


def problem(cfg: BenchHugeGridConfig):
    import numpy as np

    from jaxreg.objective import Objective
    from jaxreg.config import TrainConfig
    from jaxreg.prepare import prepare_data

    rng = np.random.default_rng(0)
    X = rng.normal(size=(cfg.n_train, cfg.n_features)).astype(np.float32)
    y = (X @ rng.normal(size=cfg.n_features) + rng.normal(size=cfg.n_train) > 0).astype(np.float32)
    obj = Objective("logistic")
    tcfg = TrainConfig(n_epochs=cfg.n_epochs, eval_every=cfg.eval_every)
    data = prepare_data(obj, tcfg, X, y, X[:50] + 0.1, y[:50])
    seeds = cfg.n_configs // (cfg.n_lr * cfg.n_l2)
    grid = {"learning_rate": np.geomspace(1e-3, 10.0, cfg.n_lr).tolist(),
            "l2": np.geomspace(1e-6, 1.0, cfg.n_l2).tolist(), "seed": list(range(seeds))}
    return obj, tcfg, data, grid


def child(args: dict) -> dict:
    """One measurement, in this (fresh) interpreter: ``args`` = the config's fields, ``budget_mib``,
    ``keep_history``; or ``bookkeeping=True``: the grid's expansion and validation alone."""
    import time

    import jax

    from jaxreg.sweeps import sweep

    cfg = BenchHugeGridConfig(**{k: tuple(v) if k == "budgets_mib" else v for k, v in args["config"].items()})
    if args.get("n_configs"):
        cfg = dataclasses.replace(cfg, n_configs=args["n_configs"])
    obj, tcfg, data, grid = problem(cfg)
    sweep(obj, data, tcfg, {"learning_rate": [0.1]}, progress=False)  # warm: imports, start-up, a compile
    before = memory_mib()[0]
    t = time.perf_counter()
    if args.get("bookkeeping"):  # what sweep keeps per configuration before training: as sweep does it
        from jaxreg.config import Hyper
        from jaxreg.prepare import check_hyper
        from jaxreg.sweep_grid import expand_grid, hyper_of

        base = check_hyper(Hyper(), tcfg, data.train.X.dtype)
        axes, values, configs = expand_grid(grid, data.train.X.shape[0], tuple(base.extra))
        hypers = [check_hyper(hyper_of(c, base), tcfg, data.train.X.dtype) for c in configs]
        n, result_mib, chunk = len(hypers), 0.0, None
    else:
        res = sweep(obj, data, tcfg, grid, memory_budget=args["budget_mib"] * MIB, keep_history=args["keep_history"],
                    progress=False)
        n = len(res.configs)
        result_mib = sum(a.nbytes for a in jax.tree_util.tree_leaves((res.flat, res.final))) / MIB
        chunk = res.chunk_sizes[None]
    wall = time.perf_counter() - t
    now, peak = memory_mib()
    return dict(n_configs=n, budget_mib=args.get("budget_mib"), keep_history=args.get("keep_history"),
                bookkeeping=bool(args.get("bookkeeping")), chunk=chunk, rss_before_mib=round(before, 1),
                peak_mib=round(peak, 1), growth_mib=round(peak - before, 1), result_mib=round(result_mib, 2), wall_s=round(wall, 2),
                models_per_s=round(n / wall, 1))


def measure(cfg: BenchHugeGridConfig, **args) -> dict:
    code = ("import json, sys; from experiments.benchmarks.bench_huge_grid import child; "
            "print('RESULT', json.dumps(child(json.loads(sys.argv[1]))))")
    payload = json.dumps({"config": dataclasses.asdict(cfg), **args})
    proc = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.split("RESULT", 1)[1])


def run(out_dir, config: BenchHugeGridConfig, data, progress) -> dict:
    """``data`` is not used (the problem is synthetic and small: the point is the grid's size)."""
    import os

    from jaxreg.layout import model_bytes

    obj, tcfg, small, grid = problem(config)
    per_model = model_bytes(obj, tcfg, small)
    runs = []
    with progress.step("bookkeeping"):
        book = measure(config, bookkeeping=True)
    with progress.step("fixed cost: 1,000 configurations"):
        small_run = measure(config, n_configs=1000, budget_mib=min(config.budgets_mib), keep_history=False)
    fixed = small_run["growth_mib"] - small_run["budget_mib"] - small_run["result_mib"]
    for budget, keep in [(b, False) for b in config.budgets_mib] + [(config.history_budget_mib, True)]:
        with progress.step(f"budget {budget} MiB, keep_history={keep}"):
            r = measure(config, budget_mib=budget, keep_history=keep)
        bound = budget + r["result_mib"] + config.per_config_kib * 1024 * r["n_configs"] / MIB + config.fixed_mib
        r.update(bound_mib=round(bound, 1), within_bound=r["growth_mib"] <= bound,
                 chunk_bytes_estimate_mib=round(r["chunk"][0] * per_model / MIB, 1))
        runs.append(r)
        progress.log(f"{r['n_configs']} configs: growth {r['growth_mib']} MiB (bound {r['bound_mib']}), "
                     f"{r['wall_s']} s, {r['models_per_s']} models/s")
    per_config = book["growth_mib"] * MIB / book["n_configs"]
    out = {"config": dataclasses.asdict(config), "model_bytes": per_model, "bookkeeping": book,
           "bookkeeping_bytes_per_config": round(per_config, 1), "fixed_run": small_run,
           "fixed_mib_measured": round(fixed, 1), "runs": runs, "all_within_bound": all(r["within_bound"] for r in runs)}
    rows = [[r["budget_mib"], r["keep_history"], r["chunk"][0], r["chunk"][1], r["chunk_bytes_estimate_mib"],
             r["result_mib"], r["growth_mib"], r["bound_mib"], "yes" if r["within_bound"] else "NO", r["wall_s"],
             r["models_per_s"]] for r in runs]
    md = (f"# {config.n_configs:,} configurations in bounded memory\n\n`python -m experiments.benchmarks.bench_huge_grid`: a "
          f"logistic sweep (learning rate × λ₂ × seed) on {config.n_train} × {config.n_features} rows, "
          f"{config.n_epochs} full-batch epochs, a record every {config.eval_every}. Growth = peak RSS − RSS after a "
          f"warm one-model sweep, each run in a fresh interpreter. Stated bound: growth ≤ memory_budget + result "
          f"bytes + {config.per_config_kib} KiB per configuration + {config.fixed_mib:g} MiB. Measured: the grid's "
          f"Python bookkeeping alone (expansion, validation) {per_config:.0f} bytes per configuration; a "
          f"1,000-configuration run {fixed:.1f} MiB beyond its budget and result (the compile, XLA's buffers).\n\n"
          + "\n".join(markdown_table(["memory_budget (MiB)", "keep_history", "chunk", "chunks", "chunk estimate (MiB)",
                                      "result (MiB)", "growth (MiB)", "bound (MiB)", "within", "wall (s)", "models/s"],
                                     rows))
          + "\n")
    os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, "bench_huge_grid.json"), out)
    write_text(os.path.join(out_dir, "bench_huge_grid.md"), md)
    table = [dict(experiment="bench_huge_grid", metric=f"peak RSS growth (MiB), {r['n_configs']} configs, budget "
                  f"{r['budget_mib']} MiB, history {r['keep_history']}", paper=None, jaxreg=r["growth_mib"]) for r in runs]
    return {"rows": table, "files": ["bench_huge_grid.json", "bench_huge_grid.md"], "config": dataclasses.asdict(config),
            "timings": {f"budget_{r['budget_mib']}_{r['keep_history']}": r["wall_s"] for r in runs}}


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
