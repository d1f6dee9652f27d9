"""Grid expansion and validation for :mod:`jaxreg.sweeps`.

Axes: ``AXES`` (``l1_ratio`` with ``lam`` is glmnet's elastic net) plus the names of the base hyperparameters' ``extra`` values (traced optimizer or
schedule hyperparameters, e.g. ``{"beta": [0.0, 1e-3]}`` with ``hyper=Hyper(extra={"beta": 0.0})``).
Plain Python/NumPy: everything here runs before anything is compiled.
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

from jaxreg import validation
from jaxreg.config import Hyper

__all__ = ["AXES", "FOLD", "HYPER_AXES", "expand_grid", "with_folds", "hyper_of"]

AXES = ("learning_rate", "decay_time", "penalty", "lam", "l1_ratio", "l2", "l1", "batch_size", "seed", "init_scale")
FOLD = "fold"  # the axis sweep(..., folds=K) appends: not given in the grid itself
HYPER_AXES = ("learning_rate", "decay_time", "l2", "l1")


def _check_value(axis: str, v, name: str, n_train: int, extra_axes):
    if axis == "penalty":
        if v not in ("l1", "l2", "none"):
            raise ValueError(f"{name} must be 'l1', 'l2' or 'none', got {v!r}")
        return v
    if axis in ("learning_rate", "decay_time"):
        return validation.check_scalar(v, name, low=0, low_inclusive=False)
    if axis in ("lam", "l2", "l1", "init_scale"):
        return validation.check_scalar(v, name, low=0)
    if axis == "l1_ratio":
        return validation.check_scalar(v, name, low=0, high=1)
    if axis == "batch_size":
        return validation.check_scalar(v, name, low=1, high=n_train, integer=True)
    if axis in extra_axes:
        return validation.check_scalar(v, name)
    return validation.check_scalar(v, name, low=0, high=2**32 - 1, integer=True)  # seed


def expand_grid(grid: Mapping[str, Sequence], n_train: int, extra_axes: Sequence[str] = ()):
    """Validate the grid; return (axes, values, configs): the flat Cartesian product."""
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty mapping of axis name -> values, got {grid!r}")
    values = {}
    for axis, vals in grid.items():
        if axis == FOLD:
            raise ValueError("the fold axis comes from sweep(..., folds=K or fold ids), not from the grid")
        if axis not in AXES and axis not in extra_axes:
            raise ValueError(f"unknown grid axis {axis!r}; axes are {AXES}"
                             + (f" and hyper.extra's {tuple(extra_axes)}" if extra_axes else ""))
        vals = [vals] if isinstance(vals, (str, int, float)) else list(vals)
        if not vals:
            raise ValueError(f"grid axis {axis!r} is empty")
        values[axis] = tuple(_check_value(axis, v, f"grid[{axis!r}][{i}]", n_train, extra_axes)
                             for i, v in enumerate(vals))
    if "penalty" in values and "l1_ratio" in values:
        raise ValueError("grid axes 'penalty' and 'l1_ratio' are exclusive (l1_ratio 0 is L2, 1 is L1)")
    if ("penalty" in values or "l1_ratio" in values) != ("lam" in values):
        raise ValueError("grid axis 'lam' goes with 'penalty' (penalty kind × strength λ) or with 'l1_ratio' "
                         "(elastic net λ(α‖W‖₁ + (1 − α)/2 ‖W‖²))")
    if "lam" in values and ({"l1", "l2"} & set(values)):
        raise ValueError("grid axes 'penalty'/'l1_ratio'/'lam' and 'l2'/'l1' are exclusive")
    axes = tuple(values)
    configs = tuple(dict(zip(axes, combo)) for combo in itertools.product(*values.values()))
    return axes, tuple(values.values()), configs


def with_folds(axes: tuple, values: tuple, configs: tuple, n_folds: int):
    """(axes, values, configs) with a trailing ``fold`` axis of values 0..K−1."""
    folds = tuple(range(n_folds))
    return (axes + (FOLD,), values + (folds,),
            tuple({**c, FOLD: k} for c in configs for k in folds))


def hyper_of(c: dict, base: Hyper) -> Hyper:
    """The :class:`Hyper` of one grid point ``c`` ({axis: value}) over the ``base`` values."""
    h = base._replace(**{k: c[k] for k in HYPER_AXES if k in c},
                      extra={**dict(base.extra), **{k: c[k] for k in base.extra if k in c}})
    if "penalty" in c:
        h = h._replace(l2=c["lam"] if c["penalty"] == "l2" else 0.0,
                       l1=c["lam"] if c["penalty"] == "l1" else 0.0)
    if "l1_ratio" in c:  # glmnet's elastic net: (λ₁, λ₂) = (αλ, (1 − α)λ)
        h = h._replace(l2=(1.0 - c["l1_ratio"]) * c["lam"], l1=c["l1_ratio"] * c["lam"])
    return h
