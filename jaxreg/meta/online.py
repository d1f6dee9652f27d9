"""Online hypergradient optimizers: the learning rate adapted during the one training run, as
optax ``GradientTransformation``s with explicit NamedTuple states, for the trainer
(``TrainConfig(optimizer=...)``), :func:`jaxreg.sweep.sweep`, :func:`jaxreg.engine.train_models`
and :mod:`jaxreg.meta` alike.

* :func:`hypergradient_sgd`: SGD-HD (Baydin et al. 2018, "Online learning rate adaptation with
  hypergradient descent", Algorithm 1). (Room here for SGDN-HD and Adam-HD, same paper.)
* :func:`sgd_hd_runs`: SGD-HD from a set of (η0, β), all models in one program.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import engine, tree, validation
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.meta.unrolled import horizon_config
from jaxreg.objective import Objective


class HypergradientSGDState(NamedTuple):
    """learning_rate: the current η_t; prev_grad: ∇f(θ_{t−1}) (zeros before the first step);
    hypergrad: the last ∇f(θ_{t−1})·∇f(θ_{t−2}) (for logging)."""

    learning_rate: Any
    prev_grad: optax.Updates
    hypergrad: Any


def hypergradient_sgd(learning_rate, beta=None, *, min_learning_rate: float = 0.0) -> optax.GradientTransformation:
    """SGD with online hypergradient descent on η (SGD-HD):

        η_t = max(η_{t−1} + β ∇f(θ_{t−1}) · ∇f(θ_{t−2}), min_learning_rate),
        θ_t = θ_{t−1} − η_t ∇f(θ_{t−1})

    (``updates`` in: gradients, a pytree; out: −η_t g). ``learning_rate``: η0, a float or a
    schedule (then η0 = schedule(0), so it serves as a trainer factory:
    ``TrainConfig(optimizer=functools.partial(hypergradient_sgd, beta=1e-3))``, or
    ``TrainConfig(optimizer=hypergradient_sgd)`` with ``Hyper(extra={"beta": ...})``, β traced).
    η is kept ≥ ``min_learning_rate`` (0 by default: a negative rate would ascend) and is left
    unchanged by a non-finite hypergradient. Scalars η, β may be traced values. ``beta`` has
    no default value: None (what ``TrainConfig`` checks the factory with) raises ValueError.
    """
    if beta is None:
        raise ValueError("hypergradient_sgd needs beta: functools.partial(hypergradient_sgd, beta=...) or "
                         "Hyper(extra={'beta': ...}) with TrainConfig(optimizer=hypergradient_sgd)")
    lr0 = learning_rate(0) if callable(learning_rate) else learning_rate

    def init(params):
        dtype = tree.leaf_dtype(params)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return HypergradientSGDState(jnp.asarray(lr0, dtype), zeros, jnp.zeros((), dtype))

    def update(updates, state, params=None):
        del params
        h = tree.vdot(updates, state.prev_grad)
        lr = state.learning_rate + beta * h
        lr = jnp.where(jnp.isfinite(lr), jnp.maximum(lr, min_learning_rate), state.learning_rate)
        lr = lr.astype(state.learning_rate.dtype)
        new_updates = jax.tree_util.tree_map(lambda g: (-lr * g).astype(g.dtype), updates)
        return new_updates, HypergradientSGDState(lr, updates, h.astype(lr.dtype))

    return optax.GradientTransformation(init, update)


def trace_learning_rate(params, opt_state):
    """A ``TrainConfig.step_trace``: the adapted η of an online hypergradient optimizer."""
    return opt_state.learning_rate


class OnlineRuns(NamedTuple):
    """Per model (G,): learning_rate0 (η0), beta (β), final_learning_rate (η_K), holdout_loss
    (mean hold-out data loss after K updates), diverged; learning_rates (G, K): η_t after
    update t."""

    learning_rate0: np.ndarray
    beta: np.ndarray
    final_learning_rate: np.ndarray
    holdout_loss: np.ndarray
    diverged: np.ndarray
    learning_rates: np.ndarray


def sgd_hd_runs(objective: Objective, config: TrainConfig, data: TrainData, learning_rates, betas, *,
                horizon: int, params0=None, key=None, base: Hyper = Hyper()) -> OnlineRuns:
    """SGD-HD (:func:`hypergradient_sgd`) for each pair ``(learning_rates[g], betas[g])``,
    ``horizon`` (K) updates of ``config``'s method and batches, trained as G models by
    :func:`jaxreg.engine.train_models` (η0 and β per-model traced values, one program); the
    adapted η is recorded after every update through ``step_trace``. ``base``: the other
    hyperparameters (e.g. λ₂). ``params0``: shared initial weights (default zeros); ``key``:
    the shared batch order.

    Raises ValueError naming ``learning_rates`` / ``betas`` (lengths differ, η0 <= 0,
    non-finite β) or what :func:`jaxreg.meta.unrolled.horizon_config` and the engine check.
    """
    lr0 = validation.check_values(learning_rates, "learning_rates", low=0, low_inclusive=False)
    beta = validation.check_values(betas, "betas")
    if lr0.shape != beta.shape:
        raise ValueError(f"learning_rates and betas must have the same length, got {lr0.size} and {beta.size}")
    hcfg = horizon_config(config, data.train.X.shape[0], horizon)
    hcfg = dataclasses.replace(hcfg, optimizer=hypergradient_sgd, step_trace=trace_learning_rate)
    hypers = engine.stack_hypers(lr0.size, base._replace(extra={**dict(base.extra), "beta": 0.0}),
                                 learning_rate=lr0, beta=beta)
    out = engine.train_models(objective, hcfg, data, hypers, keys=key, params0=params0, progress=False)
    dtype = data.train.X.dtype
    trace = np.asarray(out.result.trace)[:, :hcfg.max_steps]
    return OnlineRuns(lr0.astype(dtype), beta.astype(dtype), trace[:, -1], np.asarray(out.final["holdout_loss"]),
                      np.asarray(out.result.diverged), trace)
