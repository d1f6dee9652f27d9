"""Benchmark of jaxreg.meta's hypergradients: cost relative to one training run, and reverse-mode
memory against the horizon K with and without √K checkpointing.

    python experiments/bench_meta.py            # MNIST softmax (18,000 x 785, 10 classes)
    python experiments/bench_meta.py --quick    # fewer repeats, K up to 100
    python experiments/bench_meta.py --synthetic

Cost: ratios of medians over interleaved repeats (compilation excluded) of the forward-mode
hypergradient (jax.jvp, one tangent per hyperparameter) and the reverse-mode one (jax.grad with
√K checkpointing) to one training run; process CPU time and wall time, and the median of
per-round CPU ratios ("paired").

Memory: XLA's scratch ("temp") allocation of the compiled program, from
``jax.jit(...).lower(...).compile().memory_analysis()`` (nothing is run), for K in {10, 100,
1000}: forward mode, reverse mode without and with checkpointing; mini-batch SGD (batch 500) and
full-batch GD. Writes results/bench_meta.json and results/bench_meta.md (atomically).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meta_lr import _atomic_write, enable_compile_cache, load_data, log, train_data  # noqa: E402

from jaxreg import meta  # noqa: E402
from jaxreg.objective import Objective  # noqa: E402
from jaxreg.train import TrainConfig  # noqa: E402


def temp_bytes(vl: meta.ValLoss, mode: str) -> int:
    eps = meta.default_fd_step(vl.dtype)

    def fn(v, args):
        return meta._value_and_hypergrad(lambda u: vl.fn(u, *args), v, mode, eps)

    return meta.compiled_temp_bytes(fn, jnp.zeros(vl.n_hyper, vl.dtype), vl.args)


def run(out_dir="results", quick=False, synthetic=False, repeats=None) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    enable_compile_cache()
    data = load_data(synthetic, False, 0)
    obj = Objective("softmax", n_classes=10, fit_intercept=False)
    td = train_data(data["softmax"])
    p0 = obj.init_params(785, dtype=jnp.float32)
    key = jax.random.PRNGKey(0)
    repeats = repeats or (3 if quick else 11)
    configs = {"minibatch500": TrainConfig(method="minibatch", batch_size=500),
               "full_batch": TrainConfig(method="full_batch")}
    out = {"data": data["source"], "n_train": int(td.train.X.shape[0]), "dtype": "float32",
           "devices": str(jax.devices()), "cost": {}, "memory": []}

    # ---- cost: K = 100 mini-batch steps, at η = 0.3 (stable, below the grid optimum ≈ 1.2)
    for name, K in (("minibatch500", 100),) if quick else (("minibatch500", 100), ("minibatch500", 1000)):
        vl = meta.make_val_loss(obj, configs[name], td, p0, key, horizon=K)
        c = meta.hypergrad_cost(vl, [math.log(0.3)], repeats=repeats if K <= 100 else max(3, repeats // 3))
        c.update(config=name, horizon=K)
        out["cost"][f"{name}_K{K}"] = c
        log(f"cost {name} K={K}: run {c['run_cpu_s']:.3f} s CPU; forward {c['jvp_cost_ratio']:.2f}x, reverse+remat "
            f"{c['vjp_cost_ratio']:.2f}x (CPU); wall {c['jvp_cost_ratio_wall']:.2f}x, {c['vjp_cost_ratio_wall']:.2f}x")

    # ---- memory against K
    for name, cfg in configs.items():
        for K in (10, 100) if quick else (10, 100, 1000):
            row = {"config": name, "K": K}
            for label, ck, mode in (("forward", False, "forward"), ("reverse", False, "reverse"),
                                    ("reverse_remat", True, "reverse")):
                vl = meta.make_val_loss(obj, cfg, td, p0, key, horizon=K, checkpoint=ck)
                t = time.perf_counter()
                row[label + "_MiB"] = temp_bytes(vl, mode) / 2**20
                if ck:
                    row["blocks"] = f"{vl.config.n_records} x {vl.config.eval_every} epochs"
                log(f"memory {name} K={K} {label}: {row[label + '_MiB']:.1f} MiB (compiled in {time.perf_counter() - t:.1f} s)")
            out["memory"].append(row)

    lines = ["# jaxreg.meta benchmark", "",
             f"Data: {out['data']} softmax, {out['n_train']} x 785, 10 classes, float32; {out['devices']}.", "",
             "## Cost relative to one training run (ratios of medians, compilation excluded)", "",
             "| setup | run (s CPU) | forward / run (CPU) | reverse+remat / run (CPU) | forward / run (wall) | "
             "reverse+remat / run (wall) | forward, paired | reverse, paired | repeats |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, c in out["cost"].items():
        lines.append(f"| {k} | {c['run_cpu_s']:.3f} | {c['jvp_cost_ratio']:.2f} | {c['vjp_cost_ratio']:.2f} | "
                     f"{c['jvp_cost_ratio_wall']:.2f} | {c['vjp_cost_ratio_wall']:.2f} | {c['jvp_cost_ratio_paired']:.2f} | "
                     f"{c['vjp_cost_ratio_paired']:.2f} | {c['repeats']} |")
    lines += ["", "## Peak scratch memory (XLA temp allocation, MiB) against the horizon K", "",
              "| config | K | forward mode | reverse, no remat | reverse, √K remat | remat blocks |", "|---|---|---|---|---|---|"]
    for r in out["memory"]:
        lines.append(f"| {r['config']} | {r['K']} | {r['forward_MiB']:.1f} | {r['reverse_MiB']:.1f} | "
                     f"{r['reverse_remat_MiB']:.1f} | {r.get('blocks', '')} |")
    md = "\n".join(lines) + "\n"
    _atomic_write(out_dir / "bench_meta.json", json.dumps(out, indent=1).encode())
    _atomic_write(out_dir / "bench_meta.md", md.encode())
    print(md)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="benchmark jaxreg.meta hypergradients")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", default="results")
    a = p.parse_args(argv)
    run(a.out, quick=a.quick, synthetic=a.synthetic, repeats=a.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
