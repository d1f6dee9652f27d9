"""Grid expansion and validation, and the per-model memory estimate, for :mod:`jaxreg.sweep`.

Plain Python/NumPy: everything here runs before anything is compiled.
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np

from jaxreg import validation
from jaxreg.objective import Objective
from jaxreg.train import Hyper, TrainConfig, TrainData

AXES = ("learning_rate", "decay_time", "penalty", "lam", "l2", "l1", "batch_size", "seed")
_OPT_COPIES = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}


def model_bytes(objective: Objective, config: TrainConfig, data: TrainData) -> int:
    """Estimated device bytes one vmapped model needs (an upper-bound-minded estimate).

    P = d·C (+ C) parameters held ~9 times (θ, candidate θ, selected/reference/previous copies,
    gradient, update) plus optimiser state (×0 sgd, ×1 momentum, ×2 adam, twice for the frozen
    copy); per-update activations rows × 3C (scores, residuals) plus, for mini-batches, the
    gathered batch (rows × d) and the n-index permutation; evaluation activations 2C per
    example of every set; the history (10 fields × n_records); all ×2 for XLA temporaries.
    """
    n, d = data.train.X.shape
    C = objective.n_classes
    n_params = d * C + (C if objective.fit_intercept else 0)
    state = n_params * (9 + 2 * _OPT_COPIES[config.optimizer])
    rows = {"full_batch": n, "sgd": 1}.get(config.method, config.batch_size)
    full = config.method == "full_batch"  # full batch: X is shared, not gathered per model
    step = rows * (3 * C + (0 if full else d)) + (0 if full else n)
    evals = 2 * C * sum(b.X.shape[0] for b in data if b is not None)
    total = state + max(step, evals) + 10 * config.n_records + 16
    return 2 * total * np.dtype(data.train.X.dtype).itemsize


def expand_grid(grid: Mapping[str, Sequence], n_train: int):
    """Validate the grid; return (axes, values, configs): the flat Cartesian product."""
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty mapping of axis name -> values, got {grid!r}")
    values = {}
    for axis, vals in grid.items():
        if axis not in AXES:
            raise ValueError(f"unknown grid axis {axis!r}; axes are {AXES}")
        vals = [vals] if isinstance(vals, (str, int, float)) else list(vals)
        if not vals:
            raise ValueError(f"grid axis {axis!r} is empty")
        for i, v in enumerate(vals):
            name = f"grid[{axis!r}][{i}]"
            if axis == "penalty":
                if v not in ("l1", "l2", "none"):
                    raise ValueError(f"{name} must be 'l1', 'l2' or 'none', got {v!r}")
            elif axis in ("learning_rate", "decay_time"):
                vals[i] = validation.check_scalar(v, name, low=0, low_inclusive=False)
            elif axis in ("lam", "l2", "l1"):
                vals[i] = validation.check_scalar(v, name, low=0)
            elif axis == "batch_size":
                vals[i] = validation.check_scalar(v, name, low=1, high=n_train, integer=True)
            else:
                vals[i] = validation.check_scalar(v, name, low=0, high=2**32 - 1, integer=True)
        values[axis] = tuple(vals)
    if ("penalty" in values) != ("lam" in values):
        raise ValueError("grid axes 'penalty' and 'lam' go together (penalty kind × strength λ)")
    if "penalty" in values and ({"l1", "l2"} & set(values)):
        raise ValueError("grid axes 'penalty'/'lam' and 'l2'/'l1' are exclusive")
    axes = tuple(values)
    configs = tuple(dict(zip(axes, combo)) for combo in itertools.product(*values.values()))
    return axes, tuple(values.values()), configs


def hyper_of(c: dict, base: Hyper) -> Hyper:
    h = base._replace(**{k: c[k] for k in ("learning_rate", "decay_time", "l2", "l1") if k in c})
    if "penalty" in c:
        h = h._replace(l2=c["lam"] if c["penalty"] == "l2" else 0.0,
                       l1=c["lam"] if c["penalty"] == "l1" else 0.0)
    return h
