"""The scaling study's figure: seconds per unit of work against the grid size, n and d, with the
float32 matmul roofline of the same shapes beside each curve."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

PANELS = (("models", "models in the grid", "s per model-epoch"),
          ("n", "training examples n", "s per epoch"),
          ("d", "features d (random projection)", "s per epoch"))


def scaling_figure(scale: dict) -> Figure:
    """Three log-log panels from :mod:`experiments.benchmarks.timing`-style points ``{"models": [{"n", "d",
    "models", "seconds", "roofline_s", "epochs"}, ...], "n": [...], "d": [...]}``: measured
    (solid) and roofline (dashed), per model-epoch in the first panel, per epoch in the others."""
    fig = Figure(figsize=(12.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (key, xlabel, ylabel) in zip(axes, PANELS):
        pts = scale[key]
        x = np.asarray([p[key] for p in pts], float)
        per = np.asarray([p["epochs"] * (p["models"] if key == "models" else 1) for p in pts], float)
        ax.loglog(x, [p["seconds"] for p in pts] / per, "o-", color="tab:blue", label="jaxreg (engine)")
        ax.loglog(x, [p["roofline_s"] for p in pts] / per, "--", color="0.4", label="float32 matmul roofline")
        ax.set_xticks(x, [f"{v:g}" for v in x])  # the measured sizes, no log-minor labels
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("Cost of a full-batch softmax epoch as the work grows (2 CPU cores)", fontsize=10)
    return fig
