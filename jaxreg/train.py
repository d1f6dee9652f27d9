"""Trainers for one model: full-batch GD, mini-batch GD and per-example SGD, as ``lax.scan``.

``make_trainer(objective, config)`` returns the pure function

    trainer(hyper, params0, data, key) -> TrainResult

that :mod:`jaxreg.sweep` vmaps over a grid and :mod:`jaxreg.meta` differentiates. ``train`` is
the validated, jitted entry point for a single model.

The scan runs over *records*: each record is ``eval_every`` epochs of updates followed by one
evaluation (loss and accuracy on train, hold-out and test) and one early-stopping decision. A
model that stops (early stopping, the SGD stopping rule, ``max_steps``) or diverges (a
non-finite parameter) is frozen: its parameters and optimiser state stop changing while the
other members of a vmapped grid go on.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import validation
from jaxreg.objective import Batch, Objective, Penalty
from jaxreg.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

METHODS = ("full_batch", "minibatch", "sgd")
EARLY_STOPPING = (None, "logistic_paper", "softmax_paper", "patience")


class Hyper(NamedTuple):
    """Continuous hyperparameters: traced, so they can be vmapped and differentiated.

    learning_rate: η0; decay_time: T of η(t) = η0/(1 + t/T) (ignored by the constant schedule);
    l2, l1: λ₂ and λ₁ of the penalty (λ₂/2)‖W‖² + λ₁‖W‖₁.
    """

    learning_rate: jax.Array | float = 0.1
    decay_time: jax.Array | float = 1.0
    l2: jax.Array | float = 0.0
    l1: jax.Array | float = 0.0

    @property
    def penalty(self) -> Penalty:
        return Penalty(l2=self.l2, l1=self.l1)


class TrainData(NamedTuple):
    """Training set and optional hold-out and test sets, each a :class:`Batch` ``(X, y)``."""

    train: Batch
    holdout: Optional[Batch] = None
    test: Optional[Batch] = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Discrete (static) training choices; one compiled program per distinct config.

    method: ``"full_batch"`` (one update per epoch), ``"minibatch"`` (``batch_size`` examples per
      update, reshuffled each epoch from the key, remainder dropped as in the paper's code) or
      ``"sgd"`` (one example per update, reshuffled each epoch).
    n_epochs: epochs to run; eval_every: epochs between evaluations (must divide n_epochs).
    optimizer: ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``; schedule: ``"constant"`` or
      ``"inverse_time"`` (η0/(1 + epoch/T), per epoch as in the paper).
    early_stopping: ``None``; ``"logistic_paper"`` (stop when hold-out accuracy drops, return the
      weights from two evaluations earlier; seed 003 §6.1, from the 4th evaluation on);
      ``"softmax_paper"`` (stop after ``patience`` consecutive evaluations below the last
      non-decreasing hold-out accuracy, return the best-hold-out-accuracy weights; seed 003 §3.2);
      ``"patience"`` (stop when the hold-out loss has not improved by ``min_delta`` for
      ``patience`` evaluations; return the best-hold-out-loss weights).
    stop_tol: seed 000's SGD stopping rule: every ``check_every`` updates, stop when
      ‖θ − θ_{check_every updates ago}‖ < stop_tol.
    max_steps: freeze after this many updates (the horizon K of :mod:`jaxreg.meta`).
    record_history: evaluate metrics at each record (False skips the extra forward passes).
    grad: ``"closed_form"`` (the derived gradients of grads.py) or ``"autodiff"`` (jax.grad).
    remat: wrap each record's block of epochs in ``jax.checkpoint`` (reverse-mode memory
      O(records + eval_every) instead of O(updates)).
    """

    method: str = "full_batch"
    n_epochs: int = 100
    batch_size: Optional[int] = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    schedule: str = "constant"
    eval_every: int = 1
    early_stopping: Optional[str] = None
    patience: int = 5
    min_delta: float = 0.0
    stop_tol: Optional[float] = None
    check_every: int = 20
    max_steps: Optional[int] = None
    record_history: bool = True
    grad: str = "closed_form"
    remat: bool = False

    def __post_init__(self):
        def choice(name, options):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}")

        choice("method", METHODS)
        choice("optimizer", OPTIMIZERS)
        choice("schedule", SCHEDULES)
        choice("early_stopping", EARLY_STOPPING)
        choice("grad", ("closed_form", "autodiff"))
        validation.check_scalar(self.n_epochs, "n_epochs", low=1, integer=True)
        validation.check_scalar(self.eval_every, "eval_every", low=1, integer=True)
        if self.n_epochs % self.eval_every:
            raise ValueError(f"eval_every ({self.eval_every}) must divide n_epochs ({self.n_epochs})")
        if self.method == "minibatch":
            if self.batch_size is None:
                raise ValueError("batch_size is required for method='minibatch'")
            validation.check_scalar(self.batch_size, "batch_size", low=1, integer=True)
        validation.check_scalar(self.patience, "patience", low=1, integer=True)
        validation.check_scalar(self.min_delta, "min_delta", low=0)
        validation.check_scalar(self.check_every, "check_every", low=1, integer=True)
        if self.stop_tol is not None:
            validation.check_scalar(self.stop_tol, "stop_tol", low=0, low_inclusive=False)
        if self.max_steps is not None:
            validation.check_scalar(self.max_steps, "max_steps", low=1, integer=True)

    @property
    def n_records(self) -> int:
        return self.n_epochs // self.eval_every

    def steps_per_epoch(self, n_train: int) -> int:
        if self.method == "full_batch":
            return 1
        if self.method == "sgd":
            return n_train
        return n_train // self.batch_size


class History(NamedTuple):
    """Metrics at each record, each ``(n_records,)``; losses are mean per-example data losses
    (no penalty) so sets of different sizes compare; accuracies are fractions (NaN for
    regression, NaN for a set that was not given)."""

    epoch: jax.Array
    learning_rate: jax.Array
    objective: jax.Array
    train_loss: jax.Array
    train_acc: jax.Array
    holdout_loss: jax.Array
    holdout_acc: jax.Array
    test_loss: jax.Array
    test_acc: jax.Array
    active: jax.Array


class TrainResult(NamedTuple):
    """params: the selected weights (early stopping's choice, else the last); last_params: the
    weights when training ended; stop_epoch: epochs run before stopping (n_epochs if never);
    stopped / diverged: bools; n_updates: parameter updates applied."""

    params: dict
    last_params: dict
    history: History
    stop_epoch: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    n_updates: jax.Array


def epoch_permutation(key, epoch, n: int):
    """The shuffle of epoch ``epoch``: ``permutation(fold_in(fold_in(key, 0), epoch), n)``.

    Initial weights use ``fold_in(key, 1)`` (see :func:`train`); the extra ``fold_in(key, 0)``
    keeps the two streams apart for every epoch.
    """
    return jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 0), epoch), n)


def _select(cond, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)


def _all_finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def _tree_norm(tree):
    return jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree_util.tree_leaves(tree)))


def evaluate(objective: Objective, params, batch: Optional[Batch]):
    """(mean per-example data loss, accuracy) on ``batch``; NaNs when the batch is None."""
    if batch is None:
        return jnp.nan, jnp.nan
    loss = jnp.mean(objective.per_example_loss(params, batch))
    acc = objective.accuracy(params, batch) if objective.is_classifier else jnp.nan
    return loss, acc


class _State(NamedTuple):
    params: dict
    opt_state: optax.OptState
    n_updates: jax.Array
    active: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    stop_epoch: jax.Array
    ref_params: dict  # SGD stopping rule: θ at the last multiple of check_every updates
    selected: dict  # early stopping's current choice
    best_score: jax.Array
    last_score: jax.Array
    bad_count: jax.Array
    prev_params: dict
    prevprev_params: dict
    prev_acc: jax.Array
    n_evals: jax.Array


def make_trainer(objective: Objective, config: TrainConfig):
    """The pure trainer ``(hyper, params0, data, key) -> TrainResult`` for one model.

    hyper: :class:`Hyper` (scalars); params0: a params pytree (``objective.init_params``);
    data: :class:`TrainData`; key: a ``jax.random`` key (shuffling order). Not jitted: wrap it
    in ``jax.jit``, ``jax.vmap``, ``jax.grad`` or ``jax.jvp`` as needed.
    """
    grad_fn = objective.grad if config.grad == "closed_form" else jax.grad(objective.value)

    def trainer(hyper: Hyper, params0, data: TrainData, key) -> TrainResult:
        X, y = data.train
        n = X.shape[0]
        spe = config.steps_per_epoch(n)
        schedule = make_schedule(config.schedule, hyper.learning_rate, hyper.decay_time, spe)
        opt = make_optimizer(config.optimizer, schedule, config.momentum)
        pen = hyper.penalty
        max_steps = config.max_steps if config.max_steps is not None else np.iinfo(np.int32).max
        dtype = jax.tree_util.tree_leaves(params0)[0].dtype

        def update(state: _State, batch: Batch, epoch):
            g = grad_fn(state.params, pen, batch)
            updates, opt_state = opt.update(g, state.opt_state, state.params)
            new_params = optax.apply_updates(state.params, updates)
            live = state.active & (state.n_updates < max_steps)
            finite = _all_finite(new_params)
            take = live & finite
            diverged = state.diverged | (live & ~finite)
            n_updates = state.n_updates + take.astype(jnp.int32)
            params = _select(take, new_params, state.params)
            state = state._replace(
                params=params, opt_state=_select(take, opt_state, state.opt_state),
                n_updates=n_updates, diverged=diverged, active=state.active & ~diverged)
            if config.stop_tol is not None:
                at_check = take & (n_updates % config.check_every == 0)
                converged = at_check & (_tree_norm(jax.tree_util.tree_map(
                    jnp.subtract, params, state.ref_params)) < config.stop_tol)
                state = state._replace(
                    ref_params=_select(at_check, params, state.ref_params),
                    stopped=state.stopped | converged, active=state.active & ~converged,
                    stop_epoch=jnp.where(converged, epoch + 1, state.stop_epoch).astype(jnp.int32))
            return state

        def run_epoch(state: _State, epoch):
            if config.method == "full_batch":
                return update(state, data.train, epoch)
            bs = 1 if config.method == "sgd" else config.batch_size
            perm = epoch_permutation(key, epoch, n)

            def body(s, i):
                idx = jax.lax.dynamic_slice_in_dim(perm, i * bs, bs)
                return update(s, Batch(X[idx], y[idx]), epoch), None

            state, _ = jax.lax.scan(body, state, jnp.arange(spe))
            return state

        def run_block(state: _State, first_epoch):
            def body(s, e):
                return run_epoch(s, first_epoch + e), None

            state, _ = jax.lax.scan(body, state, jnp.arange(config.eval_every))
            return state

        if config.remat:
            run_block = jax.checkpoint(run_block)

        def early_stop(state: _State, epoch, h_loss, h_acc):
            rule = config.early_stopping
            if rule is None:
                return state._replace(selected=state.params)
            can = state.active
            if rule == "logistic_paper":
                drop = can & (state.n_evals >= 3) & (h_acc < state.prev_acc)
                state = state._replace(
                    # once stopped (or diverged), keep the choice: do not fall back to the last θ
                    selected=_select(drop, state.prevprev_params,
                                     _select(can, state.params, state.selected)),
                    prevprev_params=_select(can, state.prev_params, state.prevprev_params),
                    prev_params=_select(can, state.params, state.prev_params),
                    prev_acc=jnp.where(can, h_acc, state.prev_acc))
                stop = drop
            elif rule == "softmax_paper":
                better = can & (h_acc > state.best_score)
                falling = h_acc < state.last_score
                bad = jnp.where(falling, state.bad_count + 1, 0)
                state = state._replace(
                    selected=_select(better, state.params, state.selected),
                    best_score=jnp.where(better, h_acc, state.best_score),
                    last_score=jnp.where(can & ~falling, h_acc, state.last_score),
                    bad_count=jnp.where(can, bad, state.bad_count))
                stop = can & (state.bad_count >= config.patience)
            else:  # patience on the hold-out loss
                better = can & (h_loss < -state.best_score - config.min_delta)
                state = state._replace(
                    selected=_select(better, state.params, state.selected),
                    best_score=jnp.where(better, -h_loss, state.best_score),
                    bad_count=jnp.where(can, jnp.where(better, 0, state.bad_count + 1), state.bad_count))
                stop = can & (state.bad_count >= config.patience)
            return state._replace(
                stopped=state.stopped | stop, active=state.active & ~stop,
                stop_epoch=jnp.where(stop, epoch, state.stop_epoch).astype(jnp.int32),
                n_evals=state.n_evals + can.astype(jnp.int32))

        def record(state: _State, r):
            first = r * config.eval_every
            state = run_block(state, first)
            epoch = first + config.eval_every
            needs_holdout = config.early_stopping is not None
            if config.record_history or needs_holdout:
                h_loss, h_acc = evaluate(objective, state.params, data.holdout)
            if config.early_stopping is not None:
                # Freeze a model whose training diverged: the rule sees only finite models.
                state = early_stop(state, epoch, h_loss, h_acc)
            else:
                state = state._replace(selected=state.params)
            if not config.record_history:
                return state, None
            tr_loss, tr_acc = evaluate(objective, state.params, data.train)
            te_loss, te_acc = evaluate(objective, state.params, data.test)
            lr = schedule(jnp.asarray(jnp.minimum(state.n_updates, max_steps) - 1).clip(0))
            hist = History(
                epoch=jnp.asarray(epoch), learning_rate=jnp.asarray(lr, dtype),
                objective=objective.value(state.params, pen, data.train),
                train_loss=tr_loss, train_acc=jnp.asarray(tr_acc, dtype),
                holdout_loss=jnp.asarray(h_loss, dtype), holdout_acc=jnp.asarray(h_acc, dtype),
                test_loss=jnp.asarray(te_loss, dtype), test_acc=jnp.asarray(te_acc, dtype),
                active=state.active)
            return state, hist

        false, zero = jnp.asarray(False), jnp.asarray(0, jnp.int32)
        state0 = _State(
            params=params0, opt_state=opt.init(params0), n_updates=zero, active=jnp.asarray(True),
            stopped=false, diverged=false, stop_epoch=jnp.asarray(config.n_epochs, jnp.int32),
            ref_params=params0, selected=params0, best_score=jnp.asarray(-jnp.inf, dtype),
            last_score=jnp.asarray(0.0, dtype), bad_count=zero, prev_params=params0,
            prevprev_params=params0, prev_acc=jnp.asarray(-jnp.inf, dtype), n_evals=zero)
        state, history = jax.lax.scan(record, state0, jnp.arange(config.n_records))
        return TrainResult(
            params=state.selected, last_params=state.params, history=history,
            stop_epoch=state.stop_epoch, stopped=state.stopped, diverged=state.diverged,
            n_updates=state.n_updates)

    return trainer


@functools.lru_cache(maxsize=64)
def jitted_trainer(objective: Objective, config: TrainConfig):
    """``jax.jit(make_trainer(objective, config))``, cached per (objective, config)."""
    return jax.jit(make_trainer(objective, config))


def prepare_data(objective: Objective, config: TrainConfig, X_train, y_train, X_holdout=None,
                 y_holdout=None, X_test=None, y_test=None, dtype=None) -> TrainData:
    """Validate raw arrays for ``objective`` and ``config``; return a :class:`TrainData`.

    Raises ``ValueError`` naming the argument: shapes, labels, NaN/inf, a batch larger than the
    training set, a hold-out set missing where early stopping needs one.
    """
    X, y = validation.check_batch(X_train, y_train, objective, ("X_train", "y_train"))
    dtype = dtype or X.dtype
    sets = [Batch(jnp.asarray(X, dtype), jnp.asarray(y))]
    for name, Xs, ys in (("holdout", X_holdout, y_holdout), ("test", X_test, y_test)):
        if (Xs is None) != (ys is None):
            raise ValueError(f"X_{name} and y_{name} must be given together")
        if Xs is None:
            sets.append(None)
            continue
        Xs, ys = validation.check_batch(Xs, ys, objective, (f"X_{name}", f"y_{name}"))
        validation.check_n_features(Xs, X.shape[1], f"X_{name}")
        sets.append(Batch(jnp.asarray(Xs, dtype), jnp.asarray(ys)))
    if config.early_stopping is not None and sets[1] is None:
        raise ValueError(f"early_stopping={config.early_stopping!r} needs a hold-out set "
                         "(X_holdout, y_holdout)")
    if config.method == "minibatch" and config.batch_size > X.shape[0]:
        raise ValueError(f"batch_size ({config.batch_size}) must be <= the number of training "
                         f"examples ({X.shape[0]})")
    return TrainData(*sets)


def check_hyper(hyper: Hyper) -> Hyper:
    """Scalars with η > 0, T > 0, λ₂ >= 0, λ₁ >= 0 (ValueError naming the field)."""
    return Hyper(
        learning_rate=validation.check_scalar(hyper.learning_rate, "learning_rate", low=0, low_inclusive=False),
        decay_time=validation.check_scalar(hyper.decay_time, "decay_time", low=0, low_inclusive=False),
        l2=validation.check_scalar(hyper.l2, "l2", low=0),
        l1=validation.check_scalar(hyper.l1, "l1", low=0))


def train(objective: Objective, data: TrainData, hyper: Hyper = Hyper(), config: TrainConfig = TrainConfig(),
          *, key=None, init_params=None, init_scale: float = 0.0) -> TrainResult:
    """Train one model (validated, jitted). ``data`` from :func:`prepare_data`.

    ``init_params`` default: zeros, or N(0, init_scale²) weights drawn from ``key`` folded with 1.
    ``key`` (default PRNGKey(0)) also drives the shuffling of mini-batch and SGD epochs.
    """
    hyper = check_hyper(hyper)
    key = jax.random.PRNGKey(0) if key is None else key
    dtype = data.train.X.dtype
    if init_params is None:
        init_params = objective.init_params(data.train.X.shape[1], jax.random.fold_in(key, 1),
                                            init_scale, dtype)
    hyper = Hyper(*(jnp.asarray(v, dtype) for v in hyper))
    return jitted_trainer(objective, config)(hyper, init_params, data, key)
