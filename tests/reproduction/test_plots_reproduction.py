"""The reproduction's figure compositions build every figure from small real results."""
import jax
import numpy as np
from matplotlib.figure import Figure

from experiments.reproduction import figures
from jaxreg import Objective, plots, tree
from jaxreg.data import softmax_split, synthetic_mnist
from jaxreg.engine import stack_hypers, train_models
from jaxreg.prepare import prepare_split
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import train


def test_logistic_figures_from_tiny_runs(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((40, 784)).astype(np.float32)
    y = (X[:, :10].sum(axis=1) > 5).astype(float)
    obj = Objective("logistic")
    cfg = TrainConfig(n_epochs=4, eval_every=2)
    data = prepare_data(obj, cfg, X[:30], y[:30], X[30:35], y[30:35], X[35:], y[35:])
    es = TrainConfig(n_epochs=4, eval_every=2, early_stopping="logistic_paper")
    out = train(obj, data, Hyper(learning_rate=0.1), cfg)
    run = dict(bgd=out.history, mb=out.history, params=out.params, mb_batch=3,
               sweep=sweep(obj, data, es, {"penalty": ["l1", "l2"], "lam": [1.0, 0.1, 0.01]}))
    figs = figures.logistic_figures({"2v3": run, "2v8": run}, learning_rate=0.1, n_iterations=4, minibatch_parts=10,
                                  lambdas=(0.1, 0.01), large_lambdas=(1.0,))
    assert sorted(figs) == sorted([f"fig0{i}_{n}.png" for i, n in (
        (1, "logistic_cost_batch"), (2, "logistic_cost_minibatch"), (3, "logistic_accuracy"), (4, "logistic_weights"),
        (5, "logistic_l1_accuracy"), (6, "logistic_l2_accuracy"), (7, "logistic_large_lambda"),
        (8, "logistic_weight_length"), (9, "logistic_test_accuracy_lambda"))] + ["fig10_logistic_weights_lambda.png"])
    assert all(isinstance(f, Figure) for f in figs.values())
    names = plots.save_figures(tmp_path, figs)
    assert all((tmp_path / n).read_bytes().startswith(b"\x89PNG") for n in names)


def test_softmax_and_attenuation_figures(tmp_path):
    split = softmax_split(synthetic_mnist(300, 100), n_train_pool=200, n_holdout=50, n_test=50)
    obj = Objective("softmax", n_classes=10, reduction="sum", fit_intercept=False)
    inits = (("zeros", 0.0), ("N(0,1)", 1.0))
    final = {}
    for n in (2, 4):
        cfg = TrainConfig(n_epochs=n, schedule="inverse_time")
        p0 = tree.stack([obj.init_params(785, jax.random.PRNGKey(1), s) for _, s in inits])
        final[n] = train_models(obj, cfg, prepare_split(obj, cfg, split), stack_hypers(2, Hyper(1e-3, 3.0, 1e-4)),
                                params0=p0).result
    figs = figures.softmax_figures(final, split, inits=inits, final_lambda=1e-4, eta0=1e-3, decay_time=3.0)
    assert sorted(figs) == ["fig11_softmax_curves.png", "fig11_softmax_curves_4ep.png", "fig12_softmax_weights_digits.png",
                            "fig12b_softmax_weights_digits_normal_init.png"]
    s = np.linspace(-3, 3, 7)
    fig = figures.attenuation_figure(s, {"log-loss, y=1": np.abs(s), "squared error, y=1": s ** 2},
                                   {"log-loss, zeros init": np.ones(3), "squared error, N(0,1) init": np.zeros(3)},
                                   np.arange(3), 0.5)
    assert len(fig.axes) == 2 and fig.axes[1].get_lines()[1].get_linestyle() == "--"
    plots.save_figures(tmp_path, {**figs, "fig14.png": fig})
