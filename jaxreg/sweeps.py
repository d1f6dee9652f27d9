"""Hyperparameter sweeps: a whole grid of models trained by one compiled program.

    result = sweep(objective, data, config, {"penalty": ["l1", "l2"], "lam": [0.1, 0.01],
                                             "learning_rate": [0.1, 0.5], "seed": [0, 1]})
    result.history.holdout_acc.shape    # (2, 2, 2, 2, n_records): grid shape + per-model shape
    result.best("holdout_acc")          # index, axis values, final metrics, params

The grid's Cartesian product is flattened into ``n_configs`` configurations, stacked into one
:class:`~jaxreg.config.Hyper` of per-model arrays and trained by the grid engine
(:func:`jaxreg.engine.train_models`: ``jax.jit(jax.vmap(trainer))`` of the trainer ``train`` and
:mod:`jaxreg.meta` use). Continuous axes (``learning_rate``, ``decay_time``, ``lam``/``l2``/``l1``,
``penalty``, which only decides whether λ goes to λ₂ or λ₁, ``init_scale`` and the names of
``hyper.extra``) and ``seed`` are traced values. ``batch_size`` changes array shapes, so it is
static: configurations are grouped by batch size and each distinct batch size is one more
compiled program; results are reassembled in grid order. Within a group the engine runs the flat axis in equal chunks (the last padded by repeating
its last configuration), so one program per group serves every chunk; chunk size comes from
:func:`jaxreg.engine.model_bytes` and ``memory_budget`` unless ``chunk_size`` is given.

Randomness: ``key`` (default ``PRNGKey(0)``) is every model's key without a ``seed`` axis (so all
models see the same shuffles and initial weights); with one, model ``s`` uses
``fold_in(key, s)``. As in :func:`jaxreg.trainer.train`, initial weights are ``N(0, init_scale²)``
from ``fold_in(model_key, 1)`` (zeros when ``init_scale == 0``; ``init_scale`` may be an axis),
unless ``init_params`` (shared by all models) is given. So a member equals
``train(..., key=fold_in(key, s))``. Devices and processes: see :mod:`jaxreg.engine`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import jax
import numpy as np

from jaxreg import checkpoint, engine, tidy
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.engine import METRICS
from jaxreg.layout import model_bytes
from jaxreg.folds import check_folds, merge_fold, smallest_training_rows, train_masks
from jaxreg.objective import Objective
from jaxreg.prepare import as_key, check_data, check_hyper
from jaxreg.progress import ProgressBar
from jaxreg.sweep_grid import AXES, FOLD, expand_grid, hyper_of, with_folds  # noqa: F401 (re-exported)
from jaxreg.batching import epoch_rows_for
from jaxreg.trainer import TrainResult

__all__ = ["Best", "SweepResult", "sweep"]



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
    foldid: Optional[np.ndarray] = None  # (n_train,) fold of each training row (sweeps with folds)

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

    def where(self, **axis_values) -> np.ndarray:
        """A ``(n_configs,)`` mask of the configurations whose axis values match: ``axis=value``
        or ``axis=[values]`` (any of them), e.g. ``where(penalty="l1", lam=[0.1, 0.01])``."""
        mask = np.ones(len(self.configs), bool)
        for axis, want in axis_values.items():
            if axis not in self.axes:
                raise ValueError(f"unknown axis {axis!r}; this sweep's axes are {self.axes}")
            want = tuple(want) if isinstance(want, (list, tuple, np.ndarray)) else (want,)
            mask &= np.asarray([c[axis] in want for c in self.configs])
        return mask

    def records(self, columns: Optional[Sequence] = None) -> list:
        """The tidy table: one dict per configuration, in grid order, of Python scalars.

        columns: names, each an axis, an outcome (``"stop_epoch"``, ``"stopped"``,
        ``"diverged"``, ``"n_updates"``) or a final metric (``"holdout_acc"``, ...), or
        ``(key, name)`` pairs to store ``name`` under ``key``. Default: the axes, the four
        outcomes and every final metric.
        """
        outcomes = ("stop_epoch", "stopped", "diverged", "n_updates")
        columns = columns or (*self.axes, *outcomes, *self.final)
        picks = []
        for col in columns:
            key, name = (col, col) if isinstance(col, str) else col
            if name in self.axes:
                get = lambda i, name=name: self.configs[i][name]  # noqa: E731
            elif name in outcomes or name in self.final:
                arr = np.asarray(getattr(self.flat, name) if name in outcomes else self.final[name])
                get = lambda i, arr=arr: arr[i].item()  # noqa: E731
            else:
                raise ValueError(f"unknown column {name!r}; columns are the axes {self.axes}, "
                                 f"{outcomes} and the metrics {tuple(self.final)}")
            picks.append((key, get))
        return [{key: get(i) for key, get in picks} for i in range(len(self.configs))]

    def to_records(self, columns: Optional[Sequence] = None) -> list:
        """The tidy table (:meth:`records`): one row per grid point (and per fold)."""
        return self.records(columns)

    def to_csv(self, path, columns: Optional[Sequence] = None) -> str:
        """:meth:`to_records` written to ``path`` as CSV (atomically; standard library only)."""
        return tidy.write_csv(self.records(columns), path)

    def to_dataframe(self, columns: Optional[Sequence] = None):
        """:meth:`to_records` as a ``pandas.DataFrame`` (needs pandas)."""
        return tidy.dataframe(self.records(columns))

    def best(self, metric: str = "holdout_acc", **axis_values) -> Best:
        """The configuration with the highest hold-out accuracy (``*_acc``) or lowest loss
        (``*_loss``) among those matching ``axis_values`` (see :meth:`where`; default all);
        diverged models and NaN scores are never chosen; ties go to the first in grid order."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        score = np.asarray(self.final[metric], np.float64)
        ok = ~np.asarray(self.flat.diverged) & np.isfinite(score) & self.where(**axis_values)
        if not ok.any():
            raise ValueError(f"no configuration{' matching ' + str(axis_values) if axis_values else ''} "
                             f"has a finite {metric!r} without diverging")
        score = np.where(ok, score if metric.endswith("acc") else -score, -np.inf)
        i = int(np.argmax(score))
        return Best(index=tuple(int(j) for j in np.unravel_index(i, self.shape)), flat_index=i, config=dict(self.configs[i]),
                    metrics={k: float(v[i]) for k, v in self.final.items()},
                    params=jax.tree_util.tree_map(lambda a: a[i], self.flat.params))


def sweep(objective: Objective, data: TrainData, config: TrainConfig, grid: Mapping[str, Sequence],
          *, hyper: Hyper = Hyper(), key=None, init_params: Any = None, init_scale: float = 0.0,
          seeds: Optional[Sequence[int]] = None, folds=None, fold_key=None, chunk_size: Optional[int] = None,
          memory_budget: float = 2 * 2**30, devices=None, progress=None, checkpoint_dir=None,
          keep_history: bool = True) -> SweepResult:
    """Train every configuration of ``grid`` (see the module docstring); returns a SweepResult.

    objective, config: as for :func:`jaxreg.trainer.train`; data: a :class:`TrainData` from
      :func:`jaxreg.trainer.prepare_data`.
    grid: ``{axis: values}`` over ``AXES``; ``penalty`` ("l1"/"l2"/"none") with ``lam`` (λ), or
      ``l2``/``l1`` directly. A ``batch_size`` axis runs ``method="minibatch"`` with that size
      (1 = per-example SGD), one compiled program per distinct size.
    hyper: values of the hyperparameters the grid does not sweep. seeds: shorthand for a
      trailing ``seed`` axis. key, init_params, init_scale: see the module docstring.
    folds: K-fold cross-validation in the same program: an int K (stratified for classifiers,
      drawn from ``fold_key``, default ``PRNGKey(0)``) or one fold id per training row
      (:func:`jaxreg.folds.check_folds`). Adds a trailing ``fold`` axis; each model trains on
      its fold's training rows (a 0/1 weight mask) and its ``holdout_*`` metrics are those of
      the held-out rows (``data.holdout`` must then be None; ``data.test`` stays a test set).
      Summaries and selection: :mod:`jaxreg.cv`.
    chunk_size: models per compiled call (default: ``memory_budget // model_bytes``, bytes).
    devices: the devices to shard the grid over (default ``jax.devices()``).
    progress: a bar on stderr (models done, rate, time left): None = only on a terminal,
      True/False = on/off.
    checkpoint_dir: a folder for finished chunks: a rerun of the same call skips them and
      returns the same result; a folder written for another objective, config, grid, data or
      key is refused (ValueError naming what differs). See :mod:`jaxreg.checkpoint`.
    keep_history: False keeps only the final metrics and outcomes (``history`` is None), so a
      huge grid's result stays small.
    Raises ValueError (before compiling) naming the bad axis and value.
    """
    # the batch size is checked per batch-size group below; with folds the hold-out is each fold's
    if folds is not None and data.holdout is not None:
        raise ValueError("data.holdout must be None with folds: each fold's held-out rows are its hold-out set "
                         "(keep a separate evaluation set in data.test)")
    engine_data = data if folds is None or not config.needs_holdout else data._replace(holdout=data.train)
    check_data(objective, dataclasses.replace(config, method="full_batch") if "batch_size" in grid else config,
               engine_data)
    if seeds is not None:
        if "seed" in grid:
            raise ValueError("give the seed axis either in grid or as seeds=, not both")
        grid = {**grid, "seed": seeds}
    n_train = data.train.X.shape[0]
    dtype = data.train.X.dtype
    base = check_hyper(hyper, config, dtype)
    axes, values, configs = expand_grid(grid, n_train, tuple(base.extra))
    foldid, masks, merge = None, None, None
    if folds is not None:
        foldid, n_folds = check_folds(folds, n_train, y=np.asarray(data.train.y), classifier=objective.is_classifier,
                                      weight=data.train.weight, key=fold_key)
        axes, values, configs = with_folds(axes, values, configs, n_folds)
        masks, merge = train_masks(foldid, n_folds), merge_fold
    hypers = [check_hyper(hyper_of(c, base), config, dtype) for c in configs]  # names the field if invalid
    chunk_size, devices = engine.check_layout(chunk_size, memory_budget, devices)
    n_devices = engine.model_mesh(data, devices).shape["grid"]
    key = as_key(key)
    folder = None if checkpoint_dir is None else _checkpoint_folder(
        checkpoint_dir, objective, config, data, (axes, values), base, key, init_params, init_scale, keep_history,
        foldid)

    groups = {}  # batch size -> flat indices, in grid order
    for i, c in enumerate(configs):
        groups.setdefault(c.get("batch_size"), []).append(i)
    plans = []
    for bs, idx in groups.items():
        cfg = config if bs is None else dataclasses.replace(config, method="minibatch", batch_size=bs)
        if foldid is not None and cfg.method != "full_batch" and cfg.epoch_rows is None:
            cfg = dataclasses.replace(cfg, epoch_rows=smallest_training_rows(foldid, masks.shape[0], data.train.weight))
        cfg = epoch_rows_for(cfg, data)
        check_data(objective, cfg, engine_data)
        c, n_chunks = engine.plan_chunks(objective, cfg, data, len(idx), chunk_size=chunk_size,
                                         memory_budget=memory_budget, n_devices=n_devices,
                                         extra=tuple(sorted(base.extra)))
        plans.append((bs, cfg, idx, c, n_chunks))
    bar = ProgressBar(len(configs), unit="models", enabled=progress if jax.process_index() == 0 else False)
    order, outputs = [], []
    for bs, cfg, idx, c, _ in plans:
        stacked = engine.stack_hypers(len(idx), base, **{
            f: [getattr(hypers[m], f) for m in idx] for f in ("learning_rate", "decay_time", "l2", "l1")},
            **{k: [hypers[m].extra[k] for m in idx] for k in base.extra})
        keys = key
        if "seed" in axes:
            seeds_ = np.asarray([configs[m]["seed"] for m in idx], np.uint32)
            keys = jax.vmap(jax.random.fold_in, (None, 0))(key, seeds_)
        scale = (np.asarray([configs[m]["init_scale"] for m in idx]) if "init_scale" in axes
                 else float(init_scale))
        fold_data = None if masks is None else masks[[configs[m][FOLD] for m in idx]]
        out = engine.train_models(objective, cfg, engine_data, stacked, keys=keys, params0=init_params,
                                  init_scale=scale, model_data=fold_data, merge_data=merge, chunk_size=c,
                                  devices=devices, progress=bar,
                                  checkpoint_dir=None if folder is None else folder / f"batch_size-{bs}",
                                  keep_history=keep_history)
        outputs.append((out.result, out.final))
        order.append(np.asarray(idx))
    inverse = np.argsort(np.concatenate(order), kind="stable")
    if len(outputs) == 1 and np.array_equal(inverse, np.arange(len(inverse))):
        flat, final = outputs[0]  # one group, already in grid order: no copy of a huge grid's result
    else:
        flat, final = jax.tree_util.tree_map(lambda *a: np.concatenate(a)[inverse], *outputs)
    return SweepResult(axes=axes, values=values, flat=flat, final=final, configs=configs,
                       chunk_sizes={p[0]: (p[3], p[4]) for p in plans}, foldid=foldid)


def _checkpoint_folder(directory, objective, config, data, grid, base, key, init_params, init_scale, keep_history,
                       foldid):
    """``directory`` after checking its ``manifest.json`` against this sweep (ValueError naming
    the parts that differ: objective, config, grid, data, ...); each batch-size group keeps its
    chunks in a subfolder (the engine's own manifest keys them by every engine input)."""
    parts = checkpoint.fingerprints(data, objective=objective, config=config, grid=grid, hyper=base, key=key,
                                    init_params=init_params, init_scale=init_scale, keep_history=keep_history,
                                    folds=foldid)
    checkpoint.ChunkStore(directory, parts, {}, writer=jax.process_index() == 0).open()
    return Path(directory)
