"""The reproduction's figure compositions: the paper's Figs 1-12 (seed 003) from the results of
``experiments/paper_logistic.py`` and ``paper_softmax.py``, and seed 004's attenuation figure.
Arrays and jaxreg results in, ``{file name: Figure}`` out; built from :mod:`jaxreg.plots.paper`
and :mod:`jaxreg.plots.training`.
"""
from __future__ import annotations

import numpy as np

from jaxreg.plots.paper import curve_panels, metric_vs_lambda, weight_image_grid, weight_images, weights_over_digits
from jaxreg.plots.training import history_panel, sweep_panels

_LOSS_COLORS = {"log": "tab:red", "squared": "tab:purple"}


def logistic_figures(res: dict, *, learning_rate: float, n_iterations: int, minibatch_parts: int, lambdas,
                     large_lambdas=(), figure_pair=(2, 3)) -> dict:
    """{file name: figure} of the paper's Figs 1-10 (seed 003 §2).

    res: ``{"2v3": run, ...}`` per digit pair, each run a dict with ``bgd`` and ``mb`` (the
    batch-GD and mini-batch :class:`~jaxreg.trainer.History`), ``params`` (batch-GD weights),
    ``mb_batch`` (its batch size) and ``sweep`` (the L1/L2 × λ :class:`~jaxreg.sweeps.SweepResult`
    over ``large_lambdas + lambdas``); the keywords are the protocol's values.
    """
    lams = tuple(large_lambdas) + tuple(lambdas)
    pairs = list(res)
    t = lambda n: f"{n[0]} vs {n[2]}"  # noqa: E731
    lr = f"η = {learning_rate}"

    def per_pair(run, metric, title, scale=1, **panel):
        return [history_panel(res[n][run], metric, x_scale=scale, title=f"{t(n)}: {title(n)}, {lr}", **panel)
                for n in pairs]

    cost = "cost (mean cross-entropy)"
    figs = {"fig01_logistic_cost_batch.png": curve_panels(
                per_pair("bgd", "loss", lambda n: "batch GD"), xlabel="iteration", ylabel=cost),
            "fig02_logistic_cost_minibatch.png": curve_panels(
                per_pair("mb", "loss", lambda n: f"mini-batch GD (batch {res[n]['mb_batch']})", minibatch_parts),
                xlabel="mini-batch update", ylabel=cost),
            "fig03_logistic_accuracy.png": curve_panels(
                per_pair("bgd", "acc", lambda n: "batch GD", legend_loc="lower right"), xlabel="iteration",
                ylabel="accuracy")}
    # Fig 4: weights of the two classifiers and their difference (a 3-vs-8 classifier).
    imgs = {f"{t(n)}\n(red → {n[2]}, blue → {n[0]})": res[n]["params"]["W"] for n in pairs}
    if len(pairs) == 2:
        a, b = pairs
        diff = res[a]["params"]["W"] - res[b]["params"]["W"]
        imgs[f"difference: {t(a)} − {t(b)}\n(red → {a[2]}, blue → {b[2]})"] = diff
    figs["fig04_logistic_weights.png"] = weight_images(
        imgs, panel=2.8, title=f"Logistic regression weights, batch GD ({n_iterations} iterations)")
    fp = f"{figure_pair[0]}v{figure_pair[1]}"
    fp = fp if fp in res else pairs[0]
    sw = res[fp]["sweep"]
    title = lambda c: f"{c['penalty'].upper()}, λ = {c['lam']:g}"  # noqa: E731
    for i, pen in enumerate(("l1", "l2")):
        figs[f"fig0{5 + i}_logistic_{pen}_accuracy.png"] = curve_panels(
            sweep_panels(sw, "acc", title, dict(penalty=pen, lam=lambdas), legend_loc="lower right"),
            ncols=4, ylabel="accuracy", suptitle=f"{t(fp)}: accuracy during training with {pen.upper()} "
                                                  f"(dotted: early stop), {lr}")
    if large_lambdas:
        figs["fig07_logistic_large_lambda.png"] = curve_panels(
            sweep_panels(sw, "acc", title, dict(lam=large_lambdas), legend_loc="lower right"),
            ncols=len(large_lambdas), ylabel="accuracy", suptitle=f"{t(fp)}: very large λ (top L1, bottom L2)")
    by_pen = lambda value: {f"{pen}, {t(n)}": value(res[n]["sweep"])[p]  # noqa: E731
                            for n in pairs for p, pen in enumerate(("L1", "L2"))}
    figs["fig08_logistic_weight_length.png"] = metric_vs_lambda(
        lams, by_pen(lambda s: np.abs(s.params["W"]).sum(axis=-1)), ylabel="‖w‖₁ (the code's 'length')",
        logy=True, title="Length of the weight vector vs λ")
    figs["fig09_logistic_test_accuracy_lambda.png"] = metric_vs_lambda(
        lams, by_pen(lambda s: s.metric("test_acc")), ylabel="final test accuracy",
        title="Test accuracy (early-stopped weights) vs λ")
    order = np.argsort(-np.asarray(lams))
    figs["fig10_logistic_weights_lambda.png"] = weight_image_grid(
        {pen: [sw.params["W"][p, j] for j in order] for p, pen in enumerate(("L1", "L2"))},
        [f"λ={lams[j]:g}" for j in order], title=f"{t(fp)}: weights vs λ (one colour scale per row)")
    return figs


def softmax_figures(final: dict, split, *, inits, final_lambda: float, eta0: float, decay_time: float) -> dict:
    """{file name: figure} of the paper's Figs 11 (one per run length) and 12 (one per
    initialisation; seed 003 §3). final: ``{n_epochs: TrainResult}`` of the final runs, one
    model per entry of ``inits`` ((label, scale) pairs); split: the softmax :class:`~jaxreg.data.Split`
    (its training images give the average digits); the keywords are the protocol's values."""
    final_epochs = tuple(final)
    X = split.X_train[:, 1:]
    avg = np.stack([X[split.y_train == k].mean(axis=0) for k in range(10)])
    figs = {}
    for n_ep, res in final.items():
        panels = []
        for g, (init, _) in enumerate(inits):
            panels += [history_panel(res.history, "loss", g, title=f"(a) loss, {init} init", logy=True,
                                           ylabel="average cross-entropy (log scale)"),
                       history_panel(res.history, "acc", g, title=f"(b) accuracy, {init} init",
                                           ylabel="accuracy", legend_loc="lower right")]
        name = "fig11_softmax_curves.png" if n_ep == final_epochs[0] else f"fig11_softmax_curves_{n_ep}ep.png"
        figs[name] = curve_panels(panels, ncols=2, xlabel="epoch",
                                        suptitle=f"Softmax regression, L2 λ={final_lambda:g}, "
                                                 f"η(t) = {eta0}/(1 + t/{decay_time:g}), {n_ep} epochs")
    res = final[final_epochs[0]]
    for g, (init, _) in enumerate(inits):
        name = "fig12_softmax_weights_digits.png" if g == 0 else "fig12b_softmax_weights_digits_normal_init.png"
        figs[name] = weights_over_digits(
            np.asarray(res.last_params["W"][g]), avg, title=f"Weights ({init} init, {final_epochs[0]} epochs; "
                                                            f"own colour scale each) above the average training digits")
    return figs


def attenuation_figure(scores, residuals: dict, accuracy: dict, iterations, learning_rate: float):
    """Seed 004's figure: (a) |∂ℓ/∂s| against the score for the log-loss and the squared error on
    σ(s) (``residuals``: ``{"log-loss, y=1": r, ...}``), (b) the training accuracy of 2 vs 3 with
    each loss from each start (``accuracy``: ``{"log-loss, zeros init": curve, ...}`` over
    ``iterations``)."""
    def styles(series, solid):
        return {k: {"color": _LOSS_COLORS["log" if "log" in k else "squared"], "ls": "-" if solid in k else "--"}
                for k in series}

    panels = [dict(series=residuals, x=np.asarray(scores), title="(a) |∂ℓ/∂s| against the score s",
                   ylabel="|∂ℓ/∂s|", xlabel="score s = xᵀw", styles=styles(residuals, "y=1")),
              dict(series=accuracy, x=iterations, title=f"(b) 2 vs 3, batch GD η={learning_rate}: training accuracy",
                   ylabel="training accuracy", xlabel="iteration", legend_loc="lower right",
                   styles=styles(accuracy, "zeros"))]
    return curve_panels(panels, ncols=2, panel_size=(5.0, 3.6),
                        suptitle="Seed 004: the squared error on σ(s) attenuates the gradient by σ(1−σ)")
