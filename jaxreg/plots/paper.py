"""Figure functions for the paper's plots: arrays in, a :class:`matplotlib.figure.Figure` out.

No training happens here and nothing here feeds back into training. Every function builds its
figure with the object-oriented API on a fresh ``Figure`` (no pyplot global state, so nothing
leaks between calls or needs closing), and :func:`save_figure` writes it atomically as a small
PNG (dpi 100 by default).

Shapes: a *series* is a 1-D array; a *weight image* is a ``(784,)`` vector (or ``(785,)`` with the
bias feature first, which is dropped) or a ``(28, 28)`` array.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # headless; must precede any pyplot import anywhere in the process
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from jaxreg.atomic import atomic_open  # noqa: E402

__all__ = ["DPI", "DIVERGING", "SET_COLORS", "as_image", "curves", "curve_panels", "weight_images",
           "weight_image_grid", "metric_vs_lambda", "weights_over_digits", "sigmoid_fit", "save_figure",
           "save_figures"]

DPI = 100
DIVERGING = "RdBu_r"  # red = positive weight, blue = negative, white = 0
# One colour per data set, the same in every figure.
SET_COLORS = {"train": "tab:blue", "hold-out": "tab:orange", "test": "tab:green"}


def _color(label: str):
    for key, c in SET_COLORS.items():
        if label.lower().startswith(key):
            return c
    return None


def as_image(w, side: int = 28) -> np.ndarray:
    """A weight vector as a ``(side, side)`` image; a leading bias entry is dropped."""
    w = np.asarray(w, dtype=float)
    if w.ndim == 2 and w.shape == (side, side):
        return w
    w = w.reshape(-1)
    if w.size == side * side + 1:
        w = w[1:]
    if w.size != side * side:
        raise ValueError(f"expected {side * side} (or {side * side + 1}) weights, got {w.size}")
    return w.reshape(side, side)


def _plot_series(ax, x, series: Mapping[str, np.ndarray], styles: Optional[Mapping] = None):
    for label, y in series.items():
        y = np.asarray(y, dtype=float)
        xs = np.arange(1, len(y) + 1) if x is None else np.asarray(x)[: len(y)]
        kw = dict((styles or {}).get(label, {}))
        kw.setdefault("color", _color(label))
        ax.plot(xs, y, label=label, lw=1.4, **kw)


def curves(series: Mapping[str, np.ndarray], x=None, *, xlabel="iteration", ylabel="",
           title="", logy=False, ylim=None, figsize=(5.0, 3.6)) -> Figure:
    """One panel of curves, e.g. ``{"train": ..., "hold-out": ..., "test": ...}`` over ``x``."""
    return curve_panels([dict(series=series, x=x, title=title)], xlabel=xlabel, ylabel=ylabel,
                        logy=logy, ylim=ylim, ncols=1, panel_size=figsize)


def curve_panels(panels: Sequence[Mapping], *, xlabel="iteration", ylabel="", ncols=2,
                 logy=False, ylim=None, sharey=False, suptitle="",
                 panel_size=(4.0, 3.0)) -> Figure:
    """Several panels of curves (one per λ, per digit pair, loss vs accuracy ...).

    Each panel is a mapping with ``series`` (label -> 1-D array), and optional ``x``, ``title``,
    ``xlabel``, ``ylabel``, ``ylim``, ``logy`` (overriding the figure-wide values), ``styles``
    (label -> plot keywords), ``legend_loc`` and ``vline`` (an x position to mark, e.g. where
    early stopping stopped).
    """
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + (0.4 if suptitle else 0)),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=sharey, squeeze=False)).ravel()
    for ax, p in zip(axes, panels):
        _plot_series(ax, p.get("x"), p["series"], p.get("styles"))
        if p.get("vline") is not None:
            ax.axvline(p["vline"], color="0.5", ls=":", lw=1)
        ax.set_title(p.get("title", ""), fontsize=10)
        ax.set_xlabel(p.get("xlabel", xlabel))
        ax.set_ylabel(p.get("ylabel", ylabel))
        if p.get("logy", logy):
            ax.set_yscale("log")
        if p.get("ylim", ylim) is not None:
            ax.set_ylim(*p.get("ylim", ylim))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc=p.get("legend_loc", "best"))
    for ax in axes[n:]:
        ax.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def weight_images(images: Mapping[str, np.ndarray], *, ncols=None, title="", shared_scale=False,
                  cmap=DIVERGING, panel=2.2, colorbar=True) -> Figure:
    """Weight vectors as 28×28 images, diverging colormap centred at 0 (white = zero weight).

    ``shared_scale``: one symmetric colour range for all panels (compare magnitudes, e.g. across
    λ); otherwise each panel is scaled to its own max |w| (compare patterns).
    """
    labels = list(images)
    n = len(labels)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel * ncols, panel * nrows + (0.35 if title else 0)),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    imgs = [as_image(images[k]) for k in labels]
    vmax_all = max(float(np.max(np.abs(im))) for im in imgs) or 1.0
    for ax, label, im in zip(axes, labels, imgs):
        vmax = vmax_all if shared_scale else (float(np.max(np.abs(im))) or 1.0)
        h = ax.imshow(im, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if colorbar and not shared_scale:
            fig.colorbar(h, ax=ax, shrink=0.8, pad=0.02)
    if colorbar and shared_scale:
        fig.colorbar(h, ax=axes[:n].tolist(), shrink=0.8, pad=0.02)
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def weight_image_grid(rows: Mapping[str, Sequence[np.ndarray]], col_labels: Sequence[str], *,
                      title="", cmap=DIVERGING, panel=1.6) -> Figure:
    """A grid of weight images: one row per label (e.g. "L1", "L2"), one column per λ.

    All images of a row share one symmetric colour range, so shrinking weights look fainter.
    """
    names = list(rows)
    ncols = len(col_labels)
    fig = Figure(figsize=(panel * ncols + 1.0, panel * len(names) + (0.4 if title else 0.1)),
                 layout="constrained")
    axes = fig.subplots(len(names), ncols, squeeze=False)
    for r, name in enumerate(names):
        imgs = [as_image(w) for w in rows[name]]
        vmax = max(float(np.max(np.abs(im))) for im in imgs) or 1.0
        for c, im in enumerate(imgs):
            ax = axes[r, c]
            h = ax.imshow(im, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_labels[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
        fig.colorbar(h, ax=axes[r, :].tolist(), shrink=0.85, pad=0.01)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def metric_vs_lambda(lambdas, series: Mapping[str, np.ndarray], *, ylabel="", title="",
                     logy=False, ylim=None, figsize=(5.0, 3.6)) -> Figure:
    """Values (weight length, test accuracy ...) against λ on a log axis, one line per label."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    lam = np.asarray(lambdas, dtype=float)
    order = np.argsort(lam)
    for label, v in series.items():
        ax.plot(lam[order], np.asarray(v, dtype=float)[order], "o-", label=label, lw=1.4, ms=4)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("λ")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def weights_over_digits(weights, averages, *, title="", class_names=None, panel=1.0) -> Figure:
    """The paper's Fig. 12: the C weight images (row 1) above the C average digits (row 2).

    weights: ``(784, C)`` or ``(785, C)`` (bias row dropped); averages: ``(C, 784)`` or
    ``(C, 28, 28)``. Weights use the diverging colormap (own scale per class), digits gray.
    """
    weights = np.asarray(weights, dtype=float)
    averages = np.asarray(averages, dtype=float)
    C = weights.shape[1]
    names = class_names or [str(k) for k in range(C)]
    fig = Figure(figsize=(panel * C, 2 * panel + (0.45 if title else 0.15)), layout="constrained")
    axes = fig.subplots(2, C, squeeze=False)
    for k in range(C):
        w = as_image(weights[:, k])
        vmax = float(np.max(np.abs(w))) or 1.0
        axes[0, k].imshow(w, cmap=DIVERGING, vmin=-vmax, vmax=vmax, interpolation="nearest")
        axes[0, k].set_title(names[k], fontsize=9)
        axes[1, k].imshow(as_image(averages[k]), cmap="gray", interpolation="nearest")
        for r in range(2):
            axes[r, k].set_xticks([])
            axes[r, k].set_yticks([])
    axes[0, 0].set_ylabel("weights", fontsize=8)
    axes[1, 0].set_ylabel("average", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def sigmoid_fit(x, t, grid, prob, *, threshold=None, references: Optional[Mapping] = None,
                xlabel="studying hours", ylabel="predicted probability of pass", title="",
                figsize=(5.0, 3.6)) -> Figure:
    """The lecture notes' plot (hours studied vs pass): 0/1 points, the fitted σ(w0 + w1 x) on ``grid``, the 0.5 crossing, and
    ``references`` (label -> probabilities on ``grid``, e.g. another fit) as thin dashed lines."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    x, t = np.asarray(x, dtype=float), np.asarray(t)
    ax.plot(x[t == 0], t[t == 0], "o", color="tab:red", ms=7, label="fail (0)")
    ax.plot(x[t == 1], t[t == 1], "s", color="tab:blue", ms=7, label="pass (1)")
    ax.plot(grid, prob, "-", color="tab:green", lw=2, label="fitted σ(w₀ + w₁x)")
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    if threshold is not None:
        ax.plot([threshold], [0.5], "^", color="goldenrod", ms=10,
                label=f"0.5 crossing: {threshold:.2f} h")
    for label, p in (references or {}).items():
        ax.plot(grid, p, "--", color="0.4", lw=1, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.08, 1.08)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def save_figure(fig: Figure, path, *, dpi: int = DPI) -> str:
    """Write ``fig`` as a PNG at ``path`` atomically (temp file in the same folder, then
    ``os.replace``): a reader never sees a half-written file and no temp file is left behind."""
    path = os.fspath(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    return path


def save_figures(out_dir, figures: Mapping[str, Figure], *, dpi: int = DPI) -> list:
    """:func:`save_figure` each ``{file name: figure}`` into ``out_dir``; returns the names."""
    for name, fig in figures.items():
        save_figure(fig, os.path.join(out_dir, name), dpi=dpi)
    return list(figures)
