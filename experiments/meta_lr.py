"""Seed 004's exercise, measured: tune SGD's learning rate by differentiating SGD.

Thin script: configuration in, jaxreg.meta calls, files out (results/meta_lr.json, .md, .png).

    python experiments/meta_lr.py            # full run (MNIST; a few minutes on 2 CPU cores)
    python experiments/meta_lr.py --smoke    # small and fast (writes to results/smoke/)
    python experiments/meta_lr.py --synthetic --smoke   # no MNIST needed

Setups (float32, zero initialisation, the trainer's fixed batch order from PRNGKey(seed)):

* softmax: 10-class softmax regression on the paper's split (first 20,000 training images, the
  first 2,000 of them the hold-out set, 18,000 training; 785 features with the bias feature;
  no penalty), mini-batch SGD with batch 500 and constant η for K = 100 steps (≈2.8 epochs).
* binary: logistic regression 2-vs-3 (the paper's text split), batch 100, constant η, K = 100.
* horizon: the softmax setup with K = 10, 100, 1000 steps.
* joint: the softmax problem trained on the first 1,000 of those training images (so the
  penalty matters), batch 100, 5 epochs (K = 50), η(t) = η0 / (1 + epoch / T), L2 penalty
  (λ/2)‖W‖²; hyperparameters (log η0, log T, log λ).

Compute is counted in gradient evaluations (one inner step = one gradient; a forward-mode
hypergradient with m hyperparameters costs (1 + m) per inner step: each JVP of a gradient costs
about one gradient) and timed (process CPU time, compilation excluded) on both sides in the
same run.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import meta
from jaxreg.objective import Batch, Objective
from jaxreg.train import TrainConfig, TrainData
from jaxreg.atomic import atomic_open  # noqa: E402

CONFIG = {
    "seed": 0,
    "softmax": {"batch_size": 500, "horizon": 100, "grid": [1e-3, 1e2, 32], "starts": [1e-3, 3e-2, 8.0],
                "n_steps": 15, "outer_lr": 0.6, "n_train": None},
    "binary": {"batch_size": 100, "horizon": 100, "grid": [1e-3, 1e2, 32], "starts": [1e-3, 3e-2, 30.0],
               "n_steps": 15, "outer_lr": 0.6},
    "horizon": {"horizons": [10, 100, 1000], "start": 3e-2, "n_steps": 10, "long_grid": 10},
    "joint": {"n_train": 1000, "batch_size": 100, "epochs": 5,
              "axes": [[1e-2, 10.0, 12], [0.1, 100.0, 12], [1e-5, 1.0, 12]], "chunk_size": 216,
              "starts": [[3e-2, 1.0, 1e-4], [1.0, 30.0, 1e-2], [0.2, 0.3, 1e-3]], "n_steps": 10, "outer_lr": 0.5},
    "hd": {"starts": [1e-3, 3e-2, 8.0], "betas": [1e-4, 1e-3, 1e-2]},
    "cost": {"repeats": 9, "at_fraction_of_best": 0.25},
}

SMOKE = {
    "seed": 0,
    "softmax": {"batch_size": 100, "horizon": 20, "grid": [1e-3, 1e2, 8], "starts": [3e-2, 8.0],
                "n_steps": 4, "outer_lr": 0.6, "n_train": 2000},
    "binary": None,  # skipped in the smoke run (compilation dominates its time)
    "horizon": None,
    "joint": {"n_train": 300, "batch_size": 100, "epochs": 3, "axes": [[1e-2, 10.0, 3], [0.1, 100.0, 3], [1e-5, 1.0, 3]],
              "chunk_size": 27, "starts": [[0.2, 1.0, 1e-3]], "n_steps": 3, "outer_lr": 0.5},
    "hd": {"starts": [3e-2], "betas": [1e-3]},
    "cost": {"repeats": 2, "at_fraction_of_best": 0.25},
}


def log(msg):
    print(f"[meta_lr {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------- data
def _synthetic(n_train, n_hold, d, n_classes, seed):
    r = np.random.default_rng(seed)
    X = np.concatenate([np.ones((n_train + n_hold, 1)), r.random((n_train + n_hold, d - 1))], 1).astype(np.float32)
    W = r.normal(size=(d, n_classes)) * 0.3
    y = np.argmax(X @ W + r.gumbel(size=(n_train + n_hold, n_classes)), 1)
    if n_classes == 2:
        y = y.astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def load_data(synthetic: bool, smoke: bool, seed: int):
    """{"softmax": (X_tr, y_tr, X_ho, y_ho), "binary": ...}, float32, bias feature first."""
    if not synthetic:
        from jaxreg.data import load_mnist
        from jaxreg.data.splits import logistic_text_split, softmax_split

        raw = load_mnist(verbose=False)
        s, b = softmax_split(raw), logistic_text_split(raw, digits=(2, 3))
        if smoke:  # a smaller hold-out keeps the smoke run quick
            return {"softmax": (s.X_train, s.y_train, s.X_holdout[:500], s.y_holdout[:500]),
                    "binary": (b.X_train, b.y_train, b.X_holdout, b.y_holdout), "source": "MNIST"}
        return {"softmax": (s.X_train, s.y_train, s.X_holdout, s.y_holdout),
                "binary": (b.X_train, b.y_train, b.X_holdout, b.y_holdout), "source": "MNIST"}
    n = 2000 if smoke else 18000
    return {"softmax": _synthetic(n, 500 if smoke else 2000, 785, 10, seed),
            "binary": _synthetic(n // 5, 400, 785, 2, seed + 1), "source": "synthetic"}


def train_data(arrays, n_train=None) -> TrainData:
    X, y, Xh, yh = arrays
    n = len(y) if n_train is None else n_train
    return TrainData(Batch(jnp.asarray(X[:n]), jnp.asarray(y[:n])), Batch(jnp.asarray(Xh), jnp.asarray(yh)))


def log_grid(lo, hi, n):
    return np.linspace(math.log(lo), math.log(hi), int(n))


# ------------------------------------------------------------------------------------- studies
def eta_study(name, vl: meta.ValLoss, cfg):
    """Dense grid over η (losses and hypergradients, one vmapped call each) and meta-optimisation
    of log η from several starts (one vmapped call)."""
    grid = log_grid(*cfg["grid"])
    hg = meta.grid_hypergrad(vl, grid[:, None], "forward")
    losses, aux = meta.grid_val_loss(vl, grid[:, None])
    t_grid = dict(vl.last_timing)
    losses = np.asarray(losses)
    ok = ~np.asarray(aux.diverged) & np.isfinite(losses)
    i = int(np.argmin(np.where(ok, losses, np.inf)))
    starts = np.log(np.asarray(cfg["starts"]))[:, None]
    res = meta.meta_optimize(vl, starts, n_steps=cfg["n_steps"], optimizer=optax.adam(cfg["outer_lr"]))
    K, S, N = vl.horizon, len(starts), cfg["n_steps"]
    best = int(np.argmin(res.loss))
    target = 1.02 * losses[i]
    reached = [int(np.argmax(tr <= target)) + 1 if np.any(tr <= target) else None
               for tr in np.where(res.trace.bad, np.inf, res.trace.loss)]
    out = {
        "grid_eta": np.exp(grid).tolist(), "grid_loss": losses.tolist(), "grid_dloss_dlogeta": np.asarray(hg.grad)[:, 0].tolist(),
        "grid_diverged": np.asarray(aux.diverged).tolist(), "grid_best_eta": float(np.exp(grid[i])), "grid_best_loss": float(losses[i]),
        "meta_starts": cfg["starts"], "meta_best_eta": np.exp(res.log_hyper[:, 0]).tolist(), "meta_best_loss": res.loss.tolist(),
        "meta_trace_eta": np.exp(res.trace.log_hyper[..., 0]).tolist(), "meta_trace_loss": res.trace.loss.tolist(),
        "meta_trace_grad_norm": res.trace.grad_norm.tolist(), "meta_trace_bad": res.trace.bad.tolist(),
        "meta_trace_exploded": res.trace.exploded.tolist(), "meta_trace_nonfinite": res.trace.nonfinite.tolist(),
        "meta_trace_diverged": res.trace.diverged.tolist(), "meta_trace_clipped": res.trace.clipped.tolist(),
        "meta_vs_grid_loss_ratio": float(res.loss[best] / losses[i]),
        "meta_steps_to_within_2pct": reached,
        # compute: gradient evaluations (one per inner step; forward mode with one tangent: 2)
        "grid_grad_evals": len(grid) * K, "meta_grad_evals": S * N * K * 2,
        "grid_cpu_s": t_grid["cpu_s"], "grid_wall_s": t_grid["wall_s"],
        "meta_cpu_s": res.timing["cpu_s"], "meta_wall_s": res.timing["wall_s"],
        "compile_s": {"grid": t_grid["compile_s"], "meta": res.timing["compile_s"]},
    }
    out["meta_compute_fraction_counted"] = out["meta_grad_evals"] / out["grid_grad_evals"]
    out["meta_compute_fraction_cpu"] = out["meta_cpu_s"] / out["grid_cpu_s"]
    log(f"{name}: grid best η={out['grid_best_eta']:.3g} loss={out['grid_best_loss']:.4f}; meta best "
        f"η={out['meta_best_eta'][best]:.3g} loss={res.loss[best]:.4f} (ratio {out['meta_vs_grid_loss_ratio']:.4f}); "
        f"compute meta/grid: counted {out['meta_compute_fraction_counted']:.2f}, CPU {out['meta_compute_fraction_cpu']:.2f}; "
        f"bad steps per start {res.trace.bad.sum(1).tolist()}")
    return out


def horizon_study(make_vl, main_vl, main_out, cfg, main_cfg):
    """Meta-learned η for each horizon K (one start, ``n_steps`` outer steps, the main study's outer
    optimiser), each then evaluated at the longest horizon. Starts are independent under vmap, so
    at the main horizon the main study's row for the same start (its first ``n_steps`` steps) is
    reused."""
    Ks = list(cfg["horizons"])
    grid = log_grid(*main_cfg["grid"])
    n = cfg["n_steps"]
    out = {"horizons": Ks, "start": cfg["start"], "n_steps": n, "learned_eta": [], "learned_loss_at_K": [], "curves": {}}
    for K in Ks:
        if K == main_vl.horizon and cfg["start"] in main_cfg["starts"] and n <= main_cfg["n_steps"]:
            vl, row = main_vl, main_cfg["starts"].index(cfg["start"])
            tl = np.where(main_out["meta_trace_bad"][row][:n], np.inf, main_out["meta_trace_loss"][row][:n])
            i = int(np.argmin(tl))
            eta, loss, cpu = main_out["meta_trace_eta"][row][i], float(tl[i]), 0.0
        else:
            vl = main_vl if K == main_vl.horizon else make_vl(K)
            res = meta.meta_optimize(vl, [[math.log(cfg["start"])]], n_steps=n, optimizer=optax.adam(main_cfg["outer_lr"]))
            eta, loss, cpu = float(np.exp(res.log_hyper[0, 0])), float(res.loss[0]), res.timing["cpu_s"]
        out["learned_eta"].append(eta)
        out["learned_loss_at_K"].append(loss)
        if K == main_vl.horizon:
            out["curves"][str(K)] = [main_out["grid_eta"], main_out["grid_loss"]]
        elif K != Ks[-1]:
            losses, _ = meta.grid_val_loss(vl, grid[:, None])
            out["curves"][str(K)] = [np.exp(grid).tolist(), np.asarray(losses).tolist()]
        log(f"horizon K={K}: learned η={eta:.3g} (hold-out loss at K: {loss:.4f}); {cpu:.1f} s CPU")
        last = vl
    # the longest horizon: a coarse curve and every learned η, in one vmapped call
    coarse = log_grid(main_cfg["grid"][0], main_cfg["grid"][1], cfg["long_grid"])
    pts = np.concatenate([coarse, np.log(out["learned_eta"])])[:, None]
    losses, aux = meta.grid_val_loss(last, pts)
    losses = np.asarray(losses)
    out["curves"][str(Ks[-1])] = [np.exp(coarse).tolist(), losses[:len(coarse)].tolist()]
    out["loss_at_longest_K"] = losses[len(coarse):].tolist()
    log(f"horizon: learned η {['%.3g' % e for e in out['learned_eta']]} -> hold-out loss after K={Ks[-1]}: "
        f"{['%.4f' % v for v in out['loss_at_longest_K']]}")
    return out


def joint_study(vl: meta.ValLoss, cfg):
    axes = [log_grid(*a) for a in cfg["axes"]]
    G = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    log(f"joint: {len(G)}-point grid, chunks of {cfg['chunk_size']} ...")
    losses, aux = meta.grid_val_loss(vl, G, chunk_size=cfg["chunk_size"])
    t_grid = dict(vl.last_timing)
    losses = np.asarray(losses)
    ok = ~np.asarray(aux.diverged) & np.isfinite(losses)
    i = int(np.argmin(np.where(ok, losses, np.inf)))
    log(f"joint grid: best (η0, T, λ) = {np.exp(G[i]).round(5).tolist()} loss {losses[i]:.4f}; "
        f"{t_grid['cpu_s']:.1f} s CPU ({t_grid['wall_s']:.1f} s wall, compile {t_grid['compile_s']:.1f} s)")
    starts = np.log(np.asarray(cfg["starts"]))
    res = meta.meta_optimize(vl, starts, n_steps=cfg["n_steps"], optimizer=optax.adam(cfg["outer_lr"]))
    K, S, N = vl.horizon, len(starts), cfg["n_steps"]
    best = int(np.argmin(res.loss))
    out = {
        "axes_values": [np.exp(a).tolist() for a in axes], "grid_loss": losses.reshape([len(a) for a in axes]).tolist(),
        "grid_n_diverged": int(np.sum(~ok)), "grid_best": np.exp(G[i]).tolist(), "grid_best_loss": float(losses[i]),
        "meta_starts": cfg["starts"], "meta_best": np.exp(res.log_hyper).tolist(), "meta_best_loss": res.loss.tolist(),
        "meta_trace": np.exp(res.trace.log_hyper).tolist(), "meta_trace_loss": res.trace.loss.tolist(),
        "meta_trace_bad": res.trace.bad.tolist(), "meta_trace_grad_norm": res.trace.grad_norm.tolist(),
        "meta3_vs_grid_loss_ratio": float(res.loss[best] / losses[i]),
        "grid_grad_evals": len(G) * K, "meta_grad_evals": S * N * K * (1 + 3),
        "grid_cpu_s": t_grid["cpu_s"], "grid_wall_s": t_grid["wall_s"],
        "meta_cpu_s": res.timing["cpu_s"], "meta_wall_s": res.timing["wall_s"],
        "compile_s": {"grid": t_grid["compile_s"], "meta": res.timing["compile_s"]},
    }
    out["meta3_compute_fraction_counted"] = out["meta_grad_evals"] / out["grid_grad_evals"]
    out["meta3_compute_fraction_cpu"] = out["meta_cpu_s"] / out["grid_cpu_s"]
    log(f"joint meta: best {np.exp(res.log_hyper[best]).round(5).tolist()} loss {res.loss[best]:.4f} "
        f"(ratio {out['meta3_vs_grid_loss_ratio']:.4f}); compute meta/grid: counted "
        f"{out['meta3_compute_fraction_counted']:.3f}, CPU {out['meta3_compute_fraction_cpu']:.3f}")
    return out


def hd_study(objective, vl: meta.ValLoss, cfg):
    """SGD-HD from each (η0, β), all in one vmapped program, on the same batches as the trainer."""
    lr0, beta = (np.asarray(a, np.float32).ravel() for a in np.meshgrid(cfg["starts"], cfg["betas"], indexing="ij"))
    K = vl.horizon
    bs = vl.config.batch_size

    def one(lr, b):
        params, lrs = meta.run_optax(objective, meta.hypergradient_sgd(lr, b), vl.data, vl.params0, vl.key,
                                     n_steps=K, batch_size=bs, record=lambda s: s.learning_rate)
        return jnp.mean(objective.per_example_loss(params, vl.data.holdout)), lrs

    c = time.process_time()
    losses, lrs = jax.jit(jax.vmap(one))(jnp.asarray(lr0), jnp.asarray(beta))
    losses, lrs = np.asarray(losses), np.asarray(lrs)
    out = {"eta0": lr0.tolist(), "beta": beta.tolist(), "final_eta": lrs[:, -1].tolist(), "loss": losses.tolist(),
           "eta_trace": lrs[:, :: max(1, K // 50)].tolist(), "cpu_s_incl_compile": time.process_time() - c}
    for a, b, e, l in zip(lr0, beta, lrs[:, -1], losses):
        log(f"SGD-HD η0={a:.3g} β={b:.0e}: final η={e:.3g}, hold-out loss {l:.4f}")
    return out


def cost_study(vl: meta.ValLoss, cfg, best_eta):
    """Cost ratios and the three-way agreement at η = a fraction of the grid's best η (stable,
    with a clearly non-zero derivative)."""
    at = cfg["at_fraction_of_best"] * best_eta
    v = [math.log(at)]
    cost = meta.hypergrad_cost(vl, v, repeats=cfg["repeats"])
    remat = vl.replace(checkpoint=True)
    fwd = meta.hypergrad(vl, v, "forward").grad
    rev = meta.hypergrad(remat, v, "reverse").grad
    fd = meta.hypergrad(vl, v, "fd").grad
    rel = lambda a, b: float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)) /  # noqa: E731
                             np.linalg.norm(np.asarray(b, np.float64)))
    cost.update({"at_eta": at, "dloss_dlogeta": {"forward": float(fwd[0]), "reverse": float(rev[0]), "fd": float(fd[0])},
                 "rel_err_reverse_vs_forward": rel(rev, fwd), "rel_err_fd_vs_forward": rel(fd, fwd)})
    cost["hypergrad_rel_err"] = max(cost["rel_err_reverse_vs_forward"], cost["rel_err_fd_vs_forward"])
    log(f"cost (CPU-time ratios of medians): forward {cost['jvp_cost_ratio']:.2f}x, reverse+remat "
        f"{cost['vjp_cost_ratio']:.2f}x a run (wall: {cost['jvp_cost_ratio_wall']:.2f}x, {cost['vjp_cost_ratio_wall']:.2f}x; "
        f"paired: {cost['jvp_cost_ratio_paired']:.2f}x, {cost['vjp_cost_ratio_paired']:.2f}x); "
        f"hypergradient rel. err {cost['hypergrad_rel_err']:.2e}")
    return cost


# ------------------------------------------------------------------------------------- output
def _atomic_write(path: Path, data: bytes):
    with atomic_open(path, "wb") as f:
        f.write(data)


def _finite_json(x):
    """Strict JSON: non-finite floats (a diverged run's loss, an overflowing derivative) -> None."""
    if isinstance(x, dict):
        return {k: _finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_json(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _save_fig(fig, path: Path):
    from jaxreg.plots import save_figure

    save_figure(fig, path, dpi=100)


def figures(res, out_dir: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    names = [n for n in ("softmax", "binary") if n in res]
    # 1. loss vs η with hypergradient tangents, |hypergradient| vs η, for both problems
    fig, axs = plt.subplots(2, len(names), figsize=(5 * len(names), 6.5), squeeze=False)
    for col, name in enumerate(names):
        r = res[name]
        eta, loss, dl = (np.asarray(r[k], float) for k in ("grid_eta", "grid_loss", "grid_dloss_dlogeta"))
        ax = axs[0, col]
        ax.plot(eta, loss, "o-", ms=3, color="C0")
        h = 0.5 * np.diff(np.log(eta)).mean()
        bottom, top = 0.9 * np.nanmin(loss), 3.0 * np.nanmin(loss)
        wild = ~np.isfinite(dl) | (np.abs(dl) * h > 0.5 * (top - bottom))
        for e, l, d, w in zip(eta, loss, dl, wild):
            if not w:
                x = np.array([math.log(e) - h, math.log(e) + h])
                ax.plot(np.exp(x), l + d * (x - math.log(e)), "-", lw=2, color="C1")
        ax.plot([], [], "-", lw=2, color="C1", label="tangent: slope dL/dlog η (forward mode)")
        ax.plot(eta[wild], np.clip(loss[wild], bottom, 0.97 * top), "x", color="red", ms=7,
                label="|dL/dlog η| too large to draw / non-finite")
        ax.legend(fontsize=7, loc="upper left")
        ax.axvline(r["grid_best_eta"], color="gray", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_ylim(bottom, top)
        ax.set_title(f"{name}: hold-out loss after K={r['horizon']} steps vs η", fontsize=9)
        ax.set_xlabel("η")
        ax.set_ylabel("hold-out loss")
        ax = axs[1, col]
        a = np.abs(dl)
        ax.loglog(eta[np.isfinite(a)], a[np.isfinite(a)], "o-", ms=3)
        if np.any(~np.isfinite(a)):
            ax.plot(eta[~np.isfinite(a)], np.full((~np.isfinite(a)).sum(), np.nanmax(a[np.isfinite(a)])), "rx",
                    label="non-finite")
            ax.legend(fontsize=8)
        ax.set_xlabel("η")
        ax.set_ylabel("|dL/dlog η| (forward mode)")
        ax.set_title(f"{name}: |dL/dlog η| explodes past the edge of stability", fontsize=9)
    fig.tight_layout()
    p = out_dir / "meta_lr_landscape.png"
    _save_fig(fig, p)
    paths.append(p)
    plt.close(fig)

    # 2. meta trajectories (η and loss per outer step), flags marked
    fig, axs = plt.subplots(2, len(names), figsize=(5 * len(names), 6.5), squeeze=False)
    for col, name in enumerate(names):
        r = res[name]
        te, tl, bad = (np.asarray(r[k]) for k in ("meta_trace_eta", "meta_trace_loss", "meta_trace_bad"))
        for s in range(te.shape[0]):
            steps = np.arange(te.shape[1])
            axs[0, col].plot(steps, te[s], "o-", ms=3, label=f"start η={r['meta_starts'][s]:g}")
            axs[0, col].plot(steps[bad[s]], te[s][bad[s]], "rx", ms=8)
            ok = ~bad[s] & np.isfinite(tl[s])
            axs[1, col].plot(steps[ok], tl[s][ok], "o-", ms=3)
        axs[0, col].axhline(r["grid_best_eta"], color="gray", ls=":", label="grid best η")
        axs[0, col].set_yscale("log")
        axs[0, col].set_title(f"{name}: η per outer step (red x: rejected, chaotic/diverged)", fontsize=9)
        axs[0, col].legend(fontsize=7)
        axs[1, col].axhline(r["grid_best_loss"], color="gray", ls=":", label="best of grid")
        axs[1, col].axhline(1.02 * r["grid_best_loss"], color="gray", ls="--", lw=0.8, label="+2%")
        axs[1, col].set_ylim(0.95 * r["grid_best_loss"], 2.0 * r["grid_best_loss"])
        axs[1, col].set_xlabel("outer step (hypergradient evaluations)")
        axs[1, col].set_ylabel("hold-out loss")
        axs[1, col].legend(fontsize=7)
    fig.tight_layout()
    p = out_dir / "meta_lr_trajectories.png"
    _save_fig(fig, p)
    paths.append(p)
    plt.close(fig)

    # 3. horizon
    h = res.get("horizon")
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6)) if h else (None, None)
    for j, K in enumerate(h["horizons"] if h else []):
        eta, loss = (np.asarray(v, float) for v in h["curves"][str(K)])
        axs[0].plot(eta, loss, "o-", ms=3, color=f"C{j}", label=f"K={K}")
        axs[0].axvline(h["learned_eta"][j], color=f"C{j}", ls="--", lw=1)
    if h:
        axs[0].set_xscale("log")
        axs[0].set_ylim(0.9 * min(np.nanmin(np.asarray(h["curves"][str(K)][1], float)) for K in h["horizons"]), 2.5)
        axs[0].set_xlabel("η")
        axs[0].set_ylabel("hold-out loss after K steps")
        axs[0].set_title("softmax: loss vs η per horizon (dashed: meta-learned η)", fontsize=9)
        axs[0].legend(fontsize=8)
        axs[1].bar([str(K) for K in h["horizons"]], h["loss_at_longest_K"], color=[f"C{j}" for j in range(len(h["horizons"]))])
        lo = min(h["loss_at_longest_K"])
        axs[1].set_ylim(0.98 * lo, 1.02 * max(h["loss_at_longest_K"]) + 1e-3)
        axs[1].set_xlabel("horizon K used to learn η")
        axs[1].set_ylabel(f"hold-out loss after K={h['horizons'][-1]} steps")
        axs[1].set_title("does a short horizon bias the learned η?", fontsize=9)
        fig.tight_layout()
        p = out_dir / "meta_lr_horizon.png"
        _save_fig(fig, p)
        paths.append(p)
        plt.close(fig)

    # 4. joint: min over λ of the grid on (η0, T), meta trajectories projected; loss per step
    j = res["joint"]
    L = np.asarray(j["grid_loss"], float)
    e0, T, lam = (np.asarray(a) for a in j["axes_values"])
    fig, axs = plt.subplots(1, 3, figsize=(12, 3.6))
    im = axs[0].pcolormesh(np.log10(T), np.log10(e0), np.nanmin(L, axis=2), shading="nearest", vmax=2 * np.nanmin(L))
    fig.colorbar(im, ax=axs[0])
    axs[1].pcolormesh(np.log10(lam), np.log10(e0), np.nanmin(L, axis=1), shading="nearest", vmax=2 * np.nanmin(L))
    tr = np.asarray(j["meta_trace"])
    for s in range(tr.shape[0]):
        axs[0].plot(np.log10(tr[s, :, 1]), np.log10(tr[s, :, 0]), "w.-", ms=4)
        axs[0].plot(np.log10(tr[s, 0, 1]), np.log10(tr[s, 0, 0]), "wo", ms=6)
        axs[1].plot(np.log10(tr[s, :, 2]), np.log10(tr[s, :, 0]), "w.-", ms=4)
        axs[1].plot(np.log10(tr[s, 0, 2]), np.log10(tr[s, 0, 0]), "wo", ms=6)
        axs[2].plot(np.where(np.asarray(j["meta_trace_bad"])[s], np.nan, np.asarray(j["meta_trace_loss"])[s]), "o-", ms=3)
    gb = np.asarray(j["grid_best"])
    axs[0].plot(np.log10(gb[1]), np.log10(gb[0]), "r*", ms=12)
    axs[1].plot(np.log10(gb[2]), np.log10(gb[0]), "r*", ms=12)
    axs[0].set_xlabel("log10 T (epochs)")
    axs[0].set_ylabel("log10 η0")
    axs[0].set_title("grid min over λ; meta paths (white), grid best (red)", fontsize=9)
    axs[1].set_xlabel("log10 λ")
    axs[1].set_ylabel("log10 η0")
    axs[1].set_title("grid min over T", fontsize=9)
    axs[2].axhline(j["grid_best_loss"], color="gray", ls=":", label="best of 12³ grid")
    axs[2].axhline(1.02 * j["grid_best_loss"], color="gray", ls="--", lw=0.8, label="+2%")
    axs[2].set_ylim(0.95 * j["grid_best_loss"], 1.8 * j["grid_best_loss"])
    axs[2].set_xlabel("outer step")
    axs[2].set_ylabel("hold-out loss")
    axs[2].legend(fontsize=7)
    axs[2].set_title("joint (log η0, log T, log λ) meta-optimisation", fontsize=9)
    fig.tight_layout()
    p = out_dir / "meta_lr_joint.png"
    _save_fig(fig, p)
    paths.append(p)
    plt.close(fig)

    # 5. SGD-HD η trajectories vs the unrolled meta-optimum
    hd = res["hd"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    tr = np.asarray(hd["eta_trace"])
    steps = np.linspace(0, res["softmax"]["horizon"], tr.shape[1], endpoint=False)
    for i in range(tr.shape[0]):
        ax.plot(steps, tr[i], "-", lw=1.2, label=f"η0={hd['eta0'][i]:.0e}, β={hd['beta'][i]:.0e}")
    ax.axhline(res["softmax"]["meta_best_eta"][int(np.argmin(res["softmax"]["meta_best_loss"]))], color="k", ls="--",
               label="unrolled meta η")
    ax.set_yscale("log")
    ax.set_xlabel("inner step")
    ax.set_ylabel("η_t")
    ax.set_title("online SGD-HD learning rates (softmax)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    p = out_dir / "meta_lr_hd.png"
    _save_fig(fig, p)
    paths.append(p)
    plt.close(fig)
    return paths


def markdown(summary, res) -> str:
    s, b, j, h, c, hd = (res.get(k) for k in ("softmax", "binary", "joint", "horizon", "cost", "hd"))
    rows = [
        ("meta_vs_grid_loss_ratio", "log η, softmax: meta best / best of the η grid"),
        ("meta_compute_fraction", "its compute / the grid's (gradient evaluations)"),
        ("meta_compute_fraction_cpu", "same, measured CPU time"),
        ("binary_meta_vs_grid_loss_ratio", "log η, binary 2-vs-3: meta / grid"),
        ("binary_meta_compute_fraction", "its compute / the grid's (gradient evaluations)"),
        ("meta3_vs_grid_loss_ratio", "(log η0, log T, log λ): meta best / best of the 12³ grid"),
        ("meta3_compute_fraction", "its compute / the grid's (gradient evaluations)"),
        ("meta3_compute_fraction_cpu", "same, measured CPU time"),
        ("jvp_cost_ratio", "forward-mode hypergradient / one training run (CPU time)"),
        ("vjp_cost_ratio", "reverse mode with √K checkpointing / one run (CPU time)"),
        ("jvp_cost_ratio_wall", "forward / run (wall time)"),
        ("vjp_cost_ratio_wall", "reverse / run (wall time)"),
        ("jvp_cost_ratio_paired", "forward / run, median of per-round CPU ratios"),
        ("vjp_cost_ratio_paired", "reverse / run, median of per-round CPU ratios"),
        ("hypergrad_rel_err", "max relative disagreement forward / reverse / finite differences"),
    ]
    lines = ["# Meta-learning the learning rate (seed 004's exercise)", "",
             f"Data: {summary['data_source']}; {'SMOKE run' if summary['smoke'] else 'full run'}; "
             f"total {summary['total_wall_s']:.0f} s wall, {summary['total_cpu_s']:.0f} s CPU.", "",
             "| quantity | value | meaning |", "|---|---|---|"]
    for k, meaning in rows:
        v = summary.get(k)
        lines.append(f"| `{k}` | {v:.4g} | {meaning} |" if isinstance(v, (int, float)) else f"| `{k}` | {v} | {meaning} |")
    r3 = lambda xs: [round(float(x), 4) for x in xs]  # noqa: E731
    g3 = lambda xs: [float("%.3g" % x) for x in xs]  # noqa: E731
    lines += ["", "## Setups", "", summary["setup"], "", "## Details", "",
              f"* softmax η grid: best η = {s['grid_best_eta']:.3g}, loss {s['grid_best_loss']:.4f}; meta from η0 = "
              f"{s['meta_starts']}: best η {g3(s['meta_best_eta'])}, loss {r3(s['meta_best_loss'])}; outer steps to "
              f"within 2% of the grid's best, per start: {s['meta_steps_to_within_2pct']}; rejected (chaotic / "
              f"diverged) steps per start: {[int(np.sum(x)) for x in s['meta_trace_bad']]}; grid {s['grid_cpu_s']:.2f} s "
              f"CPU, meta {s['meta_cpu_s']:.2f} s CPU."]
    if b:
        lines.append(f"* binary 2-vs-3 η grid: best η = {b['grid_best_eta']:.3g}, loss {b['grid_best_loss']:.4f}; meta from "
                     f"η0 = {b['meta_starts']}: best η {g3(b['meta_best_eta'])}, loss {r3(b['meta_best_loss'])}; steps to "
                     f"within 2%: {b['meta_steps_to_within_2pct']}; rejected steps per start: "
                     f"{[int(np.sum(x)) for x in b['meta_trace_bad']]}.")
    lines.append(f"* joint: grid best (η0, T, λ) = {g3(j['grid_best'])}, loss {j['grid_best_loss']:.4f} "
                 f"({j['grid_n_diverged']} grid runs diverged); meta best losses {r3(j['meta_best_loss'])} at "
                 f"{[g3(p) for p in j['meta_best']]}; grid {j['grid_cpu_s']:.1f} s CPU ({j['grid_wall_s']:.1f} s wall), "
                 f"meta {j['meta_cpu_s']:.1f} s CPU ({j['meta_wall_s']:.1f} s wall).")
    if h:
        lines.append(f"* horizon (one start, η0 = {h['start']}, {h['n_steps']} outer steps): learned η for K = "
                     f"{h['horizons']}: {g3(h['learned_eta'])}; hold-out loss after K = {h['horizons'][-1]} steps with "
                     f"each: {r3(h['loss_at_longest_K'])}.")
    lines += [f"* SGD-HD (online, one run of K = {s['horizon']} steps each): (η0, β) = "
              f"{[(float('%.3g' % a), float('%.1g' % b_)) for a, b_ in zip(hd['eta0'], hd['beta'])]} -> final η "
              f"{g3(hd['final_eta'])}, hold-out loss {r3(hd['loss'])}.",
              f"* cost at η = {c['at_eta']:.3g}: run {c['run_cpu_s']:.3f} s CPU, forward {c['forward_cpu_s']:.3f} s, "
              f"reverse+remat {c['reverse_cpu_s']:.3f} s (medians of {c['repeats']} interleaved repeats); dL/dlog η: "
              f"forward {c['dloss_dlogeta']['forward']:.6g}, reverse {c['dloss_dlogeta']['reverse']:.6g}, "
              f"central differences {c['dloss_dlogeta']['fd']:.6g}.",
              "", "## Answer to the exercise", "", summary["answer"], ""]
    return "\n".join(lines)


def answer_text(summary, res) -> str:
    """The paragraph answering seed 004's exercise, worded from the measurements."""
    s, j, h, hd, c = (res.get(k) for k in ("softmax", "joint", "horizon", "hd", "cost"))
    big = [e for e, g in zip(s["grid_eta"], s["grid_dloss_dlogeta"]) if not np.isfinite(g) or abs(g) > 1e2]
    r1, f1, f1c = summary["meta_vs_grid_loss_ratio"], summary["meta_compute_fraction"], summary["meta_compute_fraction_cpu"]
    r3, f3, f3c = summary["meta3_vs_grid_loss_ratio"], summary["meta3_compute_fraction"], summary["meta3_compute_fraction_cpu"]
    pct = lambda r: f"{100 * abs(r - 1):.1f}% {'below' if r < 1 else 'above'}"  # noqa: E731
    text = [
        "It works, within limits that the measurements make precise. With a fixed initialisation and batch order, "
        "SGD's final hold-out loss is a deterministic, differentiable function of ε. Its derivative is exact: forward "
        "mode, reverse mode and central differences agree to "
        f"{c['hypergrad_rel_err']:.1e} (float32). It is also cheap: forward mode costs {c['jvp_cost_ratio']:.1f}x one "
        f"training run and reverse mode with √K checkpointing {c['vjp_cost_ratio']:.1f}x (CPU time).",
        f"Gradient descent on log ε (Adam on the hyperparameter) reached a hold-out loss {pct(r1)} the best of a "
        f"{len(s['grid_eta'])}-point grid "
        + ("(within the 2% target). " if r1 <= 1.02 else "(outside the 2% target). ")
        + (f"For this one scalar the grid is the cheaper tool: the meta-optimisation ({len(s['meta_starts'])} starts "
           f"x {len(s['meta_trace_loss'][0])} steps) used {f1:.1f}x the grid's gradient evaluations and {f1c:.1f}x its "
           "CPU time, and the grid, one vmapped call, also shows the whole curve."
           if f1 >= 1 or f1c >= 1 else
           f"It used {f1:.2f}x the grid's gradient evaluations ({f1c:.2f}x its CPU time)."),
        "The gradient pays off as the number of hyperparameters grows, because a grid's cost is exponential in it. "
        f"Jointly over (log η0, log T, log λ), the meta-optimisation reached {pct(r3)} the best of a "
        f"{int(np.prod([len(a) for a in j['axes_values']]))}-point grid "
        f"with {100 * f3:.1f}% of the grid's gradient evaluations ({100 * f3c:.1f}% of its CPU time)"
        + ("." if r3 <= 1.02 and f3 <= 0.10 else "; the targets were within 2% for at most 10% of the compute."),
        "Where it fails: past the edge of stability the loss stays finite, but the unrolled derivative becomes chaotic "
        "and grows exponentially with K"
        + (f" (|dL/dlog ε| > 100 or non-finite for ε ≳ {min(big):.2g} at K = {s['horizon']})" if big else "")
        + ". A naive gradient step from there flies off. The outer loop has to detect such steps, reject them and step "
        "back, as it does here; it can also start from a small ε.",
    ]
    if h:
        lo = np.asarray(h["loss_at_longest_K"], float)
        spread = 100 * (lo.max() - lo.min()) / lo.min()
        eta = np.asarray(h["learned_eta"], float)
        monotone = bool(np.all(np.diff(eta) > 0) or np.all(np.diff(eta) < 0))
        text.append(
            f"The horizon K changes the learned ε: {[float('%.2g' % x) for x in eta]} for K = {h['horizons']}"
            + (", monotonically" if monotone else ", with no consistent direction")
            + f". Run for {h['horizons'][-1]} steps, these give hold-out losses "
            f"{[round(float(x), 4) for x in lo]}, a spread of {spread:.1f}%. "
            + ("So the short-horizon bias is real but small on this convex problem, because the optimum sits just "
               "below the stability edge for every K." if spread < 2 else
               "So the short-horizon bias is substantial: tune on the horizon you will train for."))
    if hd:
        text.append(
            "Online hypergradient descent (SGD-HD) costs about one training run, but where it ends up depends on β "
            f"and on the start: final ε {[float('%.2g' % x) for x in hd['final_eta']]} for (ε0, β) = "
            f"{[(float('%.2g' % a), float('%.0e' % b)) for a, b in zip(hd['eta0'], hd['beta'])]}. A start in the chaotic "
            "regime stays there, because successive gradients are uncorrelated.")
    return " ".join(text)


# ------------------------------------------------------------------------------------- driver
def merge_config(base: dict, override: dict) -> dict:
    """A deep copy of ``base`` with ``override``'s entries (recursively for dicts; ``None``
    disables an optional study: "binary", "horizon")."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if k not in base:
            raise ValueError(f"config: unknown key {k!r} (known: {sorted(base)})")
        out[k] = merge_config(base[k], v) if isinstance(v, dict) and isinstance(base[k], dict) else copy.deepcopy(v)
    return out


def enable_compile_cache():
    """XLA's persistent compilation cache (compilation dominates the smoke run's time): directory
    ``$JAXREG_XLA_CACHE`` (default ~/.cache/jaxreg/xla; "0" disables). Leaves an already
    configured cache alone."""
    where = os.environ.get("JAXREG_XLA_CACHE", str(Path.home() / ".cache" / "jaxreg" / "xla"))
    if where == "0" or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def run(config=None, out_dir="results", smoke: bool = False, synthetic: bool = False) -> dict:
    """Run every study; write meta_lr.json, meta_lr.md and meta_lr_*.png to ``out_dir``; return
    the summary dict (the JSON's top-level numbers)."""
    enable_compile_cache()
    cfg = merge_config(SMOKE if smoke else CONFIG, config or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    key = jax.random.PRNGKey(cfg["seed"])
    data = load_data(synthetic, smoke, cfg["seed"])
    log(f"data: {data['source']}; softmax train {data['softmax'][0].shape}, hold-out {data['softmax'][2].shape}; "
        f"binary train {data['binary'][0].shape}")
    softmax = Objective("softmax", n_classes=10, fit_intercept=False)
    logistic = Objective("logistic", fit_intercept=False)
    zeros = lambda obj: obj.init_params(785, dtype=jnp.float32)  # noqa: E731

    sc = cfg["softmax"]
    sm_data = train_data(data["softmax"], sc.get("n_train"))

    def softmax_vl(K, checkpoint=None):
        return meta.make_val_loss(softmax, TrainConfig(method="minibatch", batch_size=sc["batch_size"]), sm_data,
                                  zeros(softmax), key, horizon=K, checkpoint=checkpoint)

    res = {}
    vl = softmax_vl(sc["horizon"])
    res["softmax"] = eta_study("softmax", vl, sc)
    res["softmax"]["horizon"] = sc["horizon"]
    res["cost"] = cost_study(vl, cfg["cost"], res["softmax"]["grid_best_eta"])

    bc = cfg.get("binary")
    if bc:
        bvl = meta.make_val_loss(logistic, TrainConfig(method="minibatch", batch_size=bc["batch_size"]),
                                 train_data(data["binary"]), zeros(logistic), key, horizon=bc["horizon"])
        res["binary"] = eta_study("binary", bvl, bc)
        res["binary"]["horizon"] = bc["horizon"]
    if cfg.get("horizon"):
        res["horizon"] = horizon_study(softmax_vl, vl, res["softmax"], cfg["horizon"], sc)
    res["hd"] = hd_study(softmax, vl, cfg["hd"])

    jc = cfg["joint"]
    j_data = train_data(data["softmax"], jc["n_train"])
    spe = jc["n_train"] // jc["batch_size"]
    jvl = meta.make_val_loss(softmax, TrainConfig(method="minibatch", batch_size=jc["batch_size"], schedule="inverse_time"),
                             j_data, zeros(softmax), key, horizon=jc["epochs"] * spe,
                             hyper_names=("log_lr", "log_decay_time", "log_l2"))
    res["joint"] = joint_study(jvl, jc)

    s, b, j, c = res["softmax"], res.get("binary"), res["joint"], res["cost"]
    summary = {
        "meta_vs_grid_loss_ratio": s["meta_vs_grid_loss_ratio"],
        "meta_compute_fraction": s["meta_compute_fraction_counted"],
        "meta_compute_fraction_cpu": s["meta_compute_fraction_cpu"],
        "binary_meta_vs_grid_loss_ratio": b["meta_vs_grid_loss_ratio"] if b else None,
        "binary_meta_compute_fraction": b["meta_compute_fraction_counted"] if b else None,
        "meta3_vs_grid_loss_ratio": j["meta3_vs_grid_loss_ratio"],
        "meta3_compute_fraction": j["meta3_compute_fraction_counted"],
        "meta3_compute_fraction_cpu": j["meta3_compute_fraction_cpu"],
        "jvp_cost_ratio": c["jvp_cost_ratio"], "vjp_cost_ratio": c["vjp_cost_ratio"],
        "jvp_cost_ratio_wall": c["jvp_cost_ratio_wall"], "vjp_cost_ratio_wall": c["vjp_cost_ratio_wall"],
        "jvp_cost_ratio_paired": c["jvp_cost_ratio_paired"], "vjp_cost_ratio_paired": c["vjp_cost_ratio_paired"],
        "hypergrad_rel_err": c["hypergrad_rel_err"],
        "smoke": smoke, "data_source": data["source"], "dtype": "float32", "devices": str(jax.devices()),
        "setup": (
            f"softmax: train {tuple(sm_data.train.X.shape)}, hold-out {tuple(sm_data.holdout.X.shape)}, mini-batch SGD batch "
            f"{sc['batch_size']}, constant η, K = {sc['horizon']}, zero init, no penalty; grid {sc['grid'][2]} log-spaced η in "
            f"[{sc['grid'][0]:g}, {sc['grid'][1]:g}]; meta: Adam({sc['outer_lr']}) on log η, {sc['n_steps']} steps from "
            f"η0 = {sc['starts']}, forward mode. "
            + (f"binary 2-vs-3: logistic, batch {bc['batch_size']}, K = {bc['horizon']}, same grid and meta settings. " if bc else "")
            + f"horizon study: the softmax setup for K = {cfg['horizon']['horizons'] if cfg.get('horizon') else '-'}. "
            f"SGD-HD: the softmax setup, η0 x β = {cfg['hd']['starts']} x {cfg['hd']['betas']}. "
            f"joint: first {jc['n_train']} training images, batch {jc['batch_size']}, {jc['epochs']} epochs "
            f"(K = {jc['epochs'] * spe}), η0/(1 + epoch/T), L2 (λ/2)‖W‖²; grid "
            f"{'x'.join(str(a[2]) for a in jc['axes'])} over η0 in [{jc['axes'][0][0]:g}, {jc['axes'][0][1]:g}], "
            f"T in [{jc['axes'][1][0]:g}, {jc['axes'][1][1]:g}] epochs, λ in [{jc['axes'][2][0]:g}, {jc['axes'][2][1]:g}]; "
            f"meta: Adam({jc['outer_lr']}), {jc['n_steps']} steps from {len(jc['starts'])} starts, forward mode "
            "(3 tangents). Compute counted in gradient evaluations: a run of K steps = K; a forward-mode "
            "hypergradient with m hyperparameters = (1 + m) K. CPU times exclude compilation."),
    }
    summary["answer"] = answer_text(summary, res)
    summary["total_wall_s"] = time.perf_counter() - t_wall
    summary["total_cpu_s"] = time.process_time() - t_cpu
    paths = figures(res, out_dir)
    summary["figures"] = [p.name for p in paths]
    payload = dict(summary, details=res, config=cfg)
    _atomic_write(out_dir / "meta_lr.json", json.dumps(_finite_json(payload), indent=1, allow_nan=False).encode())
    _atomic_write(out_dir / "meta_lr.md", markdown(summary, res).encode())
    log(f"wrote {out_dir / 'meta_lr.json'}, meta_lr.md, {len(paths)} figures in {summary['total_wall_s']:.0f} s")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="small and fast variant")
    p.add_argument("--synthetic", action="store_true", help="synthetic data instead of MNIST")
    p.add_argument("--out", default=None, help="output directory (default: results; results/smoke with --smoke, "
                   "so a smoke run never overwrites the full results)")
    args = p.parse_args(argv)
    out = args.out or ("results/smoke" if args.smoke else "results")
    summary = run(None, out, smoke=args.smoke, synthetic=args.synthetic)
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, str)}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
