"""jaxreg: logistic, softmax and linear regression (and the multiclass hinge loss) as pure JAX
functions, with closed-form gradients, batched hyperparameter sweeps and hypergradients.

::

    import jaxreg as jr

    obj = jr.Objective("logistic")                          # or a jr.Loss record of your own
    data = jr.prepare_data(obj, jr.TrainConfig(), X, y, X_val, y_val)
    res = jr.train(obj, data, jr.Hyper(learning_rate=0.1, l2=1e-3))
    grid = jr.sweep(obj, data, {"l2": [1e-4, 1e-3, 1e-2], "learning_rate": [0.05, 0.1]})
    path = jr.solve_l2_path(obj, jr.Batch(X, y), jr.lambda_path(obj, jr.Batch(X, y)))

Importing jaxreg changes nothing global: XLA's persistent compilation cache is one explicit call,
``jaxreg.compile_cache.enable()``. The submodules ``meta`` (hypergradients), ``solvers``,
``stopping``, ``distributed``, ``losses`` and ``compile_cache`` load with the package;
``sklearn`` (scikit-learn estimators), ``data`` (MNIST) and ``plots`` (matplotlib) load on first
use, since they need optional packages or files.
"""
from __future__ import annotations

import importlib

from jaxreg import compile_cache, distributed, losses, meta, solvers, stopping
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.cv import cross_validate
from jaxreg.engine import stack_hypers, train_models
from jaxreg.grads import check_grad, finite_difference_grad, relative_error
from jaxreg.losses import Loss
from jaxreg.objective import Batch, Objective, Penalty, lambda_to_sklearn_C, penalty, sklearn_C_to_lambda
from jaxreg.prepare import prepare_data
from jaxreg.solvers import lambda_max, lambda_path, solve_l1_path, solve_l2_path
from jaxreg.stopping import StopRule
from jaxreg.sweeps import SweepResult, sweep
from jaxreg.trainer import History, TrainResult, train

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("sklearn", "data", "plots")

__all__ = [
    # the problem
    "Objective", "Batch", "Penalty", "Loss", "penalty", "lambda_to_sklearn_C", "sklearn_C_to_lambda",
    # training one model
    "Hyper", "TrainConfig", "TrainData", "prepare_data", "train", "TrainResult", "History", "StopRule",
    # grids of models
    "sweep", "SweepResult", "cross_validate", "train_models", "stack_hypers",
    # converged solvers
    "solve_l2_path", "solve_l1_path", "lambda_path", "lambda_max",
    # checks
    "check_grad", "finite_difference_grad", "relative_error",
    # submodules
    "meta", "solvers", "stopping", "distributed", "losses", "compile_cache", "sklearn", "data", "plots",
]


def __getattr__(name):
    """``jaxreg.sklearn``, ``jaxreg.data`` and ``jaxreg.plots`` on first use."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"jaxreg.{name}")
    raise AttributeError(f"module 'jaxreg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
