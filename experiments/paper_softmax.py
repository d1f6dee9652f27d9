"""Paper §3 (seed 003): 10-way softmax regression — its results table, Figures 11 and 12.

A config in, library calls (``jaxreg.sweep.sweep``, ``jaxreg.train.train``), figures and table
rows out. See :class:`SoftmaxConfig` for every protocol choice and why.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Optional

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from experiments import common  # noqa: E402
from jaxreg import Objective, plots  # noqa: E402
from jaxreg.data import softmax_split  # noqa: E402
from jaxreg.engine import stack_hypers, train_models  # noqa: E402
from jaxreg.sweep import sweep  # noqa: E402
from jaxreg.train import Hyper, TrainConfig, train  # noqa: E402

# (set, penalty, λ) -> (hold-out %, test %), seed 003 §3.3 (a).
PAPER = {(0, "l2", 1e-4): (90.1, 93.55), (0, "l1", 1e-4): (89.45, 92.95),
         (1, "l1", 5e-4): (88.45, 92.9), (1, "l2", 5e-4): (89.85, 93.4)}


@dataclasses.dataclass(frozen=True)
class SoftmaxConfig:
    """Softmax regression as the paper's text describes it (seed 003 §3.2), with its code's
    conventions where the text is silent.

    Full run:  ``python experiments/paper_softmax.py --out results``
    CI-sized:  ``python experiments/paper_softmax.py --smoke --out /tmp/smoke``

    * Model: ``Objective("softmax", n_classes=10, reduction="sum", fit_intercept=False)`` on the
      785 features (bias pixel first, penalised with W, as in the code); L2 as the code's
      gradient ``λW`` (jaxreg's (λ/2)‖W‖²), L1 as ``λ sign(W)``.
    * Data: ``softmax_split``: of the first 20,000 training images the first 2,000 are the
      hold-out set, the other 18,000 the training set; the test set is the last 2,000 test images.
    * Full-batch GD with η(t) = 0.0015 / (1 + t/3), t the epoch.
    * Tuning (the results table): L1 and L2 × the six λ of both sets are ONE vmapped sweep (the
      selection is made within each set, as the paper does); every model starts from the same initial weights (the text: "for each setting"; the
      code instead carries the weights from one λ to the next and trains 10 epochs each — run as
      a variant) and runs ``tuning_epochs`` = 1000 epochs (the text); the weights kept are those
      with the highest hold-out accuracy (the text), i.e. ``early_stopping="softmax_paper"`` with
      ``patience`` = the number of epochs. The text's 5-epoch stopping rule is also run as written
      (``patience=5``, variant rows): η0 = 0.0015 on the summed loss is a huge step (≈27 on the
      mean loss), the hold-out accuracy oscillates in the first epochs and the rule fires there.
    * Both initialisations: zeros, and N(0, 1) (the text) drawn from ``seed``.
    * Final run: L2, λ = 1e-4, 300 epochs (the code) and 1000 epochs, both inits in one vmapped
      program; Fig 11 plots the mean per-example cross-entropy (the paper plots the average), Fig
      12 the 300-epoch weights above the average training digits.
    """

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


def smoke_config() -> SoftmaxConfig:
    """The CI-sized variant (``--smoke``): a subset of the images and a few epochs."""
    return SoftmaxConfig(tuning_epochs=20, rule_epochs=10, code_epochs=3, final_epochs=(10, 20),
                         n_train_pool=3000, n_holdout=500, n_test=500)


def _cfg(n_epochs, **kw) -> dict:
    return {"method": "full_batch", "n_epochs": n_epochs, "eval_every": 1, "schedule": "inverse_time", **kw}


def run(out_dir, smoke: bool = False, data: Optional[dict] = None,
        config: Optional[SoftmaxConfig] = None, progress=common.QUIET,
        figures: bool = True) -> dict:
    """Train, plot, and return ``{"rows", "tuning_rows", "config", "timings", "files"}``."""
    cfg = config or (smoke_config() if smoke else SoftmaxConfig())
    data = common.load_data() if data is None else data
    os.makedirs(out_dir, exist_ok=True)
    key = common.key_of(cfg.seed)
    split = softmax_split(data, n_train_pool=cfg.n_train_pool, n_holdout=cfg.n_holdout, n_test=cfg.n_test)
    obj = Objective("softmax", n_classes=10, reduction="sum", fit_intercept=False)
    hyper = Hyper(learning_rate=cfg.eta0, decay_time=cfg.decay_time)
    tune = TrainConfig(**_cfg(cfg.tuning_epochs, early_stopping="softmax_paper",
                              patience=cfg.tuning_epochs, record_history=False, grad=cfg.grad))
    rule = TrainConfig(**_cfg(cfg.rule_epochs, early_stopping="softmax_paper",
                              patience=cfg.rule_patience, record_history=False, grad=cfg.grad))
    td = common.train_data(obj, tune, split)
    d = td.train.X.shape[1]
    timings, files, tuning_rows = {}, [], []
    sizes = dict(train=len(split.y_train), holdout=len(split.y_holdout), test=len(split.y_test))

    def record(init, protocol, s, pen, lam, holdout, test, **extra):
        tuning_rows.append(dict(init=init, protocol=protocol, set=s, penalty=pen, lam=lam,
                                holdout_acc=float(holdout), test_acc=float(test), **extra))

    all_lams = [lam for lams in cfg.lambda_sets for lam in lams]
    set_of = [s for s, lams in enumerate(cfg.lambda_sets) for _ in lams]
    for init, scale in cfg.inits:
        # the same weights sweep would draw (fold_in(key, 1)), given explicitly: one compiled
        # program then serves both initialisations
        p0 = obj.init_params(d, jax.random.fold_in(key, 1), scale)
        with progress.step(f"softmax [{init} init] tuning: L1/L2 × both λ sets ({2 * len(all_lams)} models), "
                           f"{cfg.tuning_epochs} epochs (one vmapped sweep)", timings):
            sw = sweep(obj, td, tune, {"penalty": ["l1", "l2"], "lam": all_lams}, hyper=hyper,
                       key=key, init_params=p0)
        for p, pen in enumerate(("l1", "l2")):
            for j, lam in enumerate(all_lams):
                record(init, "text", set_of[j], pen, lam, sw.metric("holdout_acc")[p, j], sw.metric("test_acc")[p, j])
        lams = sorted({lam for (_, _, lam) in PAPER})
        with progress.step(f"softmax [{init} init] the text's 5-epoch stopping rule, ≤{cfg.rule_epochs} epochs", timings):
            sw = sweep(obj, td, rule, {"penalty": ["l1", "l2"], "lam": lams}, hyper=hyper, key=key,
                       init_params=p0)
        for p, pen in enumerate(("l1", "l2")):
            for j, lam in enumerate(lams):
                record(init, "rule", None, pen, lam, sw.metric("holdout_acc")[p, j], sw.metric("test_acc")[p, j],
                       stop_epoch=int(sw.stop_epoch[p, j]), stopped=bool(sw.stopped[p, j]))
        with progress.step(f"softmax [{init} init] the code's tuning (weights carried, {cfg.code_epochs} epochs per λ)", timings):
            _code_protocol(cfg, obj, td, key, init, scale, record)

    final = {}
    params0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[
        obj.init_params(d, jax.random.fold_in(key, 1), scale) for _, scale in cfg.inits])
    G = len(cfg.inits)
    for n_ep in cfg.final_epochs:
        fcfg = TrainConfig(**_cfg(n_ep, grad=cfg.grad))
        with progress.step(f"softmax final run: L2 λ={cfg.final_lambda:g}, {n_ep} epochs, both inits (one vmapped program)", timings):
            hyps = stack_hypers(G, Hyper(learning_rate=cfg.eta0, decay_time=cfg.decay_time, l2=cfg.final_lambda))
            final[n_ep] = train_models(obj, fcfg, common.train_data(obj, fcfg, split), hyps, keys=key,
                                       params0=params0).result

    if figures:
        with progress.step("softmax: figures", timings):
            _figures(cfg, final, split, out_dir, files)
    rows = _table_rows(cfg, tuning_rows, final, sizes)
    return {"rows": rows, "tuning_rows": tuning_rows, "config": common.jsonable_config(cfg),
            "timings": timings, "files": files, "sizes": sizes}


def _code_protocol(cfg, obj, td, key, init, scale, record):
    """The paper's tuning code: one weight matrix trained ``code_epochs`` epochs per λ, L1 λs
    then L2 λs, each λ continuing from the previous λ's weights (η restarts at η0); each λ is
    judged by the hold-out accuracy after its epochs."""
    ccfg = TrainConfig(**_cfg(cfg.code_epochs, eval_every=cfg.code_epochs, grad=cfg.grad))
    for s, lams in enumerate(cfg.lambda_sets):
        params = obj.init_params(td.train.X.shape[1], jax.random.fold_in(key, 1), scale)
        for pen in ("l1", "l2"):
            for lam in lams:
                h = Hyper(cfg.eta0, cfg.decay_time, l2=lam if pen == "l2" else 0.0, l1=lam if pen == "l1" else 0.0)
                out = train(obj, td, h, ccfg, key=key, init_params=params)
                params = out.last_params
                record(init, "code", s, pen, lam, out.history.holdout_acc[-1], out.history.test_acc[-1])


def _figures(cfg, final, split, out_dir, files):
    X = split.X_train[:, 1:]
    avg = np.stack([X[split.y_train == k].mean(axis=0) for k in range(10)])
    for n_ep, res in final.items():
        hist = {k: np.asarray(v) for k, v in res.history._asdict().items()}
        panels = []
        for g, (init, _) in enumerate(cfg.inits):
            sets = {"train": "train", "hold-out": "holdout", "test": "test"}
            panels.append(dict(series={lab: hist[f"{k}_loss"][g] for lab, k in sets.items()}, x=hist["epoch"][g],
                               title=f"(a) loss, {init} init", ylabel="average cross-entropy (log scale)"))
            panels.append(dict(series={lab: hist[f"{k}_acc"][g] for lab, k in sets.items()}, x=hist["epoch"][g],
                               title=f"(b) accuracy, {init} init", ylabel="accuracy",
                               legend_loc="lower right"))
        fig = plots.curve_panels(panels, ncols=2, xlabel="epoch",
                                 suptitle=f"Softmax regression, L2 λ={cfg.final_lambda:g}, "
                                          f"η(t) = {cfg.eta0}/(1 + t/{cfg.decay_time:g}), {n_ep} epochs")
        for ax in fig.axes[0::2]:
            ax.set_yscale("log")
        name = "fig11_softmax_curves.png" if n_ep == cfg.final_epochs[0] else f"fig11_softmax_curves_{n_ep}ep.png"
        common.save(fig, out_dir, name, files)
    res = final[cfg.final_epochs[0]]
    for g, (init, _) in enumerate(cfg.inits):
        W = np.asarray(res.last_params["W"][g])
        name = "fig12_softmax_weights_digits.png" if g == 0 else "fig12b_softmax_weights_digits_normal_init.png"
        common.save(plots.weights_over_digits(
            W, avg, title=f"Weights ({init} init, {cfg.final_epochs[0]} epochs; own colour scale each) "
                          f"above the average training digits"), out_dir, name, files)


def _table_rows(cfg, tuning_rows, final, sizes):
    rows = []
    base = dict(loss="summed cross-entropy", method="full-batch GD", eta0=cfg.eta0, T=cfg.decay_time,
                **{f"n_{k}": v for k, v in sizes.items()})

    def find(init, protocol, pen, lam, s=None):
        for r in tuning_rows:
            if (r["init"], r["protocol"], r["penalty"], r["lam"]) == (init, protocol, pen, lam) and (
                    s is None or r["set"] == s):
                return r
        return None

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
                cands = [find(init, "text", pen, lam, s) for lam in lams]
                best = max(cands, key=lambda r: (r["holdout_acc"], -cands.index(r)))
                tie = len({r["holdout_acc"] for r in cands}) == 1
                note = (f"all three λ tie (hold-out {100 * best['holdout_acc']:.2f}%): λ ≤ 0.05 is negligible "
                        "beside the summed gradient of the training images" if tie else
                        f"picks λ={best['lam']:g} (hold-out {100 * best['holdout_acc']:.2f}%)")
                rows.append(dict(experiment=exp, metric=f"λ set {s + 1}, {pen.upper()}: test accuracy of the λ "
                                 "chosen on hold-out", paper=None, jaxreg=100 * best["test_acc"],
                                 config=dict(base, init=init, chosen_lam=best["lam"], tie=tie,
                                             holdout=100 * best["holdout_acc"]),
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
    for r in rows:  # say why wherever an accuracy misses the paper's by more than 1 point
        if r["paper"] is None or abs(r["jaxreg"] - r["paper"]) <= 1.0:
            continue
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
            h = res.history
            for metric, key in (("hold-out", "holdout_acc"), ("test", "test_acc")):
                rows.append(dict(experiment=f"softmax, {init} init", paper=None,
                                 metric=f"final run {n_ep} epochs: {metric} accuracy (last weights)",
                                 jaxreg=100 * float(getattr(h, key)[g][-1]),
                                 config=dict(base, init=init, penalty="l2", lam=cfg.final_lambda, epochs=n_ep)))
    return rows


def main(argv=None) -> int:
    return common.script_main(run, __doc__, "[softmax]", lambda r: f"{r['experiment']:28s} {r['metric']:52s} paper {r['paper']}  jaxreg {r['jaxreg']:.2f}", argv)


if __name__ == "__main__":
    sys.exit(main())
