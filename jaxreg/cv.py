"""K-fold cross-validation of a whole grid in one compiled program: fold scores, mean ± SE,
selection ("best" or glmnet's one-standard-error rule) and refit.

    cvr = cross_validate(obj, data, cfg, {"lam": lams, "l1_ratio": [0.5, 1.0], "learning_rate": [0.1, 0.3]},
                         folds=5)
    cvr.mean("holdout_acc"), cvr.se("holdout_acc")   # grid-shaped (without the fold axis)
    cvr.select(rule="1se")                           # glmnet's lambda.1se along "lam"
    cvr.to_records()                                 # one row per grid point: axes, mean, se

The folds are 0/1 weight masks over the same arrays (:mod:`jaxreg.folds`), so folds × the grid
are members of one ``jit(vmap(trainer))`` (:func:`jaxreg.sweeps.sweep` with ``folds=``).

Summaries over the K folds of a grid point: the mean m = Σ_k s_k / K and the standard error
SE = sd(s_1..s_K) / √K (sd with K − 1; as glmnet's ``cvsd`` for equal fold weights and
scikit-learn's unweighted fold mean). A point whose model diverged in any fold, or whose score
is not finite in some fold, is never selected.

Selection (:func:`select`): ``"best"`` = highest mean accuracy / lowest mean loss (ties: first in
grid order); ``"1se"`` = among the points that share every other axis value with the best one,
the most regularised (largest value along ``along``, e.g. λ) whose mean is within one SE (of the
best point) of the best mean (glmnet's ``lambda.1se``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from jaxreg import tidy
from jaxreg.config import TrainConfig, TrainData
from jaxreg.engine import METRICS
from jaxreg.objective import Objective
from jaxreg.sweep_grid import FOLD
from jaxreg.sweeps import sweep, SweepResult

__all__ = ["RULES", "REGULARISATION_AXES", "summarise", "select", "Selection", "CVResult", "cross_validate"]

RULES = ("best", "1se")
REGULARISATION_AXES = ("lam", "l2", "l1")


def summarise(scores, axis: int = -1):
    """(mean, standard error) over ``axis`` (the folds): Σ s / K and sd(ddof=1) / √K."""
    s = np.asarray(scores, np.float64)
    K = s.shape[axis]
    return s.mean(axis=axis), s.std(axis=axis, ddof=1) / np.sqrt(K)


def select(mean, se, *, greater_is_better: bool, rule: str = "best", strength=None, group=None,
           valid=None) -> int:
    """The index of the selected point among P points (module docstring).

    mean, se: (P,); strength: (P,) regularisation strength (larger = simpler model; needed by
    ``"1se"``); group: (P,) hashable labels: ``"1se"`` looks only among points of the best one's
    group (the same values of the other axes); valid: (P,) bool (default: finite means).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    mean, se = np.asarray(mean, np.float64), np.asarray(se, np.float64)
    ok = np.isfinite(mean) if valid is None else np.asarray(valid, bool) & np.isfinite(mean)
    if not ok.any():
        raise ValueError("no grid point has a finite cross-validated score in every fold")
    signed = np.where(ok, mean if greater_is_better else -mean, -np.inf)
    best = int(np.argmax(signed))
    if rule == "best":
        return best
    if strength is None:
        raise ValueError("rule='1se' needs the regularisation strength of each point (along=...)")
    within = ok & (signed >= signed[best] - se[best])
    if group is not None:
        group = list(group)
        within &= np.asarray([g == group[best] for g in group], bool)
    strength = np.asarray(strength, np.float64)
    return int(np.flatnonzero(within)[np.argmax(strength[within])])


class Selection(NamedTuple):
    """A selected grid point: its index in the fold-free grid, its axis values (``config``), the
    rule, the metric, and that point's mean and SE over the folds."""

    index: tuple
    flat_index: int
    config: dict
    rule: str
    metric: str
    mean: float
    se: float


@dataclasses.dataclass(frozen=True)
class CVResult:
    """Cross-validated sweep. sweep: the :class:`~jaxreg.sweeps.SweepResult` with a trailing
    ``fold`` axis (per-fold models and metrics); refit: the refitted selection's one-point
    SweepResult on all the data (``refit=True``), else None; selection: what was refitted."""

    sweep: SweepResult
    refit: Optional[SweepResult] = None
    selection: Optional[Selection] = None

    @property
    def axes(self) -> tuple:
        return self.sweep.axes[:-1]

    @property
    def shape(self) -> tuple:
        return self.sweep.shape[:-1]

    @property
    def n_folds(self) -> int:
        return self.sweep.shape[-1]

    @property
    def points(self) -> tuple:
        """The fold-free grid points ({axis: value}), in grid order."""
        return tuple({k: v for k, v in c.items() if k != FOLD} for c in self.sweep.configs[::self.n_folds])

    def fold_scores(self, metric: str = "holdout_acc") -> np.ndarray:
        """A final metric per point and fold: shape + (K,)."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        return np.asarray(self.sweep.metric(metric), np.float64)

    def mean(self, metric: str = "holdout_acc") -> np.ndarray:
        return summarise(self.fold_scores(metric))[0]

    def se(self, metric: str = "holdout_acc") -> np.ndarray:
        return summarise(self.fold_scores(metric))[1]

    def select(self, metric: str = "holdout_acc", rule: str = "best", along: Optional[str] = None) -> Selection:
        """The selected point (module docstring). ``along``: the regularisation axis of the
        ``"1se"`` rule (default: the first of "lam", "l2", "l1" in the grid)."""
        mean, se = (a.ravel() for a in summarise(self.fold_scores(metric)))
        diverged = np.asarray(self.sweep.diverged).reshape(-1, self.n_folds).any(axis=1)
        strength = group = None
        if rule == "1se":
            along = along or next((a for a in REGULARISATION_AXES if a in self.axes), None)
            if along not in self.axes:
                raise ValueError(f"along must name the regularisation axis of the grid {self.axes}, got {along!r}")
            strength = [p[along] for p in self.points]
            group = [tuple((k, v) for k, v in p.items() if k != along) for p in self.points]
        i = select(mean, se, greater_is_better=metric.endswith("acc"), rule=rule, strength=strength,
                   group=group, valid=~diverged)
        index = tuple(int(j) for j in np.unravel_index(i, self.shape)) if self.shape else ()
        return Selection(index, i, dict(self.points[i]), rule, metric, float(mean[i]), float(se[i]))

    def to_records(self, metrics: Sequence[str] = METRICS) -> list:
        """One row per grid point: the axis values, ``n_folds``, and ``<metric>_mean`` and
        ``<metric>_se`` for each metric (NaN where a set was not given)."""
        stats = {m: [a.ravel() for a in summarise(self.fold_scores(m))] for m in metrics}
        rows = []
        for i, p in enumerate(self.points):
            row = {**p, "n_folds": self.n_folds}
            for m, (mean, se) in stats.items():
                row[f"{m}_mean"], row[f"{m}_se"] = float(mean[i]), float(se[i])
            rows.append(row)
        return rows

    def to_csv(self, path, metrics: Sequence[str] = METRICS) -> str:
        return tidy.write_csv(self.to_records(metrics), path)

    def to_dataframe(self, metrics: Sequence[str] = METRICS):
        return tidy.dataframe(self.to_records(metrics))


def cross_validate(objective: Objective, data: TrainData, config: TrainConfig, grid, folds=5, *,
                   fold_key=None, metric: str = "holdout_acc", rule: str = "best", along: Optional[str] = None,
                   refit: bool = False, **sweep_kwargs: Any) -> CVResult:
    """K-fold cross-validation of ``grid`` (:func:`jaxreg.sweeps.sweep` with ``folds``; every
    fold × grid point in one compiled program per batch size). ``data.holdout`` must be None;
    ``data.test`` is evaluated by every model. ``refit=True``: the point chosen by ``metric`` and
    ``rule`` (:meth:`CVResult.select`) retrained on all of ``data.train`` with the same key,
    seeds and starts. ``sweep_kwargs``: hyper, key, init_params, init_scale, seeds, chunk_size,
    memory_budget, devices, progress."""
    if metric not in METRICS or not metric.startswith("holdout"):
        raise ValueError(f"metric must be a hold-out metric ('holdout_acc' or 'holdout_loss'), got {metric!r}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if not isinstance(refit, bool):
        raise ValueError(f"refit must be True or False, got {refit!r}")
    if refit and config.needs_holdout:
        raise ValueError(f"refit=True trains on all rows, where early_stopping={config.early_stopping!r} has no "
                         "hold-out set; use refit=False or a config without hold-out early stopping")
    res = CVResult(sweep(objective, data, config, grid, folds=folds, fold_key=fold_key, **sweep_kwargs))
    if not refit:
        return res
    chosen = res.select(metric, rule, along)
    one = {k: [v] for k, v in chosen.config.items() if k != "seed"}
    seeds = [chosen.config["seed"]] if "seed" in chosen.config else None
    kw = {k: v for k, v in sweep_kwargs.items() if k != "seeds"}
    return dataclasses.replace(res, refit=sweep(objective, data, config, one, seeds=seeds, **kw), selection=chosen)
