"""Seed 004's exercise, measured: tune SGD's learning rate by differentiating SGD.

A config (:class:`MetaLRConfig`), :mod:`jaxreg.meta` calls, files out (meta_lr.json, .md, .png). Setups
(float32, zero init, the trainer's batch order from PRNGKey(seed)): softmax regression on the paper's
split, mini-batch SGD with constant η for K steps; logistic 2-vs-3 (the text split); the softmax setup
at several horizons K; SGD-HD through the trainer; (log η0, log T, log λ) jointly, η0/(1 + epoch/T).
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Optional

import jax
import numpy as np
import optax

from experiments.baydin import figures as baydin_figures
from experiments.baydin import study as baydin
from experiments.benchmarks import timing as bench
from experiments.meta_learning import compare, implicit_study, learned, records, report
from experiments.meta_learning import figures as meta_figures
from jaxreg import compile_cache
from jaxreg import meta, plots
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.data import logistic_text_split, softmax_split
from jaxreg.config import Hyper
from jaxreg.objective import Objective
from jaxreg.prepare import prepare_data
from jaxreg.config import TrainConfig

Study = dataclasses.dataclass(frozen=True)


@Study
class EtaStudy:  # grid: (lo, hi, n) log-spaced η; starts: η0 of the meta runs
    batch_size: int
    horizon: int
    grid: tuple
    starts: tuple
    n_steps: int
    outer_lr: float


@Study
class SoftmaxStudy(EtaStudy):  # n_train: the first n_train training images (None: all)
    n_train: Optional[int] = None


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


HorizonStudy = dataclasses.make_dataclass(  # one start; long_grid: coarse grid points at the longest horizon
    "HorizonStudy", [("horizons", tuple), ("start", float), ("n_steps", int), ("long_grid", int)], frozen=True)
OnlineStudy = dataclasses.make_dataclass(  # SGD-HD from every (η0, β) of starts × betas
    "OnlineStudy", [("starts", tuple), ("betas", tuple)], frozen=True)
CostStudy = dataclasses.make_dataclass(  # cost ratios and three-way agreement at η = at_fraction_of_best × grid best
    "CostStudy", [("repeats", int), ("at_fraction_of_best", float)], frozen=True)


@Study
class ScheduleStudy:  # the Baydin set-up (experiments.baydin.study; n_train/n_valid None: all), seed's batches/init
    epochs: int
    const_grid: tuple  # (lo, hi, n) constant η
    grid2d: tuple  # ((lo, hi, n) η0, (lo, hi, n) T epochs) of η0/(1 + epoch/T)
    hd: tuple  # SGD-HD (α0, β)
    every: int  # updates per learned rate
    start: float  # the learned schedule's constant start
    n_steps: int
    outer_lr: float
    n_train: Optional[int] = None
    n_valid: Optional[int] = None
    batch_size: int = 128
    weight_decay: float = 1e-4


@Study
class ImplicitStudy:  # float64, the softmax split's pixels (no bias pixel; intercept), centred
    check_n_train: int  # the unrolled check: first images, hold-out images, λ path, horizon, momentum
    check_n_holdout: Optional[int]  # None: all
    check_lambdas: tuple
    check_horizon: int
    check_momentum: float
    n_train: int  # meta-learning λ against a λ grid: first training images (all hold-out and test)
    grid: tuple  # (lo, hi, n) λ
    start: float
    n_steps: int  # one λ
    group_steps: int  # one λ per image row (28); 0: skipped
    outer_lr: float
    cg_tol: float


@Study
class MetaLRConfig:
    """Every choice of the study; ``binary``/``horizon`` None: skipped; ``n_holdout``: softmax hold-out
    images kept (None: all). ``n_holdout`` and ``smoke`` show in meta_lr.json's ``setup`` and ``smoke``,
    not in its ``config`` block (v0.1's keys). Full run: ``python -m experiments.meta_lr --out results``
    (minutes on 2 CPU cores); CI-sized: ``python -m experiments.meta_lr --smoke --out /tmp/smoke``.
    """

    seed: int = 0
    softmax: SoftmaxStudy = SoftmaxStudy(500, 100, (1e-3, 1e2, 32), (1e-3, 3e-2, 8.0), 15, 0.6)
    binary: Optional[EtaStudy] = EtaStudy(100, 100, (1e-3, 1e2, 32), (1e-3, 3e-2, 30.0), 15, 0.6)
    horizon: Optional[HorizonStudy] = HorizonStudy((10, 100, 1000), 3e-2, 10, 10)
    joint: JointStudy = JointStudy(1000, 100, 5, ((1e-2, 10.0, 12), (0.1, 100.0, 12), (1e-5, 1.0, 12)), 216,
                                   ((3e-2, 1.0, 1e-4), (1.0, 30.0, 1e-2), (0.2, 0.3, 1e-3)), 10, 0.5)
    hd: OnlineStudy = OnlineStudy((1e-3, 3e-2, 8.0), (1e-4, 1e-3, 1e-2))
    cost: CostStudy = CostStudy(9, 0.25)
    schedule: Optional[ScheduleStudy] = ScheduleStudy(10, (1e-3, 3.0, 16), ((1e-2, 10.0, 12), (0.1, 100.0, 12)),
                                                      (1e-3, 1e-3), 100, 1e-2, 10, 0.3)
    implicit: Optional[ImplicitStudy] = ImplicitStudy(1000, 500, (1e-3, 3e-3, 1e-2, 3e-2, 1e-1), 3000, 0.98, 2000,
                                                      (1e-4, 1e-1, 7), 1e-2, 8, 12, 0.3, 1e-6)
    n_holdout: Optional[int] = None
    smoke: bool = False


def default_config() -> MetaLRConfig:
    return MetaLRConfig()


def smoke_config() -> MetaLRConfig:
    """Small and fast: binary and horizon skipped (compilation dominates their time)."""
    return MetaLRConfig(
        softmax=SoftmaxStudy(100, 20, (1e-3, 1e2, 8), (3e-2, 8.0), 4, 0.6, n_train=2000), binary=None, horizon=None,
        joint=JointStudy(300, 100, 3, ((1e-2, 10.0, 3), (0.1, 100.0, 3), (1e-5, 1.0, 3)), 27, ((0.2, 1.0, 1e-3),), 3, 0.5),
        hd=OnlineStudy((3e-2,), (1e-3,)), cost=CostStudy(2, 0.25), n_holdout=500, smoke=True,
        schedule=ScheduleStudy(2, (1e-3, 3.0, 4), ((1e-2, 10.0, 3), (0.1, 100.0, 3)), (1e-3, 1e-3), 10, 1e-2, 2, 0.3,
                               n_train=1000, n_valid=300, batch_size=50),
        implicit=ImplicitStudy(300, None, (1e-2, 1e-1), 300, 0.9, 300, (1e-3, 1e-1, 2), 1e-2, 1, 0, 0.3, 1e-6))


def search(vl, c, points, starts, progress):
    """(Comparison, Timer): the grid over ``points`` against meta-optimisation from ``starts``."""
    timer = bench.Timer()
    cmp = compare.grid_and_meta(vl, points, np.log(np.asarray(starts)), n_steps=c.n_steps, optimizer=optax.adam(c.outer_lr),
                             chunk_size=getattr(c, "chunk_size", None), runner=timer)
    progress.log(f"meta/grid loss {cmp.loss_ratio:.4f}; rejected steps per start {cmp.meta.trace.bad.sum(1).tolist()}")
    return cmp, timer


def eta_study(vl, c: EtaStudy, progress) -> tuple:
    """Loss and hypergradient over the η grid; meta-optimisation of log η from each start."""
    points = compare.log_grid(*c.grid)[:, None]
    dl = np.asarray(meta.grid_hypergrad(vl, points, "forward").grad)[:, 0]
    cmp, timer = search(vl, c, points, np.asarray(c.starts)[:, None], progress)
    return records.eta_record(cmp, dl, c.starts, timer), cmp


def schedule_record(c: ScheduleStudy, data: dict, seed: int, progress) -> dict:
    """:func:`experiments.meta_learning.learned.schedule_study` on the Baydin set-up (SGD, weight decay on W and b)."""
    td = baydin.baydin_data(data, c.n_train, c.n_valid)
    key = jax.random.PRNGKey(seed)
    p0 = baydin.torch_linear_init(jax.random.fold_in(key, 1), td.train.X.shape[1], 10)
    tc = TrainConfig(method="minibatch", batch_size=c.batch_size, grad="autodiff")
    K = c.epochs * (td.train.X.shape[0] // c.batch_size)
    rec = learned.schedule_study(
        baydin.objective(), tc, td, p0, key, horizon=K, base=Hyper(l2=c.weight_decay),
        const_points=compare.log_grid(*c.const_grid)[:, None], grid2d_points=compare.log_mesh(c.grid2d), hd_lr0=c.hd[0],
        hd_beta=c.hd[1], pieces_every=c.every, start_eta=c.start, n_steps=c.n_steps, optimizer=optax.adam(c.outer_lr),
        runner=bench.Timer())
    progress.log(f"learned schedule {rec['learned_loss']:.4f} vs constant {rec['const_best_loss']:.4f}, η0/(1+t/T) "
                 f"{rec['grid2d_best_loss']:.4f}, SGD-HD {rec['sgd_hd_loss']:.4f}; compute / 2-D grid "
                 f"{rec['schedule_compute_vs_2d_grid']:.3f} counted, {rec['schedule_compute_vs_2d_grid_cpu']:.3f} CPU")
    return rec


def implicit_record(c: ImplicitStudy, s, progress) -> dict:
    """:func:`experiments.meta_learning.implicit_study.study` on the softmax split ``s`` (float64)."""
    rec = implicit_study.study(s, **dataclasses.asdict(c))
    progress.log(f"implicit vs unrolled (K = {c.check_horizon}): max rel err {rec['implicit_batched_max_rel_err']:.2e}; "
                 "hold-out loss: " + ", ".join(f"{k} {rec[k]['best_holdout_loss']:.4f}"
                                               for k in ("grid", "meta_one", "meta_rows") if k in rec))
    return rec


def run(out_dir, config: MetaLRConfig, data: dict, progress) -> dict:
    """Run every study on the MNIST-style ``data`` dict; write meta_lr.json, meta_lr.md and the
    figures to ``out_dir``; return ``{"rows": [], "files", "config", "timings"}``."""
    cache = compile_cache.enable()
    out_dir, timings, res, cfg = Path(out_dir), {}, {}, to_jsonable(config)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    pool = dict(n_train_pool=min(20000, len(data["train_labels"])))
    s = softmax_split(data, **pool, n_test=min(2000, len(data["test_labels"])))
    sc, jc, h = config.softmax, config.joint, slice(config.n_holdout)
    softmax, logistic = Objective("softmax", n_classes=10, fit_intercept=False), Objective("logistic", fit_intercept=False)

    def val_loss(obj, tc, X, y, Xh, yh, K, **kw):
        return meta.make_val_loss(obj, tc, prepare_data(obj, tc, X, y, Xh, yh), None, config.seed, horizon=K, **kw)

    vl = val_loss(softmax, TrainConfig(method="minibatch", batch_size=sc.batch_size), s.X_train[:sc.n_train],
                  s.y_train[:sc.n_train], s.X_holdout[h], s.y_holdout[h], sc.horizon)
    progress.log(f"data: {report.data_source(data)}; softmax train {vl.data.train.X.shape}, hold-out "
                 f"{vl.data.holdout.X.shape}; XLA cache {cache}")
    with progress.step("softmax η grid and meta", timings):
        res["softmax"], cmp = eta_study(vl, sc, progress)
    with progress.step("cost and three-way agreement", timings):
        at = config.cost.at_fraction_of_best * res["softmax"]["grid_best_eta"]
        cost = bench.hypergrad_cost(vl, [math.log(at)], repeats=config.cost.repeats)
        res["cost"] = records.cost_record(cost, at, meta.compare_modes(vl, [math.log(at)]))
    if config.binary:
        with progress.step("binary 2-vs-3 η grid and meta", timings):
            b = logistic_text_split(data, (2, 3), **pool, n_test_pool=min(2000, len(data["test_labels"])))
            bvl = val_loss(logistic, TrainConfig(method="minibatch", batch_size=config.binary.batch_size), b.X_train,
                           b.y_train, b.X_holdout, b.y_holdout, config.binary.horizon)
            res["binary"] = eta_study(bvl, config.binary, progress)[0]
    if config.horizon:
        with progress.step("horizon bias", timings):
            hc = config.horizon
            hb = compare.horizon_bias(vl, hc.horizons, [math.log(hc.start)], n_steps=hc.n_steps,
                                   optimizer=optax.adam(sc.outer_lr), curve_points=compare.log_grid(*sc.grid)[:, None],
                                   coarse_points=compare.log_grid(sc.grid[0], sc.grid[1], hc.long_grid)[:, None], known=cmp)
            res["horizon"] = records.horizon_record(hb, hc.start, hc.n_steps)
    with progress.step("SGD-HD through the trainer", timings):
        lr0, beta = (a.ravel() for a in np.meshgrid(config.hd.starts, config.hd.betas, indexing="ij"))
        c0 = time.process_time()
        hd = meta.sgd_hd_runs(softmax, vl.train_config, vl.data, lr0, beta, horizon=vl.horizon, params0=vl.params0,
                              key=vl.key)
        res["hd"] = records.online_record(hd, cpu_s=time.process_time() - c0)
    with progress.step("joint (η0, T, λ) grid and meta", timings):
        tc = TrainConfig(method="minibatch", batch_size=jc.batch_size, schedule="inverse_time")
        jvl = val_loss(softmax, tc, s.X_train[:jc.n_train], s.y_train[:jc.n_train], s.X_holdout[h], s.y_holdout[h],
                       jc.epochs * (jc.n_train // jc.batch_size), hyper_names=("log_lr", "log_decay_time", "log_l2"))
        jcmp, timer = search(jvl, jc, compare.log_mesh(jc.axes), jc.starts, progress)
        res["joint"] = records.joint_record(jcmp, jc.axes, jc.starts, timer)

    if config.schedule:
        with progress.step("learned schedule vs grids and SGD-HD (Baydin set-up)", timings):
            res["schedule"] = schedule_record(config.schedule, data, config.seed, progress)
    if config.implicit:
        with progress.step("batched implicit λ hypergradients (float64)", timings):
            res["implicit"] = implicit_record(config.implicit, s, progress)

    summary = dict(report.headline(res), **report.headline_v02(res), smoke=config.smoke, data_source=report.data_source(data), dtype="float32",
                   devices=str(jax.devices()), setup=report.setup(cfg, vl.data.train.X.shape, vl.data.holdout.X.shape))
    summary["answer"] = report.answer(summary, res)
    figures = meta_figures.meta_figures(res)
    if "schedule" in res:
        figures["meta_lr_schedule.png"] = baydin_figures.schedule_figure(res["schedule"])
    for name, fig in figures.items():
        plots.save_figure(fig, out_dir / name)
    summary.update(total_wall_s=time.perf_counter() - t_wall, total_cpu_s=time.process_time() - t_cpu, figures=[*figures])
    block = {k: v for k, v in cfg.items() if k not in ("n_holdout", "smoke")}  # v0.1's keys
    write_json(out_dir / "meta_lr.json", dict(summary, details=res, config=block), indent=1)
    write_text(out_dir / "meta_lr.md", report.markdown(summary, res))
    progress.log(f"wrote meta_lr.json, meta_lr.md and {len(figures)} figures to {out_dir}")
    return {"rows": [], "files": ["meta_lr.json", "meta_lr.md", *figures], "config": cfg, "timings": timings}


def main(argv=None) -> int:
    from experiments import common

    return common.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
