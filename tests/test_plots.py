"""jaxreg.plots: every figure function returns a Figure from small fake arrays; save_figure writes
a small PNG atomically and leaves no temp file behind."""
import os

import numpy as np
import pytest
from matplotlib.figure import Figure

from jaxreg import plots


@pytest.fixture
def curves3(rng):
    return {"train": rng.random(20), "hold-out": rng.random(20), "test": rng.random(20)}


def test_curves(curves3):
    fig = plots.curves(curves3, x=np.arange(20) * 200, xlabel="iteration", ylabel="cost", title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    assert [l.get_label() for l in ax.lines] == ["train", "hold-out", "test"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(20) * 200)


def test_curve_panels_hides_unused_axes_and_marks_stop(curves3):
    panels = [dict(series=curves3, title=f"λ={lam}", vline=5 if lam == 0.1 else None) for lam in (0.1, 0.01, 0.001)]
    fig = plots.curve_panels(panels, ncols=2, ylabel="accuracy", suptitle="s")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 4 and len(visible) == 3
    assert len(visible[0].lines) == 4  # three curves + the early-stop marker
    assert len(visible[1].lines) == 3


def test_curve_panels_logy_and_default_x(curves3):
    fig = plots.curve_panels([dict(series=curves3)], logy=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(1, 21))


def test_as_image_drops_bias_and_checks_size(rng):
    w = rng.normal(size=785)
    np.testing.assert_array_equal(plots.as_image(w), w[1:].reshape(28, 28))
    np.testing.assert_array_equal(plots.as_image(w[1:]), w[1:].reshape(28, 28))
    with pytest.raises(ValueError, match="784"):
        plots.as_image(np.zeros(100))


def test_weight_images_diverging_and_centred(rng):
    w = {"a": rng.normal(size=784), "b": 3 * rng.normal(size=785), "a − b": rng.normal(size=(28, 28))}
    fig = plots.weight_images(w)
    assert isinstance(fig, Figure)
    images = [ax.images[0] for ax in fig.axes if ax.images and ax.get_title()]
    assert len(images) == 3
    for im in images:
        lo, hi = im.get_clim()
        assert lo == pytest.approx(-hi)  # centred at 0
        assert im.get_cmap().name == plots.DIVERGING
    shared = plots.weight_images(w, shared_scale=True, ncols=2)
    clims = {ax.images[0].get_clim() for ax in shared.axes if ax.images and ax.get_title()}
    assert len(clims) == 1


def test_weight_image_grid(rng):
    rows = {"L1": [rng.normal(size=784) * s for s in (1, 2, 3)], "L2": [rng.normal(size=784) for _ in range(3)]}
    fig = plots.weight_image_grid(rows, ["λ=0.1", "λ=0.01", "λ=0.001"], title="t")
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 6
    # one colour range per row: the L1 row's range is set by its largest image
    assert axes[0].images[0].get_clim() == axes[2].images[0].get_clim()


def test_metric_vs_lambda_sorted_and_log(rng):
    lams = np.array([0.1, 0.001, 0.01])
    fig = plots.metric_vs_lambda(lams, {"L1": [1.0, 3.0, 2.0], "L2": [2.0, 4.0, 3.0]}, ylabel="‖w‖₁")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0.001, 0.01, 0.1])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [3.0, 2.0, 1.0])


def test_weights_over_digits(rng):
    fig = plots.weights_over_digits(rng.normal(size=(785, 10)), rng.random((10, 784)), title="t")
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 20
    assert axes[0].images[0].get_cmap().name == plots.DIVERGING
    assert axes[10].images[0].get_cmap().name == "gray"


def test_sigmoid_fit():
    x = np.array([0.5, 1.0, 2.0, 3.0, 4.0])
    t = np.array([0, 0, 1, 0, 1])
    grid = np.linspace(0, 5, 50)
    fig = plots.sigmoid_fit(x, t, grid, 1 / (1 + np.exp(-(grid - 2.5))), threshold=2.5)
    labels = [l.get_label() for l in fig.axes[0].lines]
    assert any("2.50" in s for s in labels)


def test_save_figure_atomic_small_png(tmp_path, curves3):
    fig = plots.curves(curves3)
    path = tmp_path / "sub" / "fig.png"
    assert plots.save_figure(fig, path) == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 250_000
    assert os.listdir(path.parent) == ["fig.png"]  # no temp file left behind
    plots.save_figure(fig, path)  # overwriting works and still leaves one file
    assert os.listdir(path.parent) == ["fig.png"]


def test_save_figure_failure_leaves_nothing(tmp_path, monkeypatch, curves3):
    fig = plots.curves(curves3)

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save_figure(fig, tmp_path / "fig.png")
    assert os.listdir(tmp_path) == []
