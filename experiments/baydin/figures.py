"""The figure of Baydin et al.'s logistic-regression experiment (their Fig. 2, left column):
training loss per iteration, validation loss per epoch and α per iteration for the six methods
(seed means; :class:`experiments.baydin.study.Curves`); and the learned-schedule comparison on that
set-up (:func:`schedule_figure`, a :func:`experiments.meta_learning.learned.schedule_study` record)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

STYLE = {"sgd": ("C0", "--"), "sgd_hd": ("C0", "-"), "sgdn": ("C1", "--"), "sgdn_hd": ("C1", "-"),
         "adam": ("C2", "--"), "adam_hd": ("C2", "-")}
LABEL = {"sgd": "SGD", "sgd_hd": "SGD-HD", "sgdn": "SGDN", "sgdn_hd": "SGDN-HD", "adam": "Adam", "adam_hd": "Adam-HD"}


def moving_average(x, window: int):
    """Trailing mean over ``window`` points (the first ones over what there is), (..., K)."""
    x = np.asarray(x, float)
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    out[..., window:] = c[..., window:] - c[..., :-window]
    return out / np.minimum(np.arange(1, x.shape[-1] + 1), window)


def baydin_figure(curves, methods, *, window: int = 50, n_seeds: int = 1) -> Figure:
    """Three panels: mini-batch training loss per iteration (trailing mean over ``window``
    iterations), validation loss per epoch, α per iteration (symmetric-log axis: linear within
    ±1e-4); one line per method."""
    fig = Figure(figsize=(6.5, 9.5))
    axs = fig.subplots(3, 1)
    K = curves.alpha.shape[1]
    it = np.arange(1, K + 1)
    for i, m in enumerate(methods):
        color, ls = STYLE[m]
        kw = dict(color=color, ls=ls, lw=1.2, label=LABEL[m])
        axs[0].plot(it, moving_average(curves.iter_loss[i], window), **kw)
        axs[1].plot(np.arange(curves.valid_loss.shape[1]), curves.valid_loss[i], marker="o", ms=3, **kw)
        axs[2].plot(it, curves.alpha[i], **kw)
    axs[0].set_yscale("log")
    axs[0].set_ylabel(f"training loss (mini-batch,\nmean of last {window} iterations)")
    axs[0].set_xlabel("iteration")
    axs[1].set_yscale("log")
    axs[1].set_ylabel("validation loss")
    axs[1].set_xlabel("epoch")
    axs[2].set_yscale("symlog", linthresh=1e-4)  # SGDN-HD's α may cross 0; Adam-HD's stays ≈ α0
    axs[2].set_ylabel("α (learning rate, symlog)")
    axs[2].set_xlabel("iteration")
    axs[2].axhline(0.0, color="gray", lw=0.5)
    axs[0].legend(fontsize=7, ncol=3)
    axs[0].set_title(f"Logistic regression on MNIST (Baydin et al. 2018, Fig. 2 left); mean of {n_seeds} seeds",
                     fontsize=9)
    for ax in axs:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def schedule_figure(rec) -> Figure:
    """Left: η per update of the best constant η, the best η0/(1 + epoch/T) and the learned
    piecewise schedule; right: the hold-out loss at each outer step of the learned schedule's
    meta-optimisation against the other methods' best losses."""
    fig = Figure(figsize=(10, 3.8))
    ax, bx = fig.subplots(1, 2)
    K, spe = rec["horizon"], rec["steps_per_epoch"]
    t = np.arange(K)
    eta0, T = rec["grid2d_best"]
    rates = np.asarray(rec["learned_rates"])
    ax.plot(t, np.full(K, rec["const_best_eta"]), color="C0", label=f"best constant η ({rec['const_best_loss']:.4f})")
    ax.plot(t, eta0 / (1 + (t // spe) / T), color="C1", label=f"best η0/(1+epoch/T) ({rec['grid2d_best_loss']:.4f})")
    ax.step(t, rates[np.minimum(t // rec["every"], len(rates) - 1)], where="post", color="C3",
            label=f"learned, {len(rates)} rates ({rec['learned_loss']:.4f})")
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("η")
    ax.legend(fontsize=7)
    ax.set_title("learning rate per update (hold-out loss after the run)", fontsize=9)
    trace = np.where(np.asarray(rec["meta_trace_bad"]), np.nan, np.asarray(rec["meta_trace_loss"], float))
    bx.plot(np.arange(1, len(trace) + 1), trace, "o-", color="C3", ms=3, label="learned schedule")
    for key, name, color in (("const_best_loss", "constant η grid", "C0"), ("grid2d_best_loss", "η0/(1+epoch/T) grid",
                                                                              "C1"), ("sgd_hd_loss", "SGD-HD", "C2")):
        bx.axhline(rec[key], color=color, ls="--", lw=1, label=name)
    bx.set_xlabel("outer step (reverse-mode hypergradient)")
    bx.set_ylabel("hold-out loss")
    bx.legend(fontsize=7)
    bx.set_title("meta-optimisation of the schedule", fontsize=9)
    fig.tight_layout()
    return fig
