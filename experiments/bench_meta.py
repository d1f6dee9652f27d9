"""Benchmark of jaxreg.meta's hypergradients: cost relative to one training run, and reverse-mode
memory against the horizon K with and without √K checkpointing.

    python -m experiments.bench_meta              # MNIST softmax (18,000 x 785, 10 classes)
    python -m experiments.bench_meta --smoke      # fewer repeats, K up to 100
    python -m experiments.bench_meta --synthetic  # no MNIST needed; --set repeats=5: any config field

Cost (:func:`jaxreg.bench.hypergrad_cost`): ratios of medians over interleaved repeats
(compilation excluded) of the forward-mode hypergradient (one JVP per hyperparameter) and the
reverse-mode one (√K checkpointing) to one training run, at η = 0.3 (stable, below the grid
optimum ≈ 1.2); CPU and wall time, and the median of per-round CPU ratios ("paired").
Memory (:func:`jaxreg.bench.compiled_temp_bytes`): XLA's scratch allocation of the compiled
program (nothing is run) for forward mode, reverse mode without and with checkpointing;
mini-batch SGD (batch 500) and full-batch GD. Writes bench_meta.json and bench_meta.md.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

import jax

from experiments import common
from jaxreg import bench, meta
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.report import markdown_table
from jaxreg.data import softmax_split
from jaxreg.objective import Objective
from jaxreg.prepare import prepare_data
from jaxreg.train import TrainConfig

CONFIGS = {"minibatch500": TrainConfig(method="minibatch", batch_size=500), "full_batch": TrainConfig(method="full_batch")}


@dataclasses.dataclass(frozen=True)
class BenchMetaConfig:
    """``python -m experiments.bench_meta`` (``--smoke``: :func:`smoke_config`)."""

    cost_horizons: tuple = (100, 1000)  # mini-batch 500; repeats // 3 (at least 3) beyond K = 100
    memory_horizons: tuple = (10, 100, 1000)
    repeats: int = 11
    eta: float = 0.3


def default_config() -> BenchMetaConfig:
    return BenchMetaConfig()


def smoke_config() -> BenchMetaConfig:
    return BenchMetaConfig(cost_horizons=(100,), memory_horizons=(10, 100), repeats=3)


def markdown(out: dict) -> str:
    cost = [(k, f"{c['run_cpu_s']:.3f}", *(f"{c[m]:.2f}" for m in (
        "jvp_cost_ratio", "vjp_cost_ratio", "jvp_cost_ratio_wall", "vjp_cost_ratio_wall", "jvp_cost_ratio_paired",
        "vjp_cost_ratio_paired")), c["repeats"]) for k, c in out["cost"].items()]
    memory = [(r["config"], r["K"], *(f"{r[m + '_MiB']:.1f}" for m in ("forward", "reverse", "reverse_remat")),
               r.get("blocks", "")) for r in out["memory"]]
    return "\n".join([
        "# jaxreg.meta benchmark", "", f"Data: {out['data']} softmax, {out['n_train']} x 785, 10 classes, float32; "
        f"{out['devices']}.", "", "## Cost relative to one training run (ratios of medians, compilation excluded)", "",
        *markdown_table(("setup", "run (s CPU)", "forward / run (CPU)", "reverse+remat / run (CPU)", "forward / run (wall)",
                         "reverse+remat / run (wall)", "forward, paired", "reverse, paired", "repeats"), cost), "",
        "## Peak scratch memory (XLA temp allocation, MiB) against the horizon K", "",
        *markdown_table(("config", "K", "forward mode", "reverse, no remat", "reverse, √K remat", "remat blocks"),
                        memory)]) + "\n"


def run(out_dir, config: BenchMetaConfig, data: dict, progress) -> dict:
    """Measure; write bench_meta.json and bench_meta.md; return ``{"rows", "files", "config", "timings"}``."""
    bench.enable_compile_cache()
    obj = Objective("softmax", n_classes=10, fit_intercept=False)
    s = softmax_split(data, n_train_pool=min(20000, len(data["train_labels"])), n_test=min(2000, len(data["test_labels"])))
    td = prepare_data(obj, CONFIGS["full_batch"], s.X_train, s.y_train, s.X_holdout, s.y_holdout)
    out = {"data": meta.report.data_source(data), "n_train": int(td.train.X.shape[0]), "dtype": "float32",
           "devices": str(jax.devices()), "cost": {}, "memory": []}
    timings = {}
    with progress.step("cost", timings):
        for K in config.cost_horizons:
            vl = meta.make_val_loss(obj, CONFIGS["minibatch500"], td, None, 0, horizon=K)
            c = bench.hypergrad_cost(vl, [math.log(config.eta)], repeats=config.repeats if K <= 100 else
                                     max(3, config.repeats // 3))
            out["cost"][f"minibatch500_K{K}"] = dict(c, config="minibatch500", horizon=K)
            progress.log(f"cost K={K}: run {c['run_cpu_s']:.3f} s CPU; forward {c['jvp_cost_ratio']:.2f}x, reverse+remat "
                         f"{c['vjp_cost_ratio']:.2f}x (CPU); wall {c['jvp_cost_ratio_wall']:.2f}x, {c['vjp_cost_ratio_wall']:.2f}x")
    with progress.step("memory", timings):
        for name, cfg in CONFIGS.items():
            for K in config.memory_horizons:
                row = {"config": name, "K": K}
                for label, ck, mode in (("forward", False, "forward"), ("reverse", False, "reverse"),
                                        ("reverse_remat", True, "reverse")):
                    vl = meta.make_val_loss(obj, cfg, td, None, 0, horizon=K, checkpoint=ck)
                    t = time.perf_counter()
                    row[label + "_MiB"] = bench.compiled_temp_bytes(
                        meta.hypergrad_program, vl.as_array([0.0]), vl.args, fn=vl.fn, mode=mode,
                        eps=meta.default_fd_step(vl.dtype)) / 2**20
                    if ck:
                        row["blocks"] = f"{vl.config.n_records} x {vl.config.eval_every} epochs"
                    progress.log(f"memory {name} K={K} {label}: {row[label + '_MiB']:.1f} MiB "
                                 f"(compiled in {time.perf_counter() - t:.1f} s)")
                out["memory"].append(row)
    write_json(Path(out_dir) / "bench_meta.json", out, indent=1)
    write_text(Path(out_dir) / "bench_meta.md", markdown(out))
    return {"rows": [], "files": ["bench_meta.json", "bench_meta.md"], "config": to_jsonable(config),
            "timings": timings}


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
