"""Figures of the meta-learning study (``experiments/meta_lr.py``): dicts of measurements in, a
:class:`matplotlib.figure.Figure` out, built on a fresh ``Figure`` (no pyplot state).

The inputs are the records the study writes to ``meta_lr.json`` (``details``):

* an *η study* (``meta_landscape``, ``meta_trajectories``): ``grid_eta`` (N,), ``grid_loss`` (N,),
  ``grid_dloss_dlogeta`` (N,), ``grid_best_eta``, ``grid_best_loss``, ``horizon`` (K),
  ``meta_starts`` (S,), ``meta_trace_eta`` / ``meta_trace_loss`` / ``meta_trace_bad`` (S, steps);
* ``meta_horizon_bias``: ``horizons`` (H,), ``curves`` {str(K): [η (n,), loss (n,)]}, ``learned_eta``
  (H,), ``loss_at_longest_K`` (H,);
* ``meta_joint``: ``axes_values`` [η0 (a,), T (b,), λ (c,)], ``grid_loss`` (a, b, c), ``grid_best``
  (3,), ``grid_best_loss``, ``meta_trace`` (S, steps, 3), ``meta_trace_loss`` /
  ``meta_trace_bad`` (S, steps);
* ``meta_online_rates``: ``eta0`` / ``beta`` (G,), ``eta_trace`` (G, n) sampled evenly over K steps.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure


def _a(x):
    return np.asarray(x, float)


def meta_landscape(studies: Mapping[str, Mapping]) -> Figure:
    """Per η study (a column): hold-out loss vs η with the hypergradient drawn as tangents, and
    |dL/dlog η| vs η (it explodes past the edge of stability)."""
    fig = Figure(figsize=(5 * len(studies), 6.5))
    axs = fig.subplots(2, len(studies), squeeze=False)
    for col, (name, r) in enumerate(studies.items()):
        eta, loss, dl = _a(r["grid_eta"]), _a(r["grid_loss"]), _a(r["grid_dloss_dlogeta"])
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
    return fig


def meta_trajectories(studies: Mapping[str, Mapping]) -> Figure:
    """Per η study: η and the accepted hold-out loss per outer step of each start (red x: a
    rejected step), against the grid's best."""
    fig = Figure(figsize=(5 * len(studies), 6.5))
    axs = fig.subplots(2, len(studies), squeeze=False)
    for col, (name, r) in enumerate(studies.items()):
        te, tl = _a(r["meta_trace_eta"]), _a(r["meta_trace_loss"])
        bad = np.asarray(r["meta_trace_bad"], bool)
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
    return fig


def meta_horizon_bias(h: Mapping) -> Figure:
    """Loss vs η per horizon K (dashed: the η learned at that K) and the hold-out loss after the
    longest horizon of each learned η."""
    fig = Figure(figsize=(10, 3.6))
    axs = fig.subplots(1, 2)
    Ks = list(h["horizons"])
    for j, K in enumerate(Ks):
        eta, loss = (_a(v) for v in h["curves"][str(K)])
        axs[0].plot(eta, loss, "o-", ms=3, color=f"C{j}", label=f"K={K}")
        axs[0].axvline(h["learned_eta"][j], color=f"C{j}", ls="--", lw=1)
    axs[0].set_xscale("log")
    axs[0].set_ylim(0.9 * min(np.nanmin(_a(h["curves"][str(K)][1])) for K in Ks), 2.5)
    axs[0].set_xlabel("η")
    axs[0].set_ylabel("hold-out loss after K steps")
    axs[0].set_title("softmax: loss vs η per horizon (dashed: meta-learned η)", fontsize=9)
    axs[0].legend(fontsize=8)
    axs[1].bar([str(K) for K in Ks], h["loss_at_longest_K"], color=[f"C{j}" for j in range(len(Ks))])
    axs[1].set_ylim(0.98 * min(h["loss_at_longest_K"]), 1.02 * max(h["loss_at_longest_K"]) + 1e-3)
    axs[1].set_xlabel("horizon K used to learn η")
    axs[1].set_ylabel(f"hold-out loss after K={Ks[-1]} steps")
    axs[1].set_title("does a short horizon bias the learned η?", fontsize=9)
    fig.tight_layout()
    return fig


def meta_joint(j: Mapping) -> Figure:
    """The (η0, T, λ) grid as two min-projections with the meta paths (white) and the grid's
    best (red star), and the accepted loss per outer step."""
    L = _a(j["grid_loss"])
    e0, T, lam = (np.asarray(a) for a in j["axes_values"])
    fig = Figure(figsize=(12, 3.6))
    axs = fig.subplots(1, 3)
    im = axs[0].pcolormesh(np.log10(T), np.log10(e0), np.nanmin(L, axis=2), shading="nearest", vmax=2 * np.nanmin(L))
    fig.colorbar(im, ax=axs[0])
    axs[1].pcolormesh(np.log10(lam), np.log10(e0), np.nanmin(L, axis=1), shading="nearest", vmax=2 * np.nanmin(L))
    tr, bad, tl = _a(j["meta_trace"]), np.asarray(j["meta_trace_bad"], bool), _a(j["meta_trace_loss"])
    for s in range(tr.shape[0]):
        for ax, k in ((axs[0], 1), (axs[1], 2)):
            ax.plot(np.log10(tr[s, :, k]), np.log10(tr[s, :, 0]), "w.-", ms=4)
            ax.plot(np.log10(tr[s, 0, k]), np.log10(tr[s, 0, 0]), "wo", ms=6)
        axs[2].plot(np.where(bad[s], np.nan, tl[s]), "o-", ms=3)
    gb = _a(j["grid_best"])
    axs[0].plot(np.log10(gb[1]), np.log10(gb[0]), "r*", ms=12)
    axs[1].plot(np.log10(gb[2]), np.log10(gb[0]), "r*", ms=12)
    axs[0].set_xlabel("log10 T (epochs)")
    axs[0].set_ylabel("log10 η0")
    axs[0].set_title("grid min over λ; meta paths (white), grid best (red)", fontsize=9)
    axs[1].set_xlabel("log10 λ")
    axs[1].set_ylabel("log10 η0")
    axs[1].set_title("grid min over T", fontsize=9)
    shape = "x".join(str(n) for n in L.shape)
    axs[2].axhline(j["grid_best_loss"], color="gray", ls=":", label=f"best of {shape} grid")
    axs[2].axhline(1.02 * j["grid_best_loss"], color="gray", ls="--", lw=0.8, label="+2%")
    axs[2].set_ylim(0.95 * j["grid_best_loss"], 1.8 * j["grid_best_loss"])
    axs[2].set_xlabel("outer step")
    axs[2].set_ylabel("hold-out loss")
    axs[2].legend(fontsize=7)
    axs[2].set_title("joint (log η0, log T, log λ) meta-optimisation", fontsize=9)
    fig.tight_layout()
    return fig


def meta_online_rates(hd: Mapping, horizon: int, reference_eta: float) -> Figure:
    """SGD-HD's η_t per (η0, β) over the K = ``horizon`` inner steps, against ``reference_eta``
    (the unrolled meta-optimum)."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    tr = _a(hd["eta_trace"])
    steps = np.linspace(0, horizon, tr.shape[1], endpoint=False)
    for i in range(tr.shape[0]):
        ax.plot(steps, tr[i], "-", lw=1.2, label=f"η0={hd['eta0'][i]:.0e}, β={hd['beta'][i]:.0e}")
    ax.axhline(reference_eta, color="k", ls="--", label="unrolled meta η")
    ax.set_yscale("log")
    ax.set_xlabel("inner step")
    ax.set_ylabel("η_t")
    ax.set_title("online SGD-HD learning rates (softmax)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def meta_figures(details: Mapping) -> dict:
    """Every figure of the study from its ``details`` records: ``{file name: Figure}`` in the
    order landscape, trajectories, horizon (when studied), joint, SGD-HD (against the best
    meta-learned η of the softmax study)."""
    studies = {k: details[k] for k in ("softmax", "binary") if k in details}
    figs = {"meta_lr_landscape.png": meta_landscape(studies), "meta_lr_trajectories.png": meta_trajectories(studies)}
    if details.get("horizon"):
        figs["meta_lr_horizon.png"] = meta_horizon_bias(details["horizon"])
    figs["meta_lr_joint.png"] = meta_joint(details["joint"])
    s = details["softmax"]
    figs["meta_lr_hd.png"] = meta_online_rates(details["hd"], s["horizon"],
                                               s["meta_best_eta"][int(np.argmin(s["meta_best_loss"]))])
    return figs
