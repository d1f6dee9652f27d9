"""The hold-out loss after K updates of the jaxreg trainer, as a pure function of
log-hyperparameters plus its data.

    vl = make_val_loss(objective, config, data, params0, key, horizon=K, hyper_names=("log_lr",))
    loss, aux = vl(log_hyper)                      # = vl.fn(log_hyper, vl.params0, vl.data, vl.key)

``vl.fn`` is an :class:`UnrolledLoss`: a frozen, hashable dataclass (objective, horizon config,
hyperparameter names and base values), so it is a *static* argument of the jitted programs in
:mod:`jaxreg.meta.hypergrad` and :mod:`jaxreg.meta.outer` (jax's own compile cache, nothing held
here); its data ``(params0, data, key)`` are *dynamic* arguments, never closed over, so the
compiled code does not embed the training set as a constant.

The function (``v``: a flat vector of log-hyperparameters, shape ``(n_hyper,)``)::

    L(v) = mean_n ℓ(θ_K(exp v), holdout_n)          (data loss only, no penalty)

with θ_K the weights after exactly K updates (``max_steps``) of
:func:`jaxreg.trainer.make_trainer` from ``params0`` in the fixed batch order of ``key``.
Names: ``log_lr`` (η0), ``log_decay_time`` (T), ``log_l2`` (λ₂), ``log_l1`` (λ₁) and
``log_<name>`` for every ``base.extra[name]`` (a traced optimizer or schedule hyperparameter,
possibly a vector, e.g. per-epoch learning rates: it takes ``size`` entries of ``v``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import remat as jaxreg_remat, tree, validation
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.objective import Objective
from jaxreg.prepare import as_key, check_data, check_hyper, check_params
from jaxreg.trainer import make_trainer

__all__ = ["HYPER_FIELDS", "ValAux", "checkpoint_blocks", "horizon_config", "UnrolledLoss", "ValLoss",
           "make_val_loss"]

#: log-hyperparameter name -> field of :class:`jaxreg.config.Hyper` (``log_<k>``: ``extra[k]``).
HYPER_FIELDS = {"log_lr": "learning_rate", "log_decay_time": "decay_time", "log_l2": "l2", "log_l1": "l1"}


class ValAux(NamedTuple):
    """diverged: the inner run produced a non-finite parameter (it was frozen before it);
    n_updates: updates actually applied (K unless diverged)."""

    diverged: jax.Array
    n_updates: jax.Array


def checkpoint_blocks(n_epochs: int) -> tuple[int, int]:
    """``(eval_every, n_epochs')`` for the √K checkpointing scheme: blocks of ≈√n_epochs epochs.

    A divisor of ``n_epochs`` within a factor 2 of √n_epochs is used when there is one;
    otherwise ``n_epochs`` is padded up to a multiple of ⌈√n_epochs⌉ (the padding epochs are
    frozen by ``max_steps``: at most √n_epochs wasted epochs).
    """
    root = math.sqrt(n_epochs)
    divisors = [b for b in range(1, n_epochs + 1) if n_epochs % b == 0 and root / 2 <= b <= 2 * root]
    if divisors:
        return min(divisors, key=lambda b: abs(b - root)), n_epochs
    block = math.ceil(root)
    return block, -(-n_epochs // block) * block


def horizon_config(config: TrainConfig, n_train: int, horizon: int, *, checkpoint=None) -> TrainConfig:
    """``config`` set up for exactly ``horizon`` updates: max_steps=K, n_epochs=⌈K/steps per
    epoch⌉, no history, no early stopping, no stopping rule. ``checkpoint`` (default
    ``config.remat``): ``True`` / ``"block"``: remat of √-sized blocks of epochs
    (:func:`checkpoint_blocks`); ``"sqrt"`` / ``"log"``: one block, checkpointed at step
    granularity (:mod:`jaxreg.remat`; ``config.remat_segment`` applies); ``False``: none."""
    K = validation.check_scalar(horizon, "horizon", low=1, integer=True)
    spe = config.steps_per_epoch(n_train)
    if spe < 1:
        raise ValueError(f"batch_size ({config.batch_size}) must be <= the number of training examples ({n_train})")
    n_epochs = -(-K // spe)
    remat = config.remat if checkpoint is None else checkpoint
    jaxreg_remat.check_mode(remat)
    remat = True if remat == "block" else remat
    eval_every, n_epochs = checkpoint_blocks(n_epochs) if remat is True else (n_epochs, n_epochs)
    return dataclasses.replace(config, n_epochs=n_epochs, eval_every=eval_every, max_steps=K,
                               record_history=False, early_stopping=None, stop_tol=None, remat=remat)


def _slot(name: str) -> str:
    """Where a log-hyperparameter goes: a Hyper field, or ``"extra.<k>"`` for ``log_<k>``."""
    return HYPER_FIELDS.get(name) or f"extra.{name[len('log_'):]}"


@dataclasses.dataclass(frozen=True)
class UnrolledLoss:
    """``(log_hyper (n_hyper,), params0, data, key) -> (loss, ValAux)``: pure and hashable.

    config: a :func:`horizon_config` (it fixes K); hyper_names: the log-hyperparameters ``v``
    holds, in order; base: ``((name, shape, values), ...)``, every Hyper field and ``extra``
    entry as nested tuples of floats (``extra.<name>`` for extras), so instances hash.
    The computation runs in the dtype of ``params0``.
    """

    objective: Objective
    config: TrainConfig
    hyper_names: tuple
    base: tuple

    def sizes(self) -> tuple:
        shapes = {name: shape for name, shape, _ in self.base}
        return tuple(int(np.prod(shapes[_slot(h)])) for h in self.hyper_names)

    def __call__(self, log_hyper, params0, data: TrainData, key):
        dtype = tree.leaf_dtype(params0)
        log_hyper = jnp.asarray(log_hyper, dtype)
        vals = {name: jnp.asarray(np.reshape(v, shape), dtype) for name, shape, v in self.base}
        shapes = {name: shape for name, shape, _ in self.base}
        start = 0
        for h, size in zip(self.hyper_names, self.sizes()):
            k = _slot(h)
            piece = log_hyper[start] if shapes[k] == () else log_hyper[start:start + size].reshape(shapes[k])
            vals[k] = jnp.exp(piece)
            start += size
        extra = {k[len("extra."):]: v for k, v in vals.items() if k.startswith("extra.")}
        hyper = Hyper(**{f: vals[f] for f in Hyper._fields if f != "extra"}, extra=extra)
        res = make_trainer(self.objective, self.config)(hyper, params0, data, key)
        loss = jnp.mean(self.objective.per_example_loss(res.params, data.holdout))
        return loss, ValAux(res.diverged, res.n_updates)


def _frozen(v):
    a = np.asarray(v, np.float64)
    return a.shape, (a.item() if a.ndim == 0 else tuple(a.ravel().tolist()))


class ValLoss(NamedTuple):
    """An :class:`UnrolledLoss` ``fn`` with its data; ``val_loss(v) -> (loss, ValAux)``.

    ``args = (params0, data, key)`` are what the jitted drivers pass as arguments; calling the
    tuple closes over them (fine for ``jax.grad``/``jax.jvp`` on small data). ``config`` is the
    :func:`horizon_config` actually run; ``train_config`` the one given. ``n_hyper``: the length
    of ``v`` (a vector-valued extra counts its size).
    """

    fn: UnrolledLoss
    params0: Any
    data: TrainData
    key: Any
    horizon: int
    hyper_names: tuple
    n_hyper: int
    dtype: Any
    config: TrainConfig
    train_config: TrainConfig
    base: Hyper
    checkpoint: Any

    @property
    def args(self) -> tuple:
        return (self.params0, self.data, self.key)

    def __call__(self, log_hyper):
        return self.fn(log_hyper, *self.args)

    def replace(self, **changes) -> "ValLoss":
        """A new ValLoss with some :func:`make_val_loss` arguments changed (e.g.
        ``checkpoint=True``, ``horizon=1000``, ``data=...``)."""
        kw = dict(objective=self.fn.objective, config=self.train_config, data=self.data, params0=self.params0,
                  key=self.key, horizon=self.horizon, hyper_names=self.hyper_names, base=self.base,
                  checkpoint=self.checkpoint)
        kw.update(changes)
        return make_val_loss(**kw)

    def as_array(self, log_hyper, name: str = "log_hyper") -> jax.Array:
        """Validated ``(..., n_hyper)`` array of finite log-hyperparameters in this dtype."""
        arr = np.asarray(log_hyper, dtype=np.float64)
        if arr.ndim == 0:
            arr = arr[None]
        if arr.shape[-1] != self.n_hyper:
            raise ValueError(f"{name} must have last dimension {self.n_hyper} ({self.hyper_names}), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr.tolist()}")
        return jnp.asarray(arr, self.dtype)


def make_val_loss(objective: Objective, config: TrainConfig, data: TrainData, params0=None, key=None, *,
                  horizon: int, hyper_names: Sequence[str] = ("log_lr",), base: Hyper = Hyper(),
                  checkpoint=None) -> ValLoss:
    """The hold-out loss after ``horizon`` (K) updates of the jaxreg trainer, as a function of
    the log-hyperparameters ``hyper_names`` (module docstring); the other hyperparameters come
    from ``base``. Returns a :class:`ValLoss`.

    ``config`` gives the method, batch size, optimizer (an alias or any optax factory) and
    schedule; its epochs, evaluation and stopping settings are replaced (:func:`horizon_config`).
    ``checkpoint``: reverse-mode memory (:func:`horizon_config`): ``True`` rematerialises blocks of
    ≈√(epochs) epochs, ``"sqrt"`` segments of ≈√K updates, ``"log"`` recursively.
    ``params0``: initial weights (their dtype sets the precision), default zeros in the dtype of
    ``data.train.X``. ``key``: a ``jax.random`` key or an int seed (default 0), the batch order.

    Raises ValueError naming ``horizon``, ``data`` / ``data.holdout``, ``params0``, ``key``,
    ``hyper_names`` or the field of ``base`` (e.g. a learning rate <= 0).
    """
    check_data(objective, config, data)
    if data.holdout is None:
        raise ValueError("data.holdout is required: the hypergradient differentiates the hold-out loss")
    d = data.train.X.shape[1]
    if params0 is None:
        params0 = objective.init_params(d, dtype=data.train.X.dtype)
    else:  # keep a floating dtype given (float64 starts on float32 data compute in float64)
        given = np.asarray(params0["W"]).dtype if isinstance(params0, dict) and "W" in params0 else None
        dtype = given if given is not None and np.issubdtype(given, np.floating) else data.train.X.dtype
        params0 = check_params(objective, params0, d, dtype, "params0")
    key = as_key(key)
    base = check_hyper(base, config)
    hcfg = horizon_config(config, data.train.X.shape[0], horizon, checkpoint=checkpoint)
    hyper_names = (hyper_names,) if isinstance(hyper_names, str) else tuple(hyper_names)
    known = tuple(HYPER_FIELDS) + tuple(f"log_{k}" for k in sorted(base.extra))
    bad = [h for h in hyper_names if h not in known]
    if not hyper_names or bad or len(set(hyper_names)) != len(hyper_names):
        raise ValueError(f"hyper_names must be distinct names from {known}, got {hyper_names!r}")
    frozen = [(f, *_frozen(getattr(base, f))) for f in Hyper._fields if f != "extra"]
    frozen += [(f"extra.{k}", *_frozen(v)) for k, v in sorted(base.extra.items())]
    fn = UnrolledLoss(objective, hcfg, hyper_names, tuple(frozen))
    return ValLoss(fn, params0, data, key, hcfg.max_steps, hyper_names, sum(fn.sizes()), tree.leaf_dtype(params0),
                   hcfg, config, base, checkpoint)
