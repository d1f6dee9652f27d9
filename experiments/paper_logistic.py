"""Paper §2 (seed 003): logistic regression, 2 vs 3 and 2 vs 8 — Figures 1-10. A config
(:class:`LogisticConfig`) in, ``jaxreg.trainer``/``sweep`` calls, figures and table rows out."""
from __future__ import annotations

import dataclasses
import sys

import jax
import numpy as np

from experiments import common
from experiments.reproduction import figures, report
from jaxreg import Batch, Objective, plots, tree
from jaxreg.atomic import to_jsonable
from jaxreg.data import logistic_code_split, logistic_text_split
from jaxreg.prepare import prepare_split
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.trainer import train


@dataclasses.dataclass(frozen=True)
class LogisticConfig:
    """Logistic regression as the paper's code runs it (seed 003 §6.1).

    Full run:  ``python -m experiments.paper_logistic --out results``
    CI-sized:  ``python -m experiments.paper_logistic --smoke --out /tmp/smoke``

    The protocol, and the reason for every choice the paper leaves open, is in
    ``results/README.md`` (Protocols)."""

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
        files = plots.save_figures(out_dir, figures.logistic_figures(
            res, learning_rate=cfg.learning_rate, n_iterations=cfg.n_iterations, minibatch_parts=cfg.minibatch_parts,
            lambdas=cfg.lambdas, large_lambdas=cfg.large_lambdas, figure_pair=cfg.figure_pair))
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
