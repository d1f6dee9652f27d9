"""How a grid of models is laid out: the memory one vmapped model needs (an estimate from
shapes, nothing computed), the devices checked, and the models per compiled chunk. Used by
:mod:`jaxreg.engine` and :mod:`jaxreg.sweeps` (re-exported by the engine)."""
from __future__ import annotations

import math
from typing import Optional

import jax
import numpy as np

from jaxreg import optim, validation
from jaxreg.config import TrainConfig, TrainData
from jaxreg.objective import Objective

__all__ = ["opt_state_copies", "model_bytes", "check_layout", "plan_chunks"]


def opt_state_copies(objective: Objective, config: TrainConfig, n_features: int, extra=()) -> float:
    """Optimiser state size in units of the parameter count (0 SGD, 1 momentum, ≈2 Adam), from
    ``jax.eval_shape`` of the configured optimizer's ``init`` (nothing is computed)."""
    params = jax.eval_shape(lambda: objective.init_params(n_features))
    tx = optim.make_optimizer(config.optimizer, optim.constant(1.0), config.momentum,
                              {k: 0.0 for k in extra})
    state = jax.eval_shape(tx.init, params)
    size = lambda t: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(t))  # noqa: E731
    return size(state) / max(size(params), 1)


def model_bytes(objective: Objective, config: TrainConfig, data: TrainData, extra=()) -> int:
    """Estimated device bytes one vmapped model needs (an upper-bound-minded estimate).

    P = d·C (+ C) parameters held ~9 times (θ, candidate θ, selected/rule/previous copies,
    gradient, update) plus the optimiser state (:func:`opt_state_copies`), twice for the frozen
    copy; per-update activations rows × 3C (scores, residuals) plus, for mini-batches, the
    gathered batch (rows × d) and the n-index permutation; evaluation activations 2C per
    example of every set; the history (10 fields × n_records); all ×2 for XLA temporaries.
    """
    n, d = data.train.X.shape
    C = objective.n_classes
    n_params = d * C + (C if objective.fit_intercept else 0)
    state = n_params * 9 + 2 * opt_state_copies(objective, config, d, extra) * n_params
    rows = {"full_batch": n, "sgd": 1}.get(config.method, config.batch_size)
    full = config.method == "full_batch"  # full batch: X is shared, not gathered per model
    step = rows * (3 * C + (0 if full else d)) + (0 if full else n)
    evals = 2 * C * sum(b.X.shape[0] for b in data if b is not None)
    total = state + max(step, evals) + 10 * config.n_records + 16
    return int(2 * total * np.dtype(data.train.X.dtype).itemsize)


def check_layout(chunk_size, memory_budget, devices):
    """Validated ``(chunk_size or None, devices as a non-empty list)``; ValueError naming the
    argument (an empty device list would abort XLA, not raise)."""
    if chunk_size is not None:
        chunk_size = validation.check_scalar(chunk_size, "chunk_size", low=1, integer=True)
    validation.check_scalar(memory_budget, "memory_budget", low=0, low_inclusive=False)
    if devices is not None and (isinstance(devices, (str, bytes)) or not hasattr(devices, "__iter__")):
        raise ValueError(f"devices must be a list of jax devices (e.g. jax.devices()[:2]), got {devices!r}")
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device (default: jax.devices())")
    bad = [d for d in devices if not isinstance(d, jax.Device)]
    if bad:
        raise ValueError(f"devices must be jax devices (e.g. jax.devices()[:2]), got {bad[0]!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices must not repeat a device, got {devices}")
    return chunk_size, devices


def plan_chunks(objective: Objective, config: TrainConfig, data: TrainData, n_models: int, *,
                chunk_size: Optional[int] = None, memory_budget: float = 2 * 2**30, n_devices: int = 1,
                extra=()) -> tuple[int, int]:
    """``(models per chunk, number of chunks)``: ``chunk_size`` as given, else as many models as
    ``memory_budget`` holds (:func:`model_bytes`, at most ``n_models``); rounded up to a multiple
    of ``n_devices``."""
    c = chunk_size or min(n_models, max(1, int(memory_budget // model_bytes(objective, config, data, extra))))
    c = n_devices * math.ceil(c / n_devices)
    return c, math.ceil(n_models / c)
