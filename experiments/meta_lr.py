"""Seed 004's exercise, measured: tune SGD's learning rate by differentiating SGD.

A config (:class:`MetaLRConfig`), :mod:`jaxreg.meta` calls, files out (meta_lr.json, .md, .png).
Setups (float32, zero initialisation, the trainer's fixed batch order from PRNGKey(seed)):
softmax regression on the paper's split (hold-out: its first 2,000 training images), mini-batch
SGD with constant η for K steps; the same for logistic 2-vs-3 (the paper's text split); the
softmax setup at several horizons K; SGD-HD (online) through the trainer; and (log η0, log T,
log λ) jointly with η(t) = η0/(1 + epoch/T) and (λ/2)‖W‖², on the first training images.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import struct
import sys
import time
from pathlib import Path
from typing import Optional

import jax
import numpy as np
import optax

from jaxreg import bench, meta, plots
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.data import logistic_text_split, softmax_split
from jaxreg.data.idx import MD5_TRAIN_LABELS
from jaxreg.objective import Objective
from jaxreg.prepare import prepare_data
from jaxreg.train import TrainConfig

Study = dataclasses.dataclass(frozen=True)


@Study
class EtaStudy:  # grid: (lo, hi, n) log-spaced η; starts: η0 of the meta runs; n_train: None = all
    batch_size: int
    horizon: int
    grid: tuple
    starts: tuple
    n_steps: int
    outer_lr: float
    n_train: Optional[int] = None


@Study
class HorizonStudy:  # one start; long_grid: coarse grid points at the longest horizon
    horizons: tuple
    start: float
    n_steps: int
    long_grid: int


@Study
class JointStudy:  # axes: (lo, hi, n) for η0, T (epochs), λ
    n_train: int
    batch_size: int
    epochs: int
    axes: tuple
    chunk_size: int
    starts: tuple
    n_steps: int
    outer_lr: float


@Study
class OnlineStudy:  # SGD-HD from every (η0, β) of starts × betas
    starts: tuple
    betas: tuple


@Study
class CostStudy:  # cost ratios and the three-way agreement at η = at_fraction_of_best × grid best
    repeats: int
    at_fraction_of_best: float


@Study
class MetaLRConfig:
    """Every choice of the study. ``binary``/``horizon`` None: skipped. ``n_holdout``: softmax
    hold-out images kept (None: all 2,000); with ``smoke`` recorded at meta_lr.json's top level
    and in its ``setup``, not in its ``config`` block (which keeps v0.1's keys).

    Full run:  ``python -m experiments.meta_lr --out results``   (a few minutes on 2 CPU cores)
    CI-sized:  ``python -m experiments.meta_lr --smoke --out /tmp/smoke``  (add ``--synthetic``
    to run without MNIST)
    """

    seed: int = 0
    softmax: EtaStudy = EtaStudy(500, 100, (1e-3, 1e2, 32), (1e-3, 3e-2, 8.0), 15, 0.6)
    binary: Optional[EtaStudy] = EtaStudy(100, 100, (1e-3, 1e2, 32), (1e-3, 3e-2, 30.0), 15, 0.6)
    horizon: Optional[HorizonStudy] = HorizonStudy((10, 100, 1000), 3e-2, 10, 10)
    joint: JointStudy = JointStudy(1000, 100, 5, ((1e-2, 10.0, 12), (0.1, 100.0, 12), (1e-5, 1.0, 12)), 216,
                                   ((3e-2, 1.0, 1e-4), (1.0, 30.0, 1e-2), (0.2, 0.3, 1e-3)), 10, 0.5)
    hd: OnlineStudy = OnlineStudy((1e-3, 3e-2, 8.0), (1e-4, 1e-3, 1e-2))
    cost: CostStudy = CostStudy(9, 0.25)
    n_holdout: Optional[int] = None
    smoke: bool = False


def default_config() -> MetaLRConfig:
    return MetaLRConfig()


def smoke_config() -> MetaLRConfig:
    """Small and fast: binary and horizon skipped (compilation dominates their time)."""
    return MetaLRConfig(
        softmax=EtaStudy(100, 20, (1e-3, 1e2, 8), (3e-2, 8.0), 4, 0.6, n_train=2000), binary=None, horizon=None,
        joint=JointStudy(300, 100, 3, ((1e-2, 10.0, 3), (0.1, 100.0, 3), (1e-5, 1.0, 3)), 27, ((0.2, 1.0, 1e-3),), 3, 0.5),
        hd=OnlineStudy((3e-2,), (1e-3,)), cost=CostStudy(2, 0.25), n_holdout=500,
        smoke=True)


def data_source(data: dict) -> str:
    """"MNIST" when ``data``'s training labels are MNIST's (the MD5 of their IDX file)."""
    labels = np.asarray(data["train_labels"], np.uint8)
    idx = struct.pack(">II", 0x801, labels.size) + labels.tobytes()
    return "MNIST" if hashlib.md5(idx).hexdigest() == MD5_TRAIN_LABELS else "synthetic (not MNIST)"


def _timed(cmp, t_grid, t_meta, label=""):
    g, m = t_grid.last, t_meta.last
    return {"grid_cpu_s": g["cpu_s"], "grid_wall_s": g["wall_s"], "meta_cpu_s": m["cpu_s"], "meta_wall_s": m["wall_s"],
            "compile_s": {"grid": g["compile_s"], "meta": m["compile_s"]}, "grid_grad_evals": cmp.grid_grad_evals,
            "meta_grad_evals": cmp.meta_grad_evals, f"meta{label}_compute_fraction_counted": cmp.compute_fraction,
            f"meta{label}_compute_fraction_cpu": m["cpu_s"] / g["cpu_s"]}


def eta_study(vl, c: EtaStudy, progress):
    """Loss and hypergradient over the η grid; meta-optimisation of log η from each start."""
    points = meta.log_grid(*c.grid)[:, None]
    dl = np.asarray(meta.grid_hypergrad(vl, points, "forward").grad)[:, 0]
    t_grid, t_meta = bench.Timer(), bench.Timer()
    grid = meta.grid_search(vl, points, runner=t_grid)
    res = meta.meta_optimize(vl, np.log(np.asarray(c.starts))[:, None], n_steps=c.n_steps,
                             optimizer=optax.adam(c.outer_lr), runner=t_meta)
    cmp = meta.compare(grid, res, vl.horizon)
    out = {"grid_eta": np.exp(points[:, 0]).tolist(), "grid_loss": grid.loss.tolist(), "grid_dloss_dlogeta": dl.tolist(),
           "grid_diverged": grid.diverged.tolist(), "grid_best_eta": float(np.exp(points[grid.best, 0])),
           "grid_best_loss": float(grid.best_loss), "meta_starts": c.starts,
           "meta_best_eta": np.exp(res.log_hyper[:, 0]).tolist(), "meta_best_loss": res.loss.tolist(),
           "meta_trace_eta": np.exp(res.trace.log_hyper[..., 0]).tolist(),
           **{f"meta_trace_{k}": getattr(res.trace, k).tolist()
              for k in ("loss", "grad_norm", "bad", "exploded", "nonfinite", "diverged", "clipped")},
           "meta_vs_grid_loss_ratio": cmp.loss_ratio, "meta_steps_to_within_2pct": cmp.steps_to_within,
           **_timed(cmp, t_grid, t_meta), "horizon": vl.horizon}
    progress.log(f"grid best η={out['grid_best_eta']:.3g} loss={out['grid_best_loss']:.4f}; meta/grid loss "
                 f"{cmp.loss_ratio:.4f}; rejected steps per start {res.trace.bad.sum(1).tolist()}")
    return out, cmp


def run(out_dir, config: MetaLRConfig, data: dict, progress) -> dict:
    """Run every study on the MNIST-style ``data`` dict; write meta_lr.json, meta_lr.md and the
    figures to ``out_dir``; return ``{"rows": [], "files", "config", "timings"}``."""
    cache = bench.enable_compile_cache()
    out_dir, timings, res = Path(out_dir), {}, {}
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    cfg = to_jsonable(config)
    n_tr, n_te = len(data["train_labels"]), len(data["test_labels"])
    s = softmax_split(data, n_train_pool=min(20000, n_tr), n_test=min(2000, n_te))
    sc, jc, h = config.softmax, config.joint, slice(config.n_holdout)
    softmax, logistic = Objective("softmax", n_classes=10, fit_intercept=False), Objective("logistic", fit_intercept=False)

    def val_loss(obj, tc, X, y, Xh, yh, K, **kw):
        return meta.make_val_loss(obj, tc, prepare_data(obj, tc, X, y, Xh, yh), None, config.seed, horizon=K, **kw)

    vl = val_loss(softmax, TrainConfig(method="minibatch", batch_size=sc.batch_size), s.X_train[:sc.n_train],
                  s.y_train[:sc.n_train], s.X_holdout[h], s.y_holdout[h], sc.horizon)
    progress.log(f"data: {data_source(data)}; softmax train {vl.data.train.X.shape}, hold-out "
                 f"{vl.data.holdout.X.shape}; XLA cache {cache}")
    with progress.step("softmax η grid and meta", timings):
        res["softmax"], cmp = eta_study(vl, sc, progress)
    with progress.step("cost and three-way agreement", timings):
        at = config.cost.at_fraction_of_best * res["softmax"]["grid_best_eta"]
        c = res["cost"] = bench.hypergrad_cost(vl, [math.log(at)], repeats=config.cost.repeats)
        modes = meta.compare_modes(vl, [math.log(at)])
        c.update(at_eta=at, dloss_dlogeta={k: g[0] for k, g in modes["grad"].items()},
                 rel_err_reverse_vs_forward=modes["rel_err_reverse_vs_forward"],
                 rel_err_fd_vs_forward=modes["rel_err_fd_vs_forward"], hypergrad_rel_err=modes["max_rel_err"])
    if config.binary:
        with progress.step("binary 2-vs-3 η grid and meta", timings):
            bc, b = config.binary, logistic_text_split(data, (2, 3), n_train_pool=min(20000, n_tr),
                                                       n_test_pool=min(2000, n_te))
            bvl = val_loss(logistic, TrainConfig(method="minibatch", batch_size=bc.batch_size), b.X_train, b.y_train,
                           b.X_holdout, b.y_holdout, bc.horizon)
            res["binary"] = eta_study(bvl, bc, progress)[0]
    if config.horizon:
        with progress.step("horizon bias", timings):
            hc = config.horizon
            hb = meta.horizon_bias(vl, hc.horizons, [math.log(hc.start)], n_steps=hc.n_steps,
                                   optimizer=optax.adam(sc.outer_lr), curve_points=meta.log_grid(*sc.grid)[:, None],
                                   coarse_points=meta.log_grid(sc.grid[0], sc.grid[1], hc.long_grid)[:, None], known=cmp)
            res["horizon"] = {"horizons": hc.horizons, "start": hc.start, "n_steps": hc.n_steps,
                              "learned_eta": hb.learned[:, 0].tolist(), "learned_loss_at_K": hb.learned_loss.tolist(),
                              "curves": {str(K): [np.exp(p[:, 0]).tolist(), loss.tolist()] for K, (p, loss) in hb.curves.items()},
                              "loss_at_longest_K": hb.loss_at_longest.tolist()}
    with progress.step("SGD-HD through the trainer", timings):
        lr0, beta = (a.ravel() for a in np.meshgrid(config.hd.starts, config.hd.betas, indexing="ij"))
        c0 = time.process_time()
        hd = meta.sgd_hd_runs(softmax, vl.train_config, vl.data, lr0, beta, horizon=vl.horizon, params0=vl.params0,
                              key=vl.key)
        res["hd"] = {"eta0": hd.learning_rate0.tolist(), "beta": hd.beta.tolist(), "final_eta": hd.final_learning_rate.tolist(),
                     "loss": hd.holdout_loss.tolist(), "eta_trace": hd.learning_rates[:, ::max(1, vl.horizon // 50)].tolist(),
                     "cpu_s_incl_compile": time.process_time() - c0}
    with progress.step("joint (η0, T, λ) grid and meta", timings):
        jtc = TrainConfig(method="minibatch", batch_size=jc.batch_size, schedule="inverse_time")
        jvl = val_loss(softmax, jtc, s.X_train[:jc.n_train], s.y_train[:jc.n_train], s.X_holdout[h], s.y_holdout[h],
                       jc.epochs * (jc.n_train // jc.batch_size), hyper_names=("log_lr", "log_decay_time", "log_l2"))
        t_grid, t_meta = bench.Timer(), bench.Timer()
        grid = meta.grid_search(jvl, meta.log_mesh(jc.axes), chunk_size=jc.chunk_size, runner=t_grid)
        jres = meta.meta_optimize(jvl, np.log(np.asarray(jc.starts)), n_steps=jc.n_steps,
                                  optimizer=optax.adam(jc.outer_lr), runner=t_meta)
        jcmp = meta.compare(grid, jres, jvl.horizon)
        res["joint"] = {
            "axes_values": [np.exp(meta.log_grid(*a)).tolist() for a in jc.axes],
            "grid_loss": grid.loss.reshape([a[2] for a in jc.axes]).tolist(),
            "grid_n_diverged": int(np.sum(grid.diverged | ~np.isfinite(grid.loss))),
            "grid_best": np.exp(grid.points[grid.best]).tolist(), "grid_best_loss": float(grid.best_loss),
            "meta_starts": jc.starts, "meta_best": np.exp(jres.log_hyper).tolist(), "meta_best_loss": jres.loss.tolist(),
            "meta_trace": np.exp(jres.trace.log_hyper).tolist(), "meta_trace_loss": jres.trace.loss.tolist(),
            "meta_trace_bad": jres.trace.bad.tolist(), "meta_trace_grad_norm": jres.trace.grad_norm.tolist(),
            "meta3_vs_grid_loss_ratio": jcmp.loss_ratio, **_timed(jcmp, t_grid, t_meta, "3")}

    summary = dict(meta.report.headline(res), smoke=config.smoke, data_source=data_source(data), dtype="float32",
                   devices=str(jax.devices()), setup=meta.report.setup(cfg, vl.data.train.X.shape, vl.data.holdout.X.shape))
    summary["answer"] = meta.report.answer(summary, res)
    figures = {"meta_lr_landscape.png": plots.meta_landscape({k: res[k] for k in ("softmax", "binary") if k in res}),
               "meta_lr_trajectories.png": plots.meta_trajectories({k: res[k] for k in ("softmax", "binary") if k in res})}
    if "horizon" in res:
        figures["meta_lr_horizon.png"] = plots.meta_horizon_bias(res["horizon"])
    figures["meta_lr_joint.png"] = plots.meta_joint(res["joint"])
    best_meta = res["softmax"]["meta_best_eta"][int(np.argmin(res["softmax"]["meta_best_loss"]))]
    figures["meta_lr_hd.png"] = plots.meta_online_rates(res["hd"], vl.horizon, best_meta)
    for name, fig in figures.items():
        plots.save_figure(fig, out_dir / name)
    summary.update(total_wall_s=time.perf_counter() - t_wall, total_cpu_s=time.process_time() - t_cpu,
                   figures=list(figures))
    block = {k: v for k, v in cfg.items() if k not in ("n_holdout", "smoke")}
    write_json(out_dir / "meta_lr.json", dict(summary, details=res, config=block), indent=1)
    write_text(out_dir / "meta_lr.md", meta.report.markdown(summary, res))
    progress.log(f"wrote meta_lr.json, meta_lr.md and {len(figures)} figures to {out_dir}")
    return {"rows": [], "files": ["meta_lr.json", "meta_lr.md", *figures], "config": cfg, "timings": timings}


def main(argv=None) -> int:
    from experiments.common import Progress
    from jaxreg.data import load_mnist, synthetic_mnist

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="small and fast variant (smoke_config)")
    p.add_argument("--synthetic", action="store_true", help="synthetic digits instead of MNIST")
    p.add_argument("--out", default=None, help="output folder (default: results, or results/smoke with --smoke)")
    a = p.parse_args(argv)
    data = synthetic_mnist(6000, 1000) if a.synthetic else load_mnist(verbose=False)
    out = run(a.out or ("results/smoke" if a.smoke else "results"), smoke_config() if a.smoke else default_config(),
              data, Progress(prefix="[meta_lr]"))
    print("\n".join(out["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
