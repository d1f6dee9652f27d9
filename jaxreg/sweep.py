"""Hyperparameter sweeps: a whole grid of models trained by one compiled program.

    result = sweep(objective, data, config, {"penalty": ["l1", "l2"], "lam": [0.1, 0.01],
                                             "learning_rate": [0.1, 0.5], "seed": [0, 1]})
    result.history.holdout_acc.shape    # (2, 2, 2, 2, n_records): grid shape + per-model shape
    result.best("holdout_acc")          # index, axis values, final metrics, params

The grid's Cartesian product is flattened into ``n_configs`` configurations and trained by
``jax.jit(jax.vmap(trainer))`` (the trainer of :mod:`jaxreg.train`, the same one ``train`` and
:mod:`jaxreg.meta` use). Continuous axes (``learning_rate``, ``decay_time``, ``lam``/``l2``/``l1``,
and ``penalty``, which only decides whether λ goes to λ₂ or λ₁) and ``seed`` are traced
values. ``batch_size`` changes array shapes, so it is static: configurations are grouped by batch
size and each distinct batch size is one more compiled program; results are reassembled in grid
order. Within a group the flat axis runs in equal chunks (the last padded by repeating its last
configuration), so one program per group serves every chunk; chunk size comes from
:func:`model_bytes` and ``memory_budget`` unless ``chunk_size`` is given.

Randomness: ``key`` (default ``PRNGKey(0)``) is every model's key without a ``seed`` axis (so all
models see the same shuffles and initial weights); with one, model ``s`` uses
``fold_in(key, s)``. As in :func:`jaxreg.train.train`, initial weights are ``N(0, init_scale²)``
from ``fold_in(model_key, 1)`` (zeros when ``init_scale == 0``), unless ``init_params`` (shared
by all models) is given. So a member equals ``train(..., key=fold_in(key, s))``.

Devices: the flat axis is sharded over ``Mesh(devices, ("grid",))`` with
``NamedSharding(mesh, P("grid"))`` (chunks are a multiple of the device count); the data are
replicated (``P()``). Across hosts the same code runs unchanged on every process after
``jax.distributed.initialize()``: ``jax.devices()`` is then the global device list, the mesh is
global, and every input is built with ``jax.make_array_from_callback`` so each process feeds only
its addressable shards from the (identical) host-side grid and data (for per-host data shards
use ``jax.make_array_from_process_local_data``); outputs are gathered with
``multihost_utils.process_allgather`` so every process gets the full :class:`SweepResult`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxreg import validation
from jaxreg.objective import Objective
from jaxreg.progress import ProgressBar
from jaxreg.sweep_grid import AXES, expand_grid, hyper_of, model_bytes  # noqa: F401 (re-exported)
from jaxreg.train import (Hyper, TrainConfig, TrainData, TrainResult, check_hyper, evaluate,
                          make_trainer)

SETS = ("train", "holdout", "test")
METRICS = tuple(f"{s}_{m}" for s in SETS for m in ("loss", "acc"))


class Best(NamedTuple):
    """The selected configuration: grid ``index``, ``flat_index``, its axis values (``config``),
    its final metrics at the selected weights (``metrics``: train/holdout/test loss and acc) and
    those weights (``params``, NumPy)."""

    index: tuple
    flat_index: int
    config: dict
    metrics: dict
    params: dict


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Outputs of :func:`sweep`, as NumPy arrays.

    axes, values: the grid's axis names and values (``shape = tuple(map(len, values))``).
    flat: a :class:`TrainResult` whose every leaf has a leading ``(n_configs,)`` axis, in grid
      (C) order; ``configs[i]`` is the ``{axis: value}`` of flat entry ``i``.
    final: ``{"train_loss", ..., "test_acc"}`` -> ``(n_configs,)``: mean data loss and accuracy of
      the early-stopping-selected weights on each set (NaN for a set not given).
    The grid-shaped views (``result``, ``history``, ``params``, ``diverged``, ...) reshape the
    leading axis to ``shape``, e.g. ``history.holdout_acc: shape + (n_records,)``.
    """

    axes: tuple
    values: tuple
    flat: TrainResult
    final: dict
    configs: tuple
    chunk_sizes: dict  # batch size (None: config's) -> (chunk_size, n_chunks)

    @property
    def shape(self) -> tuple:
        return tuple(len(v) for v in self.values)

    def grid(self, tree):
        """Reshape the leading ``(n_configs,)`` axis of every leaf of ``tree`` to ``shape``."""
        return jax.tree_util.tree_map(lambda a: a.reshape(self.shape + a.shape[1:]), tree)

    result = property(lambda self: self.grid(self.flat))
    history = property(lambda self: self.grid(self.flat.history))
    params = property(lambda self: self.grid(self.flat.params))
    diverged = property(lambda self: self.grid(self.flat.diverged))
    stopped = property(lambda self: self.grid(self.flat.stopped))
    stop_epoch = property(lambda self: self.grid(self.flat.stop_epoch))
    n_updates = property(lambda self: self.grid(self.flat.n_updates))

    def metric(self, name: str) -> np.ndarray:
        """A final metric (e.g. ``"holdout_acc"``), grid-shaped."""
        return self.grid(self.final[name])

    def best(self, metric: str = "holdout_acc") -> Best:
        """The configuration with the highest hold-out accuracy (``*_acc``) or lowest loss
        (``*_loss``); diverged models and NaN scores are never chosen; ties go to the first in
        grid order."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        score = np.asarray(self.final[metric], np.float64)
        ok = ~np.asarray(self.flat.diverged) & np.isfinite(score)
        if not ok.any():
            raise ValueError(f"no configuration has a finite {metric!r} without diverging")
        score = np.where(ok, score if metric.endswith("acc") else -score, -np.inf)
        i = int(np.argmax(score))
        return Best(index=tuple(int(j) for j in np.unravel_index(i, self.shape)), flat_index=i, config=dict(self.configs[i]),
                    metrics={k: float(v[i]) for k, v in self.final.items()},
                    params=jax.tree_util.tree_map(lambda a: a[i], self.flat.params))


@functools.lru_cache(maxsize=32)
def _program(objective: Objective, config: TrainConfig, init_scale: float, shared_init: bool,
             seeded: bool):
    """jit(vmap(one model)): (hyper (N,), seeds (N,), key, data, params0) -> (TrainResult, final)."""
    trainer = make_trainer(objective, config)

    def one(hyper, seed, key, data, params0):
        k = jax.random.fold_in(key, seed) if seeded else key
        dtype = data.train.X.dtype
        if not shared_init:
            params0 = objective.init_params(data.train.X.shape[1], jax.random.fold_in(k, 1),
                                            init_scale, dtype)
        res = trainer(hyper, params0, data, k)
        final = {}
        for name, batch in zip(SETS, data):
            loss, acc = evaluate(objective, res.params, batch)
            final[f"{name}_loss"], final[f"{name}_acc"] = jnp.asarray(loss, dtype), jnp.asarray(acc, dtype)
        return res, final

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, None)))


def _put(x, sharding):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def _to_host(x):
    if x.is_fully_addressable:
        return np.asarray(x)
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def sweep(objective: Objective, data: TrainData, config: TrainConfig, grid: Mapping[str, Sequence],
          *, hyper: Hyper = Hyper(), key=None, init_params: Any = None, init_scale: float = 0.0,
          seeds: Optional[Sequence[int]] = None, chunk_size: Optional[int] = None,
          memory_budget: float = 2 * 2**30, devices=None, progress=None) -> SweepResult:
    """Train every configuration of ``grid`` (see the module docstring); returns a SweepResult.

    objective, config: as for :func:`jaxreg.train.train`; data: a :class:`TrainData` from
      :func:`jaxreg.train.prepare_data`.
    grid: ``{axis: values}`` over ``AXES``; ``penalty`` ("l1"/"l2"/"none") with ``lam`` (λ), or
      ``l2``/``l1`` directly. A ``batch_size`` axis runs ``method="minibatch"`` with that size
      (1 = per-example SGD), one compiled program per distinct size.
    hyper: values of the hyperparameters the grid does not sweep. seeds: shorthand for a
      trailing ``seed`` axis. key, init_params, init_scale: see the module docstring.
    chunk_size: models per compiled call (default: ``memory_budget // model_bytes``, bytes).
    devices: the devices to shard the grid over (default ``jax.devices()``).
    progress: a bar over chunks on stderr: None = only on a terminal, True/False = on/off.
    Raises ValueError (before compiling) naming the bad axis and value.
    """
    if not isinstance(data, TrainData):
        raise ValueError(f"data must be a TrainData (see prepare_data), got {type(data).__name__}")
    if seeds is not None:
        if "seed" in grid:
            raise ValueError("give the seed axis either in grid or as seeds=, not both")
        grid = {**grid, "seed": seeds}
    n_train = data.train.X.shape[0]
    axes, values, configs = expand_grid(grid, n_train)
    base = check_hyper(hyper)
    hypers = [check_hyper(hyper_of(c, base)) for c in configs]  # names the field if invalid
    if config.early_stopping is not None and data.holdout is None:
        raise ValueError(f"early_stopping={config.early_stopping!r} needs a hold-out set (data.holdout)")
    if "batch_size" not in axes and config.method == "minibatch" and config.batch_size > n_train:
        raise ValueError(f"batch_size ({config.batch_size}) must be <= the number of training "
                         f"examples ({n_train})")
    if chunk_size is not None:
        chunk_size = validation.check_scalar(chunk_size, "chunk_size", low=1, integer=True)
    validation.check_scalar(memory_budget, "memory_budget", low=0, low_inclusive=False)

    devices = list(jax.devices() if devices is None else devices)
    mesh = Mesh(np.asarray(devices), ("grid",))
    shard, replicated = NamedSharding(mesh, P("grid")), NamedSharding(mesh, P())
    dtype = data.train.X.dtype
    key = jax.random.PRNGKey(0) if key is None else key
    data_dev = jax.tree_util.tree_map(lambda a: _put(a, replicated), data)
    params0 = None if init_params is None else jax.tree_util.tree_map(
        lambda a: _put(np.asarray(a, dtype), replicated), init_params)

    groups = {}  # batch size -> flat indices, in grid order
    for i, c in enumerate(configs):
        groups.setdefault(c.get("batch_size"), []).append(i)
    plans = []
    for bs, idx in groups.items():
        cfg = config if bs is None else dataclasses.replace(config, method="minibatch", batch_size=bs)
        # explicit chunk_size: used as given (padded); automatic: no larger than the group
        c = chunk_size or min(len(idx), max(1, int(memory_budget // model_bytes(objective, cfg, data))))
        c = len(devices) * math.ceil(c / len(devices))
        plans.append((bs, cfg, np.asarray(idx), c, math.ceil(len(idx) / c)))
    bar = ProgressBar(sum(p[-1] for p in plans), enabled=progress)
    done, order, outputs = 0, [], []
    for bs, cfg, idx, c, n_chunks in plans:
        program = _program(objective, cfg, float(init_scale), init_params is not None, "seed" in axes)
        padded = np.concatenate([idx, np.full(n_chunks * c - len(idx), idx[-1])])
        for start in range(0, len(padded), c):
            members = padded[start:start + c]
            h = Hyper(*(_put(np.asarray([hypers[m][f] for m in members], dtype), shard)
                        for f in range(4)))
            s = _put(np.asarray([configs[m].get("seed", 0) for m in members], np.uint32), shard)
            out = jax.tree_util.tree_map(_to_host, program(h, s, key, data_dev, params0))
            keep = min(c, len(idx) - start)
            outputs.append(jax.tree_util.tree_map(lambda a: a[:keep], out))
            order.append(members[:keep])
            done += 1
            bar.update(done)
    inverse = np.argsort(np.concatenate(order), kind="stable")
    flat, final = jax.tree_util.tree_map(lambda *a: np.concatenate(a)[inverse], *outputs)
    return SweepResult(axes=axes, values=values, flat=flat, final=final, configs=configs,
                       chunk_sizes={p[0]: (p[3], p[4]) for p in plans})
