"""Paper §2 (seed 003): logistic regression, 2 vs 3 and 2 vs 8 — Figures 1-10.

A config in, library calls (``jaxreg.train.train``, ``jaxreg.sweep.sweep``), figures and table
rows out. See :class:`LogisticConfig` for every protocol choice and why.
"""
from __future__ import annotations

import dataclasses
import sys

import jax
import numpy as np

from experiments import common
from jaxreg import Batch, Objective, plots, report, tree
from jaxreg.atomic import to_jsonable
from jaxreg.data import logistic_code_split, logistic_text_split
from jaxreg.prepare import prepare_split
from jaxreg.sweep import sweep
from jaxreg.train import Hyper, TrainConfig, train


@dataclasses.dataclass(frozen=True)
class LogisticConfig:
    """Logistic regression as the paper's code runs it (seed 003 §6.1).

    Full run:  ``python -m experiments.paper_logistic --out results``
    CI-sized:  ``python -m experiments.paper_logistic --smoke --out /tmp/smoke``

    * Model: ``Objective("logistic", fit_intercept=True)`` on the 784 pixels/255: the code keeps
      a separate, unpenalised bias ``b`` (``dw`` gets the penalty, ``db`` does not), so the split's
      bias column is dropped. Mean log-loss; L2 as the code's gradient ``λw`` (jaxreg's
      ``(λ/2)‖w‖²``; the text's ``λ‖w‖²`` would be 2λw), L1 as ``λ sign(w)``. Zero init.
    * Data: the text's split (first 20,000 training images → the pair's images, first 10 % as
      hold-out; the pair's images among the last 2,000 test images). The code's split (the pair's
      images from the whole training set, at most 20,000; the first 2,000 test images;
      off-by-one slicing kept) gives the table's note: the text-split classifier evaluated on the
      code's test images (``code_split_train=True``: trained on the code's ≈10.9k images too).
    * Batch GD: η = 0.005, ``n_iterations`` updates (not stated in the paper; 10,000 measured to
      reach its ≈98 % / ≈97 %), metrics every ``record_every`` = 200 iterations (the code's cost
      cadence), no early stopping (the curves of Figs 1, 3 run to the end).
    * Mini-batch GD: batches of ``n_train // 10`` (≈10 % of the training set), reshuffled each
      epoch from ``seed``, η = 0.005, the same number of updates as batch GD.
    * Regularisation (Figs 5-10): for each pair, L1 and L2 × all λ (the paper's seven plus
      ``large_lambdas`` for Fig 7) are ONE vmapped sweep, batch GD as above with the paper's
      early stopping (``"logistic_paper"``: stop when the hold-out accuracy drops, keep the
      weights from two evaluations earlier) evaluated every ``record_every`` iterations —
      evaluated every iteration, as the code does, it stops within ~10 iterations at ~90 %.
    * Gradients: the sweeps use jaxreg's closed forms (L1 subgradient sign(0) = 0 like the code's
      ``np.sign``; ``jax.grad`` of |w| gives 1 at 0). The unpenalised single-model runs use
      ``grad="autodiff"``: the same gradient Xᵀ(σ − y)/n, but for ONE model XLA:CPU runs the
      closed form's ``X.T @ r`` several times slower than autodiff's transposed product.
    """

    pairs: tuple = ((2, 3), (2, 8))
    learning_rate: float = 0.005
    n_iterations: int = 10000
    record_every: int = 200
    minibatch_parts: int = 10
    lambdas: tuple = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)
    large_lambdas: tuple = (1.0, 0.3)
    figure_pair: tuple = (2, 3)  # the pair Figs 5, 6, 7, 10 show
    grad: str = "closed_form"  # the penalised sweeps: L1 subgradient sign(0) = 0, as np.sign
    grad_single: str = "autodiff"  # the unpenalised single runs (same values; see the docstring)
    seed: int = 0
    n_train_pool: int = 20000
    n_test_pool: int = 2000
    code_split: bool = True  # also evaluate on the code's split (its test images)
    code_split_train: bool = False  # ... after training on it (≈3× the images: minutes more)


def default_config() -> LogisticConfig:
    return LogisticConfig()


def smoke_config() -> LogisticConfig:
    """The CI-sized variant: a fraction of the iterations (``--smoke``)."""
    return LogisticConfig(n_iterations=300, record_every=50, large_lambdas=(1.0,),
                          n_train_pool=6000, n_test_pool=1000, code_split=False)


def run(out_dir, config: LogisticConfig, data: dict, progress) -> dict:
    """Train, plot into ``out_dir``; returns ``{"rows", "sweep_rows", "config", "timings",
    "files", "sizes"}``. data: a ``load_mnist``-style dict."""
    cfg = config
    key = jax.random.PRNGKey(cfg.seed)
    obj = Objective("logistic", fit_intercept=True)
    hyper = Hyper(learning_rate=cfg.learning_rate)
    bgd = TrainConfig(method="full_batch", n_epochs=cfg.n_iterations, eval_every=cfg.record_every,
                      grad=cfg.grad_single)
    es = dataclasses.replace(bgd, early_stopping="logistic_paper", grad=cfg.grad)
    lams = tuple(cfg.large_lambdas) + tuple(cfg.lambdas)
    timings, sweep_rows, res = {}, [], {}
    split_kw = dict(n_train_pool=cfg.n_train_pool, n_test_pool=cfg.n_test_pool, bias_feature=False)
    columns = ("penalty", "lam", ("stop_iteration", "stop_epoch"), "stopped", "train_acc", "holdout_acc", "test_acc")
    for pair in cfg.pairs:
        name = f"{pair[0]}v{pair[1]}"
        split = logistic_text_split(data, pair, **split_kw)
        r = res[name] = {"sizes": split.sizes}
        with progress.step(f"logistic {name}: batch GD ({cfg.n_iterations} its)", timings):
            out = train(obj, prepare_split(obj, bgd, split), hyper, bgd, key=key)
            r["bgd"], r["params"] = out.history, out.params
        if cfg.code_split:
            csplit = logistic_code_split(data, pair, n_train_max=cfg.n_train_pool, n_test_max=cfg.n_test_pool,
                                         bias_feature=False)
            r["code_sizes"] = csplit.sizes
            if cfg.code_split_train:
                with progress.step(f"logistic {name}: batch GD on the code's split", timings):
                    h = train(obj, prepare_split(obj, bgd, csplit), hyper, bgd, key=key).history
                    r["code"] = {k: float(v[-1]) for k, v in h._asdict().items() if k.endswith("acc")}
            else:  # the text-split classifier on the code's hold-out and test images
                r["code"] = {f"{s}_acc": float(obj.accuracy(r["params"], Batch(X, y))) for s, X, y in
                             (("holdout", csplit.X_holdout, csplit.y_holdout), ("test", csplit.X_test, csplit.y_test))}
        r["mb_batch"] = bs = max(1, len(split.y_train) // cfg.minibatch_parts)
        n_ep = max(1, cfg.n_iterations // cfg.minibatch_parts)
        mb = TrainConfig(method="minibatch", batch_size=bs, n_epochs=n_ep,
                         eval_every=max(1, cfg.record_every // cfg.minibatch_parts), grad=cfg.grad_single)
        with progress.step(f"logistic {name}: mini-batch GD (batch {bs}, {n_ep} epochs)", timings):
            r["mb"] = train(obj, prepare_split(obj, mb, split), hyper, mb, key=key).history
        with progress.step(f"logistic {name}: L1/L2 × {len(lams)} λ sweep (one vmapped program)", timings):
            sw = r["sweep"] = sweep(obj, prepare_split(obj, es, split), es,
                                    {"penalty": ["l1", "l2"], "lam": list(lams)}, hyper=hyper, key=key)
        sweep_rows += [dict(pair=name, **rec, w_l1=float(np.abs(w).sum()), w_l2=float(np.sqrt((w ** 2).sum())))
                       for rec, w in zip(sw.records(columns), sw.flat.params["W"])]
    with progress.step("logistic: figures", timings):
        files = plots.save_figures(out_dir, _figures(cfg, res, lams))
    rows = _table_rows(cfg, res)
    if [tuple(p) for p in cfg.pairs] == [(2, 3), (2, 8)]:  # Fig 4's claim: w(2v3) − w(2v8) separates 3 from 8
        s = logistic_text_split(data, (8, 3), **split_kw)
        diff = tree.sub(res["2v3"]["params"], res["2v8"]["params"])
        rows.append(dict(experiment="logistic 3 vs 8 from Fig 4", paper=None,
                         jaxreg=100 * float(Objective("logistic").accuracy(diff, Batch(s.X_test, s.y_test))),
                         metric="test accuracy of w(2v3) − w(2v8), b(2v3) − b(2v8)",
                         config=dict(learning_rate=cfg.learning_rate, init="zeros", loss="mean log-loss",
                                     bias="separate, unpenalised", split="text", digits=[8, 3],
                                     method="no training: difference of the two batch-GD classifiers"),
                         note="the paper says the difference 'can be used to classify 3 and 8'"))
    return {"rows": rows, "sweep_rows": sweep_rows, "config": to_jsonable(cfg), "timings": timings,
            "files": files, "sizes": {f"logistic {n[0]} vs {n[2]}": r["sizes"] for n, r in res.items()}}


def _figures(cfg, res, lams) -> dict:
    """{file name: figure} of Figs 1-10."""
    pairs = list(res)
    t = lambda n: f"{n[0]} vs {n[2]}"  # noqa: E731
    lr = f"η = {cfg.learning_rate}"

    def per_pair(run, metric, title, scale=1, **panel):
        return [plots.history_panel(res[n][run], metric, x_scale=scale, title=f"{t(n)}: {title(n)}, {lr}", **panel)
                for n in pairs]

    cost = "cost (mean cross-entropy)"
    figs = {"fig01_logistic_cost_batch.png": plots.curve_panels(
                per_pair("bgd", "loss", lambda n: "batch GD"), xlabel="iteration", ylabel=cost),
            "fig02_logistic_cost_minibatch.png": plots.curve_panels(
                per_pair("mb", "loss", lambda n: f"mini-batch GD (batch {res[n]['mb_batch']})", cfg.minibatch_parts),
                xlabel="mini-batch update", ylabel=cost),
            "fig03_logistic_accuracy.png": plots.curve_panels(
                per_pair("bgd", "acc", lambda n: "batch GD", legend_loc="lower right"), xlabel="iteration",
                ylabel="accuracy")}
    # Fig 4: weights of the two classifiers and their difference (a 3-vs-8 classifier).
    imgs = {f"{t(n)}\n(red → {n[2]}, blue → {n[0]})": res[n]["params"]["W"] for n in pairs}
    if len(pairs) == 2:
        a, b = pairs
        diff = res[a]["params"]["W"] - res[b]["params"]["W"]
        imgs[f"difference: {t(a)} − {t(b)}\n(red → {a[2]}, blue → {b[2]})"] = diff
    figs["fig04_logistic_weights.png"] = plots.weight_images(
        imgs, panel=2.8, title=f"Logistic regression weights, batch GD ({cfg.n_iterations} iterations)")
    fp = f"{cfg.figure_pair[0]}v{cfg.figure_pair[1]}"
    fp = fp if fp in res else pairs[0]
    sw = res[fp]["sweep"]
    title = lambda c: f"{c['penalty'].upper()}, λ = {c['lam']:g}"  # noqa: E731
    for i, pen in enumerate(("l1", "l2")):
        figs[f"fig0{5 + i}_logistic_{pen}_accuracy.png"] = plots.curve_panels(
            plots.sweep_panels(sw, "acc", title, dict(penalty=pen, lam=cfg.lambdas), legend_loc="lower right"),
            ncols=4, ylabel="accuracy", suptitle=f"{t(fp)}: accuracy during training with {pen.upper()} "
                                                  f"(dotted: early stop), {lr}")
    if cfg.large_lambdas:
        figs["fig07_logistic_large_lambda.png"] = plots.curve_panels(
            plots.sweep_panels(sw, "acc", title, dict(lam=cfg.large_lambdas), legend_loc="lower right"),
            ncols=len(cfg.large_lambdas), ylabel="accuracy", suptitle=f"{t(fp)}: very large λ (top L1, bottom L2)")
    by_pen = lambda value: {f"{pen}, {t(n)}": value(res[n]["sweep"])[p]  # noqa: E731
                            for n in pairs for p, pen in enumerate(("L1", "L2"))}
    figs["fig08_logistic_weight_length.png"] = plots.metric_vs_lambda(
        lams, by_pen(lambda s: np.abs(s.params["W"]).sum(axis=-1)), ylabel="‖w‖₁ (the code's 'length')",
        logy=True, title="Length of the weight vector vs λ")
    figs["fig09_logistic_test_accuracy_lambda.png"] = plots.metric_vs_lambda(
        lams, by_pen(lambda s: s.metric("test_acc")), ylabel="final test accuracy",
        title="Test accuracy (early-stopped weights) vs λ")
    order = np.argsort(-np.asarray(lams))
    figs["fig10_logistic_weights_lambda.png"] = plots.weight_image_grid(
        {pen: [sw.params["W"][p, j] for j in order] for p, pen in enumerate(("L1", "L2"))},
        [f"λ={lams[j]:g}" for j in order], title=f"{t(fp)}: weights vs λ (one colour scale per row)")
    return figs


def _table_rows(cfg, res) -> list:
    rows = []
    its = cfg.n_iterations
    base = dict(learning_rate=cfg.learning_rate, init="zeros", loss="mean log-loss", bias="separate, unpenalised")
    paper_test = {"2v3": 98.0, "2v8": 97.0}
    for n, r in res.items():
        conf = dict(base, method="batch GD", iterations=its, split="text",
                    **{f"n_{k}": v for k, v in r["sizes"].items()})
        label = f"logistic {n[0]} vs {n[2]}"
        rows.append(dict(experiment=label, metric="test accuracy (batch GD)", paper=paper_test.get(n),
                         jaxreg=100 * float(r["bgd"].test_acc[-1]), config=conf,
                         note="paper: abstract 98% (2v3) / 97% (2v8); §2.4 'both around 97%'"))
        rows.append(dict(experiment=label, metric="hold-out accuracy (batch GD)", paper=None,
                         jaxreg=100 * float(r["bgd"].holdout_acc[-1]), config=conf))
        if "code" in r:
            trained = "trained on the code's split" if cfg.code_split_train else "trained on the text's split"
            rows.append(dict(experiment=label, metric="test accuracy (batch GD), the code's test images",
                             paper=paper_test.get(n), jaxreg=100 * r["code"]["test_acc"],
                             config=dict(conf, eval_split="code", trained=trained,
                                         **{f"n_code_{k}": v for k, v in r["code_sizes"].items()}),
                             note=f"the code's split: the pair among the first 2,000 test images "
                                  f"({r['code_sizes']['test']} images); {trained}"))
        rows.append(dict(experiment=label, metric="test accuracy (mini-batch GD)", paper=None,
                         jaxreg=100 * float(r["mb"].test_acc[-1]),
                         config=dict(base, method="mini-batch GD", batch_size=r["mb_batch"],
                                     updates=int(r["mb"].epoch[-1]) * cfg.minibatch_parts)))
        for pen in ("l1", "l2"):
            best = r["sweep"].best("holdout_acc", penalty=pen, lam=cfg.lambdas)
            rows.append(dict(experiment=label, metric=f"test accuracy, {pen.upper()} λ chosen on hold-out",
                             paper=None, jaxreg=100 * best.metrics["test_acc"],
                             config=dict(base, method="batch GD + paper's early stopping (every "
                                         f"{cfg.record_every} its)", max_iterations=its, penalty=pen, lam=best.config["lam"],
                                         stop_iteration=int(r["sweep"].flat.stop_epoch[best.flat_index])),
                             note="paper: λ in 1e-4..1e-3 'work reasonably well' (Fig 9 axis 95-100%)"))
    for r in filter(report.misses_paper, rows):  # say why a test accuracy misses the paper's by > 1 point
        n = r["config"].get("n_code_test") or r["config"].get("n_test")
        r["why"] = (f"the number of iterations is not stated ({its} used, measured to reach ≈98%/≈97% on the text "
                    "split); the paper gives only rounded values"
                    + (f"; 1 test image = {100 / n:.2f} points" if n else ""))
    return rows


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
