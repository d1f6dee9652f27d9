"""experiments.meta_learning.figures: each meta-learning figure builds from tiny records (the shapes meta_lr.json
holds), draws what it is given, and saves as a PNG."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from experiments.meta_learning import figures
from jaxreg import plots


@pytest.fixture
def records():
    eta = [1e-2, 1e-1, 1.0, 10.0]
    study = {"grid_eta": eta, "grid_loss": [2.0, 1.0, 0.6, np.inf], "grid_dloss_dlogeta": [-0.1, -0.5, 0.2, np.nan],
             "grid_best_eta": 1.0, "grid_best_loss": 0.6, "horizon": 20, "meta_starts": [0.03, 8.0],
             "meta_trace_eta": [[0.03, 0.1, 0.3], [8.0, 4.0, 2.0]], "meta_trace_loss": [[1.5, 1.0, 0.7], [3.0, 9.0, 1.0]],
             "meta_trace_bad": [[False, False, False], [False, True, False]], "meta_best_eta": [0.3, 2.0],
             "meta_best_loss": [0.7, 1.0]}
    L = np.linspace(1.0, 2.0, 8).reshape(2, 2, 2)
    joint = {"axes_values": [[0.1, 1.0], [1.0, 10.0], [1e-4, 1e-2]], "grid_loss": L.tolist(), "grid_best": [0.1, 1.0, 1e-4],
             "grid_best_loss": 1.0, "meta_trace": [[[0.2, 2.0, 1e-3], [0.3, 3.0, 2e-3]]], "meta_trace_loss": [[1.4, 1.2]],
             "meta_trace_bad": [[False, False]]}
    horizon = {"horizons": [10, 100], "curves": {"10": [eta, [2.0, 1.5, 1.0, 3.0]], "100": [eta, [1.8, 0.9, 0.5, 2.5]]},
               "learned_eta": [0.5, 1.0], "loss_at_longest_K": [0.52, 0.5]}
    hd = {"eta0": [0.03, 8.0], "beta": [1e-3, 1e-3], "eta_trace": [[0.03, 0.04, 0.05], [8.0, 7.9, 7.8]]}
    return {"softmax": study, "binary": study, "joint": joint, "horizon": horizon, "hd": hd}


def test_each_figure(records):
    fig = figures.meta_landscape({"softmax": records["softmax"], "binary": records["binary"]})
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert fig.axes[0].get_xscale() == "log"
    fig = figures.meta_trajectories({"softmax": records["softmax"]})
    ax = fig.axes[0]  # per start: the η path and its rejected steps (red x), plus the grid's best
    assert len(ax.lines) == 2 * 2 + 1
    np.testing.assert_array_equal(ax.lines[3].get_ydata(), [4.0])  # start 2's rejected point
    fig = figures.meta_horizon_bias(records["horizon"])
    assert [p.get_height() for p in fig.axes[1].patches] == [0.52, 0.5]
    fig = figures.meta_joint(records["joint"])
    assert len(fig.axes) == 4  # three panels and a colour bar
    assert fig.axes[2].get_legend().get_texts()[0].get_text() == "best of 2x2x2 grid"
    fig = figures.meta_online_rates(records["hd"], 20, reference_eta=0.3)
    assert len(fig.axes[0].lines) == 3 and fig.axes[0].get_yscale() == "log"


def test_all_figures_save_as_png(records, tmp_path):
    figs = figures.meta_figures(records)
    assert list(figs) == ["meta_lr_landscape.png", "meta_lr_trajectories.png", "meta_lr_horizon.png",
                          "meta_lr_joint.png", "meta_lr_hd.png"]
    assert "meta_lr_horizon.png" not in figures.meta_figures({k: v for k, v in records.items() if k != "horizon"})
    for name, fig in figs.items():
        plots.save_figure(fig, tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(figs)
