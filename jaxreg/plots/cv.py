"""Cross-validation figures: the CV curve (mean ± SE over folds vs λ, the best and the 1-SE λ
marked, as glmnet's ``plot.cv.glmnet``) and an η × λ heatmap of a cross-validated score.

Arrays in, a :class:`matplotlib.figure.Figure` out (see :mod:`jaxreg.plots.paper`);
:func:`cv_figures` draws both from a :class:`jaxreg.cv.CVResult`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from jaxreg.plots.paper import DPI  # noqa: F401  (one resolution for every figure)

__all__ = ["BEST", "ONE_SE", "cv_curve", "heatmap", "cv_figures"]

BEST, ONE_SE = "tab:red", "tab:purple"


def cv_curve(lambdas, mean, se, *, best: Optional[float] = None, one_se: Optional[float] = None,
             ylabel: str = "hold-out accuracy", xlabel: str = "λ", title: str = "", series=None,
             figsize=(5.0, 3.6)) -> Figure:
    """Mean ± SE of a fold score against λ (log axis), the selected λ values as vertical lines.

    lambdas, mean, se: (L,) or, with ``series`` (labels), (S, L) for several curves (e.g. one per
    l1_ratio); best, one_se: the λ chosen by the "best" and the one-standard-error rules.
    """
    lam = np.asarray(lambdas, float)
    mean, se = np.atleast_2d(np.asarray(mean, float)), np.atleast_2d(np.asarray(se, float))
    if mean.shape != se.shape or mean.shape[-1] != lam.size:
        raise ValueError(f"mean and se must have shape (L,) or (S, L) with L = {lam.size}, got {mean.shape} and {se.shape}")
    labels = list(series) if series is not None else [None] * mean.shape[0]
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    for m, s, label in zip(mean, se, labels):
        ax.errorbar(lam, m, yerr=s, fmt="o-", ms=3, lw=1.2, capsize=2, label=label)
    for value, color, name in ((best, BEST, "best"), (one_se, ONE_SE, "1 SE")):
        if value is not None:
            ax.axvline(value, color=color, ls="--", lw=1.2, label=f"{name}: λ = {value:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig


def heatmap(rows, cols, values, *, row_label: str = "learning rate η", col_label: str = "λ",
            value_label: str = "mean hold-out accuracy", title: str = "", mark: Optional[tuple] = None,
            figsize=(5.6, 3.8)) -> Figure:
    """``values`` (R, C) as an image with rows (e.g. η) down and columns (e.g. λ) across, each
    cell annotated; ``mark`` = (row index, column index) outlines the selected cell."""
    v = np.asarray(values, float)
    if v.shape != (len(rows), len(cols)):
        raise ValueError(f"values must have shape ({len(rows)}, {len(cols)}), got {v.shape}")
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(v, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), [f"{c:.2g}" for c in cols], fontsize=7, rotation=45)
    ax.set_yticks(range(len(rows)), [f"{r:.2g}" for r in rows], fontsize=7)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    finite = v[np.isfinite(v)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            ax.text(j, i, f"{v[i, j]:.3f}", ha="center", va="center", fontsize=6,
                    color="black" if np.isfinite(v[i, j]) and v[i, j] > mid else "white")
    if mark is not None:
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((mark[1] - 0.5, mark[0] - 0.5), 1, 1, fill=False, ec=BEST, lw=2))
    fig.colorbar(im, ax=ax, label=value_label)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _fmt(axis, v) -> str:
    return f"{axis}={v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{axis}={v}"


def cv_figures(cvr, metric: str = "holdout_acc", *, lam_axis: str = "lam", row_axis: str = "learning_rate",
               title: str = "") -> dict:
    """``{"cv_curve": Figure[, "heatmap": Figure]}`` from a :class:`jaxreg.cv.CVResult`: the CV
    curve along ``lam_axis`` (one curve per value of the other axes, at most 6), with the λ of
    the "best" and "1se" selections; the heatmap of ``row_axis`` × ``lam_axis`` (other axes at
    the best point's values) when the grid has both."""
    axes = cvr.axes
    if lam_axis not in axes:
        raise ValueError(f"lam_axis must be an axis of the grid {axes}, got {lam_axis!r}")
    mean, se = cvr.mean(metric), cvr.se(metric)
    best, one = cvr.select(metric, "best"), cvr.select(metric, "1se", along=lam_axis)
    li = axes.index(lam_axis)
    lam = np.asarray(cvr.sweep.values[li], float)
    m, s = np.moveaxis(mean, li, -1).reshape(-1, lam.size), np.moveaxis(se, li, -1).reshape(-1, lam.size)
    others = [a for a in axes if a != lam_axis]
    values = {a: cvr.sweep.values[axes.index(a)] for a in others}
    labels = [", ".join(_fmt(a, values[a][k]) for a, k in zip(others, combo))
              for combo in np.ndindex(*[len(values[a]) for a in others])]
    keep = slice(0, 6)
    figs = {"cv_curve": cv_curve(lam, m[keep], s[keep], best=best.config[lam_axis], one_se=one.config[lam_axis],
                                 ylabel=metric.replace("_", " "), title=title, series=labels[keep] if others else None)}
    if row_axis in axes:
        ri = axes.index(row_axis)
        index = list(best.index)
        index[ri], index[li] = slice(None), slice(None)
        grid = mean[tuple(index)]
        grid = grid if ri < li else grid.T
        figs["heatmap"] = heatmap(cvr.sweep.values[ri], lam, grid, value_label=f"mean {metric.replace('_', ' ')}",
                                  title=title, mark=(best.index[ri], best.index[li]))
    return figs
