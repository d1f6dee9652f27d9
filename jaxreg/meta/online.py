"""Online hypergradient optimizers: the learning rate adapted during the one training run, as
optax ``GradientTransformation``s with explicit NamedTuple states, for the trainer
(``TrainConfig(optimizer=...)``), :func:`jaxreg.sweeps.sweep`, :func:`jaxreg.engine.train_models`
and :mod:`jaxreg.meta` (differentiable: ``jax.grad`` through them works) alike.

Baydin et al., "Online learning rate adaptation with hypergradient descent" (ICLR 2018),
Algorithms 4-6, share one shape. With g_t = ∇f(θ_{t−1}) and the base method's direction d_t
(the update is u_t = −α_t d_t, so ∂u_{t−1}/∂α = −d_{t−1}):

    h_t = g_t · ∂u_{t−1}/∂α = −g_t · d_{t−1}        (d_0 = 0)
    α_t = α_{t−1} − β h_t
    d_t = base(g_t),   θ_t = θ_{t−1} − α_t d_t

* SGD-HD (Alg. 4, :func:`sgd_hd`): d_t = g_t.
* SGDN-HD (Alg. 5, :func:`sgdn_hd`): v_t = μ v_{t−1} + g_t, d_t = g_t + μ v_t (Nesterov).
* Adam-HD (Alg. 6, :func:`adam_hd`): m_t, v_t Adam's moments, d_t = m̂_t / (√v̂_t + ε).

:func:`hypergradient` is that shape over any optax direction transform (the base methods are
``optax.identity``, ``optax.trace(μ, nesterov=True)`` and ``optax.scale_by_adam``, exactly what
``optax.sgd`` / ``optax.adam`` chain with the learning rate, so β = 0 reproduces them bit for
bit); :func:`hd_family` has the base method as a traced value (``method`` 0, 1, 2 = SGD,
SGDN, Adam), so the six methods of the paper (β = 0: the baselines) train as ONE vmapped
program. :func:`sgd_hd` with ``min_learning_rate=0.0`` keeps η ≥ 0 (the older name
:func:`hypergradient_sgd` warns); :func:`sgd_hd_runs` runs it
from a set of (η0, β).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import engine, tree, validation
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.meta.unrolled import horizon_config
from jaxreg.objective import Objective

__all__ = ["HD_METHODS", "HypergradientState", "HypergradientSGDState", "hypergradient", "sgd_hd", "sgdn_hd",
           "adam_hd", "FamilyState", "family_direction", "hd_family", "hypergradient_sgd",
           "trace_learning_rate", "OnlineRuns", "sgd_hd_runs"]

#: the base methods of :func:`hd_family`, by their ``method`` index.
HD_METHODS = ("sgd", "sgdn", "adam")


class HypergradientState(NamedTuple):
    """learning_rate: α_t; prev_direction: d_{t−1} (zeros before the first step); hypergrad:
    the last g_t · d_{t−1} (= −h_t, for logging); base: the direction transform's state."""

    learning_rate: Any
    prev_direction: optax.Updates
    hypergrad: Any
    base: Any = None


HypergradientSGDState = HypergradientState  # the older name


def _need_beta(beta, name):
    if beta is None:
        raise ValueError(f"{name} needs beta: functools.partial({name}, beta=...) or Hyper(extra={{'beta': ...}}) "
                         f"with TrainConfig(optimizer={name})")


def hypergradient(direction: optax.GradientTransformation, learning_rate, beta, *,
                  min_learning_rate: Optional[float] = None) -> optax.GradientTransformation:
    """Hypergradient descent on the learning rate of ``direction`` (module docstring):
    ``updates`` in: gradients g_t (a pytree); out: −α_t d_t. ``learning_rate``: α0, a float or
    a schedule (then α0 = schedule(0)); ``beta``: β; both may be traced. α is clipped at
    ``min_learning_rate`` when given (None: not at all, as in the paper) and kept unchanged by
    a non-finite hypergradient."""
    lr0 = learning_rate(0) if callable(learning_rate) else learning_rate

    def init(params):
        dtype = tree.leaf_dtype(params)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return HypergradientState(jnp.asarray(lr0, dtype), zeros, jnp.zeros((), dtype), direction.init(params))

    def update(updates, state, params=None):
        h = tree.vdot(updates, state.prev_direction)
        lr = state.learning_rate + beta * h
        ok = jnp.isfinite(lr)
        if min_learning_rate is not None:
            lr = jnp.maximum(lr, min_learning_rate)
        lr = jnp.where(ok, lr, state.learning_rate).astype(state.learning_rate.dtype)
        d, base = direction.update(updates, state.base, params)
        new_updates = jax.tree_util.tree_map(lambda x: (-lr * x).astype(x.dtype), d)
        return new_updates, HypergradientState(lr, d, h.astype(lr.dtype), base)

    return optax.GradientTransformation(init, update)


def sgd_hd(learning_rate, beta=None, *, min_learning_rate: Optional[float] = None) -> optax.GradientTransformation:
    """SGD-HD (Algorithm 4): α_t = α_{t−1} + β g_t·g_{t−1}, θ_t = θ_{t−1} − α_t g_t. A trainer
    factory: ``TrainConfig(optimizer=functools.partial(sgd_hd, beta=1e-3))`` or β traced from
    ``Hyper(extra={"beta": ...})``. β = 0 is ``optax.sgd`` exactly. ``min_learning_rate``: a
    floor, α_t = max(α_t, min_learning_rate) (0.0 keeps the rate from turning negative, which
    would ascend); None: no floor."""
    _need_beta(beta, "sgd_hd")
    if min_learning_rate is None:
        return hypergradient(optax.identity(), learning_rate, beta)
    return hypergradient(optax.identity(), learning_rate, beta, min_learning_rate=min_learning_rate)


def sgdn_hd(learning_rate, beta=None, momentum=0.9) -> optax.GradientTransformation:
    """SGDN-HD (Algorithm 5): Nesterov momentum μ = ``momentum`` (v_t = μ v_{t−1} + g_t, d_t =
    g_t + μ v_t) with hypergradient descent on α. β = 0 is ``optax.sgd(α, μ, nesterov=True)``."""
    _need_beta(beta, "sgdn_hd")
    return hypergradient(optax.trace(momentum, nesterov=True), learning_rate, beta)


def adam_hd(learning_rate, beta=None, b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformation:
    """Adam-HD (Algorithm 6): d_t = m̂_t / (√v̂_t + ε) with hypergradient descent on α. β = 0 is
    ``optax.adam(α, b1, b2, eps)``."""
    _need_beta(beta, "adam_hd")
    return hypergradient(optax.scale_by_adam(b1, b2, eps), learning_rate, beta)


class FamilyState(NamedTuple):
    nesterov: Any
    adam: Any


def family_direction(method, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8) -> optax.GradientTransformation:
    """The direction of SGD (``method`` 0), SGDN (1) or Adam (2), ``method`` possibly traced: all
    three are computed, the state carries the momentum and the Adam moments, the direction
    is selected (the selected values are those of the single method's transform)."""
    nesterov, adam = optax.trace(momentum, nesterov=True), optax.scale_by_adam(b1, b2, eps)

    def init(params):
        return FamilyState(nesterov.init(params), adam.init(params))

    def update(updates, state, params=None):
        dn, sn = nesterov.update(updates, state.nesterov, params)
        da, sa = adam.update(updates, state.adam, params)
        pick = lambda g, n, a: jnp.where(method < 0.5, g, jnp.where(method < 1.5, n, a))  # noqa: E731
        return jax.tree_util.tree_map(pick, updates, dn, da), FamilyState(sn, sa)

    return optax.GradientTransformation(init, update)


def hd_family(learning_rate, method=None, beta=None, momentum=0.9, b1=0.9, b2=0.999,
              eps=1e-8) -> optax.GradientTransformation:
    """SGD-HD, SGDN-HD or Adam-HD by the (traced) ``method`` index into :data:`HD_METHODS`, with
    (traced) β: a trainer factory for ``Hyper(extra={"method": m, "beta": β})`` grids, so the
    paper's six methods (β = 0: SGD, SGDN, Adam) are one vmapped program."""
    if method is None:
        raise ValueError("hd_family needs method (0 SGD, 1 SGDN, 2 Adam): Hyper(extra={'method': ..., 'beta': ...})")
    _need_beta(beta, "hd_family")
    return hypergradient(family_direction(method, momentum, b1, b2, eps), learning_rate, beta)


def hypergradient_sgd(learning_rate, beta=None, *, min_learning_rate: float = 0.0) -> optax.GradientTransformation:
    """Deprecated (a DeprecationWarning): use ``sgd_hd(..., min_learning_rate=0.0)``. SGD-HD with a floor: :func:`sgd_hd` with η kept ≥ ``min_learning_rate`` (0 by default: a
    negative rate would ascend):

        η_t = max(η_{t−1} + β ∇f(θ_{t−1}) · ∇f(θ_{t−2}), min_learning_rate),
        θ_t = θ_{t−1} − η_t ∇f(θ_{t−1})

    ``beta`` has no default value: None (what ``TrainConfig`` checks the factory with) raises
    ValueError.
    """
    warnings.warn("hypergradient_sgd is sgd_hd(learning_rate, beta, min_learning_rate=0.0); call sgd_hd",
                  DeprecationWarning, stacklevel=2)
    _need_beta(beta, "hypergradient_sgd")
    return hypergradient(optax.identity(), learning_rate, beta, min_learning_rate=min_learning_rate)


def _sgd_hd_floored(learning_rate, beta=None):
    """SGD-HD with η kept ≥ 0 (what :func:`sgd_hd_runs` runs)."""
    return sgd_hd(learning_rate, beta, min_learning_rate=0.0)


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
    """SGD-HD with η kept ≥ 0 (:func:`sgd_hd`, ``min_learning_rate=0.0``) for each pair ``(learning_rates[g], betas[g])``,
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
    hcfg = dataclasses.replace(hcfg, optimizer=_sgd_hd_floored, step_trace=trace_learning_rate)
    hypers = engine.stack_hypers(lr0.size, base._replace(extra={**dict(base.extra), "beta": 0.0}),
                                 learning_rate=lr0, beta=beta)
    out = engine.train_models(objective, hcfg, data, hypers, keys=key, params0=params0, progress=False)
    dtype = data.train.X.dtype
    trace = np.asarray(out.result.trace)[:, :hcfg.max_steps]
    return OnlineRuns(lr0.astype(dtype), beta.astype(dtype), trace[:, -1], np.asarray(out.final["holdout_loss"]),
                      np.asarray(out.result.diverged), trace)
