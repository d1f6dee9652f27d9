"""Paper §3 (seed 003): 10-way softmax regression — its results table, Figures 11 and 12. A config
(:class:`SoftmaxConfig`) in, ``jaxreg.sweeps``/``train``/``engine`` calls, figures and table rows out."""
from __future__ import annotations

import dataclasses
import sys

import jax

from experiments import common
from experiments.reproduction import figures, report
from jaxreg import Objective, plots, tree
from jaxreg.atomic import to_jsonable
from jaxreg.data import softmax_split
from jaxreg.engine import stack_hypers, train_models
from jaxreg.prepare import prepare_split
from jaxreg.sweep_grid import hyper_of
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.trainer import train

# (set, penalty, λ) -> (hold-out %, test %), seed 003 §3.3 (a).
PAPER = {(0, "l2", 1e-4): (90.1, 93.55), (0, "l1", 1e-4): (89.45, 92.95),
         (1, "l1", 5e-4): (88.45, 92.9), (1, "l2", 5e-4): (89.85, 93.4)}


@dataclasses.dataclass(frozen=True)
class SoftmaxConfig:
    """Softmax regression as the paper's text describes it (seed 003 §3.2), with its code's
    conventions where the text is silent.

    Full run:  ``python -m experiments.paper_softmax --out results``
    CI-sized:  ``python -m experiments.paper_softmax --smoke --out /tmp/smoke``

    The protocol, and the reason for every choice the paper leaves open, is in
    ``results/README.md`` (Protocols)."""

    eta0: float = 0.0015
    decay_time: float = 3.0
    lambda_sets: tuple = ((0.01, 0.001, 0.0001), (0.05, 0.005, 0.0005))
    tuning_epochs: int = 1000
    rule_patience: int = 5
    rule_epochs: int = 150
    code_epochs: int = 10
    final_lambda: float = 1e-4
    final_epochs: tuple = (300, 1000)
    inits: tuple = (("zeros", 0.0), ("N(0,1)", 1.0))
    grad: str = "closed_form"
    seed: int = 0
    n_train_pool: int = 20000
    n_holdout: int = 2000
    n_test: int = 2000


def default_config() -> SoftmaxConfig:
    return SoftmaxConfig()


def smoke_config() -> SoftmaxConfig:
    """The CI-sized variant (``--smoke``): a subset of the images and a few epochs."""
    return SoftmaxConfig(tuning_epochs=20, rule_epochs=10, code_epochs=3, final_epochs=(10, 20),
                         n_train_pool=3000, n_holdout=500, n_test=500)


def _cfg(n_epochs, **kw) -> TrainConfig:
    return TrainConfig(**{"method": "full_batch", "n_epochs": n_epochs, "eval_every": 1, "schedule": "inverse_time",
                          **kw})


def run(out_dir, config: SoftmaxConfig, data: dict, progress) -> dict:
    """Train, plot into ``out_dir``; returns ``{"rows", "tuning_rows", "config", "timings",
    "files", "sizes"}``. data: a ``load_mnist``-style dict."""
    cfg = config
    key = jax.random.PRNGKey(cfg.seed)
    split = softmax_split(data, n_train_pool=cfg.n_train_pool, n_holdout=cfg.n_holdout, n_test=cfg.n_test)
    obj = Objective("softmax", n_classes=10, reduction="sum", fit_intercept=False)
    hyper = Hyper(learning_rate=cfg.eta0, decay_time=cfg.decay_time)
    tune = _cfg(cfg.tuning_epochs, early_stopping="softmax_paper", patience=cfg.tuning_epochs,
                record_history=False, grad=cfg.grad)
    rule = dataclasses.replace(tune, n_epochs=cfg.rule_epochs, patience=cfg.rule_patience)
    td = prepare_split(obj, tune, split)
    timings, tuning_rows, tuned = {}, [], {}
    all_lams = [lam for lams in cfg.lambda_sets for lam in lams]
    set_of = [s for s, lams in enumerate(cfg.lambda_sets) for _ in lams] * 2  # per model: penalty × λ
    columns = ("penalty", "lam", "holdout_acc", "test_acc")
    # the weights sweep would draw (fold_in(key, 1)), given explicitly: one compiled program serves both inits
    inits = [obj.init_params(td.train.X.shape[1], jax.random.fold_in(key, 1), scale) for _, scale in cfg.inits]
    for (init, _), p0 in zip(cfg.inits, inits):
        with progress.step(f"softmax [{init} init] tuning: L1/L2 × both λ sets ({2 * len(all_lams)} models), "
                           f"{cfg.tuning_epochs} epochs (one vmapped sweep)", timings):
            sw = tuned[init] = sweep(obj, td, tune, {"penalty": ["l1", "l2"], "lam": all_lams}, hyper=hyper,
                                     key=key, init_params=p0)
        tuning_rows += [dict(init=init, protocol="text", set=s, **rec) for s, rec in zip(set_of, sw.records(columns))]
        with progress.step(f"softmax [{init} init] the text's 5-epoch stopping rule, ≤{cfg.rule_epochs} epochs",
                           timings):
            sw = sweep(obj, td, rule, {"penalty": ["l1", "l2"], "lam": sorted({lam for (_, _, lam) in PAPER})},
                       hyper=hyper, key=key, init_params=p0)
        tuning_rows += [dict(init=init, protocol="rule", set=None, **rec)
                        for rec in sw.records(columns + ("stop_epoch", "stopped"))]
        with progress.step(f"softmax [{init} init] the code's tuning (weights carried, {cfg.code_epochs} epochs "
                           "per λ)", timings):
            tuning_rows += _code_protocol(cfg, obj, td, hyper, key, init, p0)
    final = {}
    for n_ep in cfg.final_epochs:
        fcfg = _cfg(n_ep, grad=cfg.grad)
        with progress.step(f"softmax final run: L2 λ={cfg.final_lambda:g}, {n_ep} epochs, both inits (one vmapped "
                           "program)", timings):
            final[n_ep] = train_models(obj, fcfg, prepare_split(obj, fcfg, split),
                                       stack_hypers(len(inits), hyper._replace(l2=cfg.final_lambda)), keys=key,
                                       params0=tree.stack(inits)).result
    with progress.step("softmax: figures", timings):
        files = plots.save_figures(out_dir, figures.softmax_figures(
            final, split, inits=cfg.inits, final_lambda=cfg.final_lambda, eta0=cfg.eta0, decay_time=cfg.decay_time))
    return {"rows": _table_rows(cfg, tuning_rows, tuned, final, split.sizes), "tuning_rows": tuning_rows,
            "config": to_jsonable(cfg), "timings": timings, "files": files, "sizes": {"softmax": split.sizes}}


def _code_protocol(cfg, obj, td, hyper, key, init, params0) -> list:
    """The paper's tuning code: one weight matrix trained ``code_epochs`` epochs per λ, L1 λs
    then L2 λs, each λ continuing from the previous λ's weights (η restarts at η0); each λ is
    judged by the hold-out accuracy after its epochs. Returns its tuning rows."""
    ccfg = _cfg(cfg.code_epochs, eval_every=cfg.code_epochs, grad=cfg.grad)
    rows = []
    for s, lams in enumerate(cfg.lambda_sets):
        params = params0
        for pen, lam in ((pen, lam) for pen in ("l1", "l2") for lam in lams):
            out = train(obj, td, hyper_of({"penalty": pen, "lam": lam}, hyper), ccfg, key=key, init_params=params)
            params, h = out.last_params, out.history
            rows.append(dict(init=init, protocol="code", set=s, penalty=pen, lam=lam,
                             holdout_acc=float(h.holdout_acc[-1]), test_acc=float(h.test_acc[-1])))
    return rows


def _table_rows(cfg, tuning_rows, tuned, final, sizes) -> list:
    rows = []
    base = dict(loss="summed cross-entropy", method="full-batch GD", eta0=cfg.eta0, T=cfg.decay_time,
                **{f"n_{k}": v for k, v in sizes.items()})

    def find(init, protocol, pen, lam, s=None):  # s=None: any λ set
        return report.find_row(tuning_rows, init=init, protocol=protocol, penalty=pen, lam=lam, set=s)

    for init, _ in cfg.inits:
        exp = f"softmax, {init} init"
        for (s, pen, lam), (p_hold, p_test) in PAPER.items():
            r = find(init, "text", pen, lam, s)
            if r is None:
                continue
            conf = dict(base, init=init, penalty=pen, lam=lam, lambda_set=list(cfg.lambda_sets[s]),
                        epochs=cfg.tuning_epochs, selection="highest hold-out accuracy over the run")
            for metric, pv, v in (("hold-out", p_hold, r["holdout_acc"]), ("test", p_test, r["test_acc"])):
                rows.append(dict(experiment=exp, metric=f"{metric} accuracy, {pen.upper()} λ={lam:g}",
                                 paper=pv, jaxreg=100 * v, config=conf))
        # which λ each set's tuning picks (the paper: L2 1e-4 in set 1, L1/L2 5e-4 in set 2)
        for s, lams in enumerate(cfg.lambda_sets):
            for pen in ("l1", "l2"):
                best = tuned[init].best("holdout_acc", penalty=pen, lam=lams)
                lam, hold = best.config["lam"], 100 * best.metrics["holdout_acc"]
                tie = len({find(init, "text", pen, x, s)["holdout_acc"] for x in lams}) == 1
                note = (f"all three λ tie (hold-out {hold:.2f}%): λ ≤ 0.05 is negligible beside the summed "
                        "gradient of the training images" if tie else f"picks λ={lam:g} (hold-out {hold:.2f}%)")
                rows.append(dict(experiment=exp, metric=f"λ set {s + 1}, {pen.upper()}: test accuracy of the λ "
                                 "chosen on hold-out", paper=None, jaxreg=100 * best.metrics["test_acc"],
                                 config=dict(base, init=init, chosen_lam=lam, tie=tie, holdout=hold),
                                 note=note + "; the paper picks L2 1e-4 (set 1) and 5e-4 (set 2)"))
        for protocol, label, extra in (
                ("rule", f"text's 5-epoch stopping rule (≤{cfg.rule_epochs} epochs)", "stop_epoch"),
                ("code", f"code's tuning ({cfg.code_epochs} epochs per λ, weights carried)", None)):
            for (s, pen, lam), (_, p_test) in PAPER.items():
                r = find(init, protocol, pen, lam, s if protocol == "code" else None)
                if r is None:
                    continue
                conf = dict(base, init=init, penalty=pen, lam=lam, protocol=label)
                note = label
                if extra and r.get("stopped"):
                    conf["stop_epoch"] = r["stop_epoch"]
                    note += f": stopped at epoch {r['stop_epoch']}"
                rows.append(dict(experiment=f"{exp} (variant)", metric=f"test accuracy, {pen.upper()} λ={lam:g}",
                                 paper=p_test, jaxreg=100 * r["test_acc"], config=conf, note=note))
    for r in filter(report.misses_paper, rows):  # say why wherever an accuracy misses the paper's by > 1 point
        init, pen, lam = r["config"]["init"], r["config"]["penalty"], r["config"]["lam"]
        if "(variant)" in r["experiment"]:
            stop = r["config"].get("stop_epoch")
            r["why"] = (("10 epochs per λ are far from converged (in the code each later λ inherits the "
                         "earlier λs' training)") if stop is None else
                        f"the rule fired at epoch {stop}, " + (
                            "in the oscillations of the first epochs (η0 on the summed loss is ≈27 on the "
                            "mean loss)" if stop < 20 else
                            "on a dip of the hold-out accuracy, long before the accuracy stops rising"))
            continue
        alt = {p: find(init, p, pen, lam) for p in ("rule", "code")}
        tried = (f"Also tried: the text's 5-epoch rule ({100 * alt['rule']['test_acc']:.2f}% test), the "
                 f"code's carried 10-epoch tuning ({100 * alt['code']['test_acc']:.2f}% test)")
        if init == cfg.inits[0][0]:
            r["why"] = ("λ ≤ 0.05 has no measurable effect here (every λ of both sets gives the same "
                        "accuracies), so the paper's spread across λ (88.45–90.1% hold-out) must come from "
                        "something else, most likely its code's tuning, where each λ continues from the "
                        f"previous λ's weights. {tried}")
            continue
        zero = find(cfg.inits[0][0], "text", pen, lam)
        r["why"] = (f"the {init} start is not washed out in {cfg.tuning_epochs} epochs of annealed GD "
                    f"(η(t) ∝ 1/t: the accuracies are still creeping up); from zeros the same protocol gives "
                    f"{100 * zero['holdout_acc']:.2f}% hold-out, {100 * zero['test_acc']:.2f}% test. {tried}")
    for n_ep, res in final.items():
        for g, (init, _) in enumerate(cfg.inits):
            for metric, acc in (("hold-out", res.history.holdout_acc), ("test", res.history.test_acc)):
                rows.append(dict(experiment=f"softmax, {init} init", paper=None,
                                 metric=f"final run {n_ep} epochs: {metric} accuracy (last weights)",
                                 jaxreg=100 * float(acc[g][-1]),
                                 config=dict(base, init=init, penalty="l2", lam=cfg.final_lambda, epochs=n_ep)))
    return rows


if __name__ == "__main__":
    sys.exit(common.main(sys.modules[__name__]))
