"""jaxreg.plots.cv: the CV curve (mean ± SE vs λ, both selected λ marked) and the η × λ heatmap,
from small fake arrays; shapes checked; saved as small PNGs."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from jaxreg import plots


def test_cv_curve_marks_both_selections(tmp_path):
    lam = np.logspace(-1, -4, 5)
    mean, se = np.array([[0.8, 0.85, 0.9, 0.88, 0.87], [0.7, 0.8, 0.86, 0.9, 0.89]]), np.full((2, 5), 0.01)
    fig = plots.cv_curve(lam, mean, se, best=lam[2], one_se=lam[1], series=["α=0", "α=1"])
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_xscale() == "log"
    assert len(ax.containers) == 2  # one error-bar curve per series
    marks = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert [float(m.get_xdata()[0]) for m in marks] == [lam[2], lam[1]]
    path = tmp_path / "curve.png"
    plots.save_figure(fig, str(path))
    assert 1_000 < path.stat().st_size < 200_000
    with pytest.raises(ValueError, match="mean and se must have shape"):
        plots.cv_curve(lam, mean[:, :3], se)


def test_heatmap_annotates_every_cell_and_outlines_the_choice():
    v = np.arange(12.0).reshape(3, 4) / 12
    fig = plots.heatmap([0.1, 0.3, 1.0], np.logspace(-1, -4, 4), v, mark=(1, 2))
    ax = fig.axes[0]
    assert len(ax.texts) == 12 and ax.texts[5].get_text() == f"{v[1, 1]:.3f}"
    assert len(ax.patches) == 1 and len(fig.axes) == 2  # the outline; the colour bar
    with pytest.raises(ValueError, match=r"values must have shape \(3, 4\)"):
        plots.heatmap([0.1, 0.3, 1.0], np.logspace(-1, -4, 4), v.T)
