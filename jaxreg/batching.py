"""How mini-batch and SGD epochs draw their rows: the epoch's shuffle, the weighted row order
(positive-weight rows first, e.g. a cross-validation fold's own training rows), the unbiased
weighted batch gradient and the number of rows an epoch covers (``TrainConfig.epoch_rows``).
Used by :mod:`jaxreg.trainer`; re-exported there."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import losses
from jaxreg.config import TrainConfig, TrainData
from jaxreg.objective import Batch, Objective

__all__ = ["epoch_permutation", "epoch_order", "weighted_batch_fn", "epoch_rows_for"]


def epoch_permutation(key, epoch, n: int):
    """The shuffle of epoch ``epoch``: ``permutation(fold_in(fold_in(key, 0), epoch), n)``.

    Initial weights use ``fold_in(key, 1)`` (see :func:`train`); the extra ``fold_in(key, 0)``
    keeps the two streams apart for every epoch.
    """
    return jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 0), epoch), n)


def epoch_order(key, epoch, weight):
    """The row order of epoch ``epoch`` for weighted training: :func:`epoch_permutation`, with
    the positive-weight rows moved (stably) ahead of the zero-weight ones. So the first
    ``epoch_rows`` entries are a fresh random order of a fold's own training rows (and with all
    weights positive the order is exactly the unweighted one)."""
    perm = epoch_permutation(key, epoch, weight.shape[0])
    return perm[jnp.argsort(weight[perm] <= 0, stable=True)]


def weighted_batch_fn(objective: Objective, grad: str, weight, batch_size: int):
    """The mini-batch gradient for weighted training rows: ``(params, pen, X_b, y_b, w_b) -> g``.

    Unbiased for the full weighted objective: a batch B of ``batch_size`` rows drawn from the m
    positive-weight rows gives Σ_{n∈B} w_n ∇ℓ_n / (|B| w̄) with w̄ = Σ w / m (mean reduction), or
    Σ_{n∈B} w_n ∇ℓ_n (sum, as the unweighted batch sum), plus the penalty's gradient. (The ratio
    Σ_B w ∇ℓ / Σ_B w would ignore the weights altogether at batch size 1.)
    """
    as_sum = dataclasses.replace(objective, reduction=losses.SUM)
    grad_sum = as_sum.grad if grad == "closed_form" else jax.grad(as_sum.value)
    if objective.reduction == losses.SUM:
        scale = 1.0
    else:
        scale = jnp.sum(weight > 0) / (batch_size * jnp.sum(weight))

    def grad(params, pen, X_b, y_b, w_b):
        return grad_sum(params, pen, Batch(X_b, y_b, w_b * scale))

    return grad


def epoch_rows_for(config: TrainConfig, data: TrainData) -> TrainConfig:
    """``config`` with ``epoch_rows`` = the number of positive-weight training rows, for weighted
    mini-batch or SGD training that did not set it (unchanged otherwise)."""
    w = data.train.weight
    if w is None or config.method == "full_batch" or config.epoch_rows is not None:
        return config
    rows = int(np.sum(np.asarray(w) > 0))
    if config.method == "minibatch" and config.batch_size > rows:
        raise ValueError(f"batch_size ({config.batch_size}) must be <= the number of training rows with "
                         f"positive weight ({rows})")
    return dataclasses.replace(config, epoch_rows=rows)
