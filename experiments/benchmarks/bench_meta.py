"""Benchmark of jaxreg.meta's hypergradients: cost relative to one training run, and reverse-mode
memory against the horizon K with and without √K checkpointing.

    python -m experiments.benchmarks.bench_meta              # MNIST softmax (18,000 x 785, 10 classes)
    python -m experiments.benchmarks.bench_meta --smoke      # fewer repeats, K up to 100
    python -m experiments.benchmarks.bench_meta --synthetic  # no MNIST needed; --set repeats=5: any config field

Cost (:func:`experiments.benchmarks.timing.hypergrad_cost`): ratios of medians over interleaved repeats
(compilation excluded) of the forward-mode hypergradient (one JVP per hyperparameter) and the
reverse-mode one (√K checkpointing) to one training run, at η = 0.3 (stable, below the grid
optimum ≈ 1.2); CPU and wall time, and the median of per-round CPU ratios ("paired").
Memory (:func:`experiments.benchmarks.timing.compiled_temp_bytes`): XLA's scratch allocation of the compiled
program (nothing is run) for forward mode, reverse mode without and with checkpointing;
mini-batch SGD (batch 500) and full-batch GD. Writes bench_meta.json and bench_meta.md.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp

from experiments import common
from experiments.baydin import study as baydin
from experiments.benchmarks import timing as bench
from experiments.meta_learning import report
from experiments.tables import markdown_table
from jaxreg import meta
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.data import softmax_split
from jaxreg.objective import Objective
from jaxreg.prepare import prepare_data
from jaxreg.config import Hyper, TrainConfig

CONFIGS = {"minibatch500": TrainConfig(method="minibatch", batch_size=500), "full_batch": TrainConfig(method="full_batch")}


@dataclasses.dataclass(frozen=True)
class BenchMetaConfig:
    """``python -m experiments.benchmarks.bench_meta`` (``--smoke``: :func:`smoke_config`). ``horizons``: the
    long-horizon table on the Baydin set-up (:mod:`experiments.baydin.study`: 60,000 images, batch 128,
    weight decay on W and b, constant η = ``horizon_eta``; ``horizon_n_train`` None: all), with
    ``horizon_repeats`` timing repeats per K and agreement also checked at each of ``edge_etas``
    (near and past the edge of stability)."""

    cost_horizons: tuple = (100, 1000)  # mini-batch 500; repeats // 3 (at least 3) beyond K = 100
    memory_horizons: tuple = (10, 100, 1000)
    repeats: int = 11
    eta: float = 0.3
    horizons: tuple = (100, 1000, 10000)
    horizon_repeats: tuple = (9, 5, 3)
    horizon_eta: float = 0.04
    edge_etas: tuple = (0.3, 1.0)
    horizon_n_train: Optional[int] = None


def default_config() -> BenchMetaConfig:
    return BenchMetaConfig()


def smoke_config() -> BenchMetaConfig:
    return BenchMetaConfig(cost_horizons=(100,), memory_horizons=(10, 100), repeats=3, horizons=(100, 300),
                           horizon_repeats=(2, 2), horizon_n_train=3000)


def horizon_row(td32, K: int, config: BenchMetaConfig, repeats: int, progress) -> dict:
    """One K of the long-horizon table: CPU cost ratios (forward; reverse with √K segments), XLA
    scratch memory of forward mode and of reverse mode per checkpointing scheme, and forward =
    reverse = central differences in float32 and float64 at η and at ``edge_eta``."""
    obj, key = baydin.objective(), jax.random.PRNGKey(0)
    tc = TrainConfig(method="minibatch", batch_size=128, grad="autodiff")
    base = Hyper(l2=1e-4)

    p0 = baydin.torch_linear_init(jax.random.fold_in(key, 1), td32.train.X.shape[1], 10)  # float32 draws

    def vl_for(td, ck):  # the same initial weights in either precision
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, td.train.X.dtype), p0)
        return meta.make_val_loss(obj, tc, td, p, key, horizon=K, base=base, checkpoint=ck)

    v = [math.log(config.horizon_eta)]
    vl = vl_for(td32, False)
    c = bench.hypergrad_cost(vl, v, repeats=repeats, checkpoint="sqrt")
    row = {"K": K, "jvp_cost_ratio": c["jvp_cost_ratio"], "vjp_cost_ratio": c["vjp_cost_ratio"],
           "jvp_cost_ratio_paired": c["jvp_cost_ratio_paired"], "vjp_cost_ratio_paired": c["vjp_cost_ratio_paired"],
           "run_cpu_s": c["run_cpu_s"], "repeats": repeats}
    for label, ck, mode in (("forward", False, "forward"), ("reverse", "sqrt", "reverse"), ("reverse_no_remat", False,
                            "reverse"), ("reverse_block", True, "reverse"), ("reverse_log", "log", "reverse")):
        m = vl_for(td32, ck)
        row[f"temp_mib_{label}"] = bench.compiled_temp_bytes(meta.hypergrad_program, m.as_array(v), m.args, fn=m.fn,
                                                             mode=mode, eps=1e-2) / 2**20
    agree = {}
    for eta in (config.horizon_eta, *config.edge_etas):
        for name in ("float32", "float64"):
            with meta.float64() if name == "float64" else contextlib.nullcontext():
                td = td32 if name == "float32" else jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64)
                                                                           if jnp.issubdtype(a.dtype, jnp.floating) else a, td32)
                m = meta.compare_modes(vl_for(td, False), [math.log(eta)], reverse_val_loss=vl_for(td, "sqrt"))
            agree[f"{eta:g}/{name}"] = {"max_rel_err": m["max_rel_err"], **{k: g[0] for k, g in m["grad"].items()}}
    row["rel_err_fd"] = agree[f"{config.horizon_eta:g}/float32"]["max_rel_err"]
    row["rel_err_fd_float64"] = agree[f"{config.horizon_eta:g}/float64"]["max_rel_err"]
    row["agreement"] = agree
    progress.log(f"K={K}: forward {row['jvp_cost_ratio']:.2f}x, reverse (√K) {row['vjp_cost_ratio']:.2f}x; temp MiB fwd "
                 f"{row['temp_mib_forward']:.1f}, rev {row['temp_mib_reverse']:.1f} (none {row['temp_mib_reverse_no_remat']:.1f}, "
                 f"block {row['temp_mib_reverse_block']:.1f}, log {row['temp_mib_reverse_log']:.1f}); rel err f32 "
                 f"{row['rel_err_fd']:.1e}, f64 {row['rel_err_fd_float64']:.1e}; "
                 + "; ".join(f"at η={e:g}: {agree[f'{e:g}/float32']['max_rel_err']:.1e} / "
                             f"{agree[f'{e:g}/float64']['max_rel_err']:.1e}" for e in config.edge_etas))
    return row


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
                        memory), *horizon_markdown(out)]) + "\n"


def horizon_markdown(out: dict) -> list:
    """The long-horizon table (``out["horizons"]``)."""
    if "horizons" not in out:
        return []
    rows = []
    for K, r in out["horizons"].items():
        a = r["agreement"]
        rows.append((K, f"{r['run_cpu_s']:.2f}", f"{r['jvp_cost_ratio']:.2f}", f"{r['vjp_cost_ratio']:.2f}",
                     f"{r['temp_mib_forward']:.1f}", f"{r['temp_mib_reverse']:.1f}", f"{r['temp_mib_reverse_no_remat']:.1f}",
                     f"{r['temp_mib_reverse_block']:.1f}", f"{r['temp_mib_reverse_log']:.1f}", f"{r['rel_err_fd']:.1e}",
                     f"{r['rel_err_fd_float64']:.1e}",
                     *(f"{a[f'{e:g}/float32']['max_rel_err']:.1e} / {a[f'{e:g}/float64']['max_rel_err']:.1e}"
                       for e in out["edge_etas"])))
    grads = [(K, f"{e:g}", dt, *(f"{a[f'{e:g}/{dt}'][m]:.7g}" for m in ("forward", "reverse", "fd")))
             for K, r in out["horizons"].items() for a in [r["agreement"]] for e in [out["horizon_eta"], *out["edge_etas"]]
             for dt in ("float32", "float64")]
    return ["", "## Long horizons: K updates of the Baydin set-up", "", out["horizons_setup"] + ".", "",
            *markdown_table(("K", "run (s CPU)", "forward / run", "reverse (√K) / run", "temp MiB forward",
                             "temp MiB reverse (√K)", "reverse, no remat", "reverse, v0.1 blocks", "reverse, log",
                             "max rel err fwd/rev/FD float32", "float64",
                             *(f"at η = {e:g}: f32 / f64" for e in out["edge_etas"])), rows),
            "", "d L_val / d log η three ways (central differences: step 1e-2 in log η in float32, 1e-5 in float64):", "",
            *markdown_table(("K", "η", "dtype", "forward", "reverse (√K)", "central differences"), grads)]


def run(out_dir, config: BenchMetaConfig, data: dict, progress) -> dict:
    """Measure; write bench_meta.json and bench_meta.md; return ``{"rows", "files", "config", "timings"}``."""
    bench.enable_compile_cache()
    obj = Objective("softmax", n_classes=10, fit_intercept=False)
    s = softmax_split(data, n_train_pool=min(20000, len(data["train_labels"])), n_test=min(2000, len(data["test_labels"])))
    td = prepare_data(obj, CONFIGS["full_batch"], s.X_train, s.y_train, s.X_holdout, s.y_holdout)
    out = {"data": report.data_source(data), "n_train": int(td.train.X.shape[0]), "dtype": "float32",
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
    with progress.step("long horizons (Baydin set-up)", timings):
        td32 = baydin.baydin_data(data, config.horizon_n_train)
        out["horizons_setup"] = (f"Baydin set-up: {td32.train.X.shape[0]} training images, {td32.holdout.X.shape[0]} "
                                 f"validation images, batch 128, weight decay 1e-4 on W and b, SGD with constant η = "
                                 f"{config.horizon_eta:g}, d L_val / d log η; agreement also at η = "
                                 + ", ".join(f"{e:g}" for e in config.edge_etas))
        out["horizon_eta"], out["edge_etas"] = config.horizon_eta, list(config.edge_etas)
        out["horizons"] = {str(K): horizon_row(td32, K, config, r, progress)
                           for K, r in zip(config.horizons, config.horizon_repeats)}
    write_json(Path(out_dir) / "bench_meta.json", out, indent=1)
    write_text(Path(out_dir) / "bench_meta.md", markdown(out))
    return {"rows": [], "files": ["bench_meta.json", "bench_meta.md"], "config": to_jsonable(config),
            "timings": timings}


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
