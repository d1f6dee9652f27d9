"""jaxreg.plots: every figure function returns a Figure from small fake arrays; save_figure writes
a small PNG atomically and leaves no temp file behind."""
import os

import numpy as np
import pytest
from matplotlib.figure import Figure

from jaxreg import plots
from jaxreg.sweeps import SweepResult
from jaxreg.trainer import History, TrainResult


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


def test_curve_panels_per_panel_xlabel_and_logy(curves3):
    fig = plots.curve_panels([dict(series=curves3, xlabel="score", logy=True), dict(series=curves3)],
                             xlabel="iteration")
    assert [ax.get_xlabel() for ax in fig.axes] == ["score", "iteration"]
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear"]


def test_sigmoid_fit_references_drawn_dashed_and_labelled():
    grid = np.linspace(0, 5, 50)
    fig = plots.sigmoid_fit([1.0, 2.0], [0, 1], grid, grid / 5, references={"maximum likelihood": grid / 6})
    ref = [l for l in fig.axes[0].lines if l.get_label() == "maximum likelihood"]
    assert len(ref) == 1 and ref[0].get_linestyle() == "--"
    np.testing.assert_array_equal(ref[0].get_ydata(), grid / 6)
    assert "maximum likelihood" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _stacked_result(n_models=3, n_records=4):
    """A fake stacked TrainResult: model g's accuracies are g + record/10, stop epochs 20, 40, 40."""
    rec = np.arange(n_records)
    acc = np.stack([g + rec / 10 for g in range(n_models)])
    h = History(epoch=np.tile((rec + 1) * 10, (n_models, 1)), learning_rate=acc, objective=acc,
                train_loss=-acc, train_acc=acc, holdout_loss=-acc, holdout_acc=acc + 0.01, test_loss=-acc,
                test_acc=acc + 0.02, active=np.ones_like(acc, bool))
    stop = np.array([20, 40, 40])[:n_models]
    return TrainResult(params={"W": np.zeros((n_models, 2))}, last_params={"W": np.zeros((n_models, 2))},
                       history=h, stop_epoch=stop, stopped=stop < 40, diverged=np.zeros(n_models, bool),
                       n_updates=stop)


def test_set_series_labels_model_and_upto():
    res = _stacked_result()
    s = plots.set_series(res.history, "acc", model=1, upto=2)
    assert list(s) == ["train", "hold-out", "test"]
    np.testing.assert_allclose(s["train"], [1.0, 1.1])
    np.testing.assert_allclose(s["test"], [1.02, 1.12])
    one = History(*(np.asarray(f)[2] for f in res.history))  # an unstacked history
    np.testing.assert_allclose(plots.set_series(one, "loss")["hold-out"], -np.array([2.0, 2.1, 2.2, 2.3]))
    with pytest.raises(ValueError, match="metric"):
        plots.set_series(one, "accuracy")


def test_stop_panel_truncates_at_the_stop_and_marks_it():
    res = _stacked_result()
    p = plots.stop_panel(res, 0, title="t")
    assert p["vline"] == 20 and p["title"] == "t"
    np.testing.assert_allclose(p["series"]["train"], [0.0, 0.1])  # records at epochs 10, 20
    q = plots.stop_panel(res, 2, "loss")
    assert q["vline"] is None and len(q["series"]["test"]) == 4  # ran to the end: no marker
    np.testing.assert_array_equal(q["x"], [10, 20, 30, 40])


def test_sweep_panels_follow_where_in_grid_order():
    lams = (0.1, 0.01, 0.001)
    sw = SweepResult(axes=("lam",), values=(lams,), flat=_stacked_result(), final={},
                     configs=tuple({"lam": lam} for lam in lams), chunk_sizes={})
    panels = plots.sweep_panels(sw, "acc", lambda c: f"λ={c['lam']:g}", dict(lam=[0.001, 0.1]),
                                legend_loc="lower right")
    assert [p["title"] for p in panels] == ["λ=0.1", "λ=0.001"]  # grid order, not the order asked
    assert [p["vline"] for p in panels] == [20, None] and panels[1]["legend_loc"] == "lower right"
    np.testing.assert_allclose(panels[1]["series"]["hold-out"], 2.01 + np.arange(4) / 10)
    assert [p["title"] for p in plots.sweep_panels(sw)] == ["", "", ""]


def test_save_figures_writes_each_and_returns_names(tmp_path, curves3):
    names = plots.save_figures(tmp_path, {"b.png": plots.curves(curves3), "a.png": plots.curves(curves3)})
    assert names == ["b.png", "a.png"] and sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


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
