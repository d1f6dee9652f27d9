"""Trainers for one model: full-batch GD, mini-batch GD and per-example SGD, as ``lax.scan``.

``make_trainer(objective, config)`` returns the pure function

    trainer(hyper, params0, data, key) -> TrainResult

that :mod:`jaxreg.engine` vmaps over a stack of models and :mod:`jaxreg.meta` differentiates.
``train`` is the validated, jitted entry point for a single model.

Per-example weights (``Batch.weight``, e.g. a cross-validation fold's 0/1 mask) enter every
gradient and evaluation; mini-batch and SGD epochs then draw their batches from the
positive-weight rows only (:func:`epoch_order`, ``TrainConfig.epoch_rows`` updates' worth) with an
unbiased weighted batch gradient (:func:`weighted_batch_fn`). Without weights every line below
computes what it did before weights existed.

The scan runs over *records*: each record is ``eval_every`` epochs of updates followed by one
evaluation (loss and accuracy on train, hold-out and test) and one early-stopping decision. The
optimizer is any optax ``GradientTransformation`` (:mod:`jaxreg.optim`) and stopping is
pluggable (:mod:`jaxreg.stopping`): the state carries only the rules' own states. A model that
stops (a rule, ``max_steps``) or diverges is frozen: its parameters and optimiser state stop
changing while the other members of a vmapped grid go on.

Divergence: an update that would make a parameter non-finite is refused and flags the model
(checked at every update); and, with ``record_history`` (the training loss is then evaluated at
every record anyway), the *exploding-loss rule*: a live model whose mean training data loss
``L_r`` at record ``r`` is not finite or exceeds ``R · max(L(θ₀), 1e-6)`` (``R =
config.diverge_ratio``, default 1e6; ``L(θ₀)`` the loss at the start) is flagged diverged and
frozen at that record. (Gradient descent at a stable step never raises a convex loss above
``L(θ₀)``; SGD's noise does by small factors; a step beyond the stable range grows it
geometrically, e.g. 6e6 → 1.7e27 for the squared loss at η = 1e3.) Without history only the
non-finite check runs (no extra forward pass).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import losses, optim, remat, tree
from jaxreg.batching import epoch_order, epoch_permutation, epoch_rows_for, weighted_batch_fn  # noqa: F401
from jaxreg.config import Hyper, TrainConfig, TrainData, as_hyper_arrays
from jaxreg.objective import Batch, Objective
from jaxreg.prepare import as_key, check_data, check_hyper, check_params

__all__ = ["History", "TrainResult", "TrainState", "evaluate", "make_trainer", "jitted_trainer", "train"]


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
    stopped / diverged: bools; n_updates: parameter updates applied; trace: ``config.step_trace``
    after every update, stacked ``(n_epochs · steps_per_epoch, ...)`` (None without one)."""

    params: dict
    last_params: dict
    history: Optional[History]
    stop_epoch: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    n_updates: jax.Array
    trace: Any = None


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    n_updates: jax.Array
    active: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    stop_epoch: jax.Array
    selected: dict  # the eval rule's current choice (the last weights without one)
    eval_state: Any  # the per-evaluation stopping rule's state (None without one)
    step_state: Any  # the per-update stopping rule's state (None without one)


def evaluate(objective: Objective, params, batch: Optional[Batch]):
    """(mean per-example data loss, accuracy) on ``batch`` (weighted means Σ w ℓ / Σ w when the
    batch has weights, e.g. a cross-validation fold's hold-out rows); NaNs when it is None."""
    if batch is None:
        return jnp.nan, jnp.nan
    loss = losses.reduce_losses(objective.per_example_loss(params, batch), losses.MEAN, batch.weight)
    acc = objective.accuracy(params, batch) if objective.is_classifier else jnp.nan
    return loss, acc


def make_trainer(objective: Objective, config: TrainConfig):
    """The pure trainer ``(hyper, params0, data, key) -> TrainResult`` for one model.

    hyper: :class:`Hyper` (scalars); params0: a params pytree (``objective.init_params``);
    data: :class:`TrainData`; key: a ``jax.random`` key (shuffling order). Not jitted: wrap it
    in ``jax.jit``, ``jax.vmap``, ``jax.grad`` or ``jax.jvp`` as needed.
    """
    grad_fn = objective.grad if config.grad == "closed_form" else jax.grad(objective.value)
    eval_rule, step_rule = config.eval_rule, config.step_rule

    def trainer(hyper: Hyper, params0, data: TrainData, key) -> TrainResult:
        X, y, w = data.train
        n = X.shape[0]
        rows = n if w is None or config.epoch_rows is None else config.epoch_rows
        spe = config.steps_per_epoch(rows)
        schedule = optim.schedule_for(config.schedule, hyper, spe)
        opt = optim.make_optimizer(config.optimizer, schedule, config.momentum, hyper.extra)
        pen = hyper.penalty
        max_steps = config.max_steps if config.max_steps is not None else np.iinfo(np.int32).max
        dtype = tree.leaf_dtype(params0)

        batch_grad = None if w is None or config.method == "full_batch" else weighted_batch_fn(
            objective, config.grad, w, 1 if config.method == "sgd" else config.batch_size)

        def update(state: TrainState, batch: Batch, epoch):
            g = grad_fn(state.params, pen, batch) if batch_grad is None else batch_grad(state.params, pen, *batch)
            updates, opt_state = opt.update(g, state.opt_state, state.params)
            new_params = optax.apply_updates(state.params, updates)
            live = state.active & (state.n_updates < max_steps)
            finite = tree.all_finite(new_params)
            take = live & finite
            diverged = state.diverged | (live & ~finite)
            params = tree.where(take, new_params, state.params)
            state = state._replace(
                params=params, opt_state=tree.where(take, opt_state, state.opt_state),
                n_updates=state.n_updates + take.astype(jnp.int32), diverged=diverged,
                active=state.active & ~diverged)
            if step_rule is not None:
                rule_state, stop, _ = step_rule.update(state.step_state, params, jnp.nan, jnp.nan)
                converged = take & stop
                state = state._replace(
                    step_state=tree.where(take, rule_state, state.step_state),
                    stopped=state.stopped | converged, active=state.active & ~converged,
                    stop_epoch=jnp.where(converged, epoch + 1, state.stop_epoch).astype(jnp.int32))
            trace = None if config.step_trace is None else config.step_trace(state.params, state.opt_state)
            return state, trace

        def run_epoch(state: TrainState, epoch):
            if config.method == "full_batch":
                state, trace = update(state, data.train, epoch)
                return state, jax.tree_util.tree_map(lambda t: t[None], trace)
            bs = 1 if config.method == "sgd" else config.batch_size
            perm = epoch_permutation(key, epoch, n) if w is None else epoch_order(key, epoch, w)

            def body(s, i):
                idx = jax.lax.dynamic_slice_in_dim(perm, i * bs, bs)
                if w is None:
                    return update(s, Batch(X[idx], y[idx]), epoch)
                return update(s, Batch(X[idx], y[idx], w[idx]), epoch)

            return scan_steps(body, state, jnp.arange(spe))

        def run_block(state: TrainState, first_epoch):
            def body(s, e):
                return run_epoch(s, first_epoch + e)

            return scan_epochs(body, state, jnp.arange(config.eval_every))

        # checkpoint placement (reverse-mode memory; jaxreg.remat): the values are unchanged
        plan = remat.plan(config.remat, min(max_steps, config.n_epochs * spe), spe, config.remat_segment)
        branch = plan.branch if plan.mode == "log" else None
        one_update = config.method == "full_batch"  # then an epoch is one update
        scan_steps = functools.partial(remat.scan, segment=plan.step_segment, branch=branch,
                                       checkpoint_body=plan.per_update)
        scan_epochs = functools.partial(remat.scan, segment=plan.epoch_segment, branch=branch,
                                        checkpoint_body=plan.per_update and one_update)
        if plan.block:
            run_block = jax.checkpoint(run_block)

        def early_stop(state: TrainState, epoch, h_loss, h_acc):
            can = state.active  # a stopped or diverged model keeps its rule state and choice
            rule_state, stop, selected = eval_rule.update(state.eval_state, state.params, h_loss, h_acc)
            stop = can & stop
            return state._replace(
                eval_state=tree.where(can, rule_state, state.eval_state),
                selected=tree.where(can, selected, state.selected),
                stopped=state.stopped | stop, active=state.active & ~stop,
                stop_epoch=jnp.where(stop, epoch, state.stop_epoch).astype(jnp.int32))

        def explode_check(state: TrainState, tr_loss):
            bad = state.active & ~(tr_loss <= config.diverge_ratio * jnp.maximum(loss0, 1e-6))  # NaN: bad
            return state._replace(diverged=state.diverged | bad, active=state.active & ~bad)

        def record(state: TrainState, r):
            first = r * config.eval_every
            state, trace = run_block(state, first)
            epoch = first + config.eval_every
            if config.record_history:
                tr_loss, tr_acc = evaluate(objective, state.params, data.train)
                if config.diverge_ratio is not None:
                    state = explode_check(state, tr_loss)
            if config.record_history or eval_rule is not None:
                h_loss, h_acc = evaluate(objective, state.params, data.holdout)
            if eval_rule is not None:
                state = early_stop(state, epoch, h_loss, h_acc)
            else:
                state = state._replace(selected=state.params)
            if not config.record_history:
                return state, (None, trace)
            te_loss, te_acc = evaluate(objective, state.params, data.test)
            lr = schedule(jnp.asarray(jnp.minimum(state.n_updates, max_steps) - 1).clip(0))
            hist = History(
                epoch=jnp.asarray(epoch), learning_rate=jnp.asarray(lr, dtype),
                objective=objective.value(state.params, pen, data.train),
                train_loss=tr_loss, train_acc=jnp.asarray(tr_acc, dtype),
                holdout_loss=jnp.asarray(h_loss, dtype), holdout_acc=jnp.asarray(h_acc, dtype),
                test_loss=jnp.asarray(te_loss, dtype), test_acc=jnp.asarray(te_acc, dtype),
                active=state.active)
            return state, (hist, trace)

        check = config.record_history and config.diverge_ratio is not None
        loss0 = evaluate(objective, params0, data.train)[0] if check else None
        false = jnp.asarray(False)
        state0 = TrainState(
            params=params0, opt_state=opt.init(params0), n_updates=jnp.asarray(0, jnp.int32),
            active=jnp.asarray(True), stopped=false, diverged=false,
            stop_epoch=jnp.asarray(config.n_epochs, jnp.int32), selected=params0,
            eval_state=None if eval_rule is None else eval_rule.init(params0),
            step_state=None if step_rule is None else step_rule.init(params0))
        state, (history, trace) = remat.scan(record, state0, jnp.arange(config.n_records), branch=branch)
        trace = jax.tree_util.tree_map(lambda t: t.reshape((-1,) + t.shape[3:]), trace)
        return TrainResult(
            params=state.selected, last_params=state.params, history=history,
            stop_epoch=state.stop_epoch, stopped=state.stopped, diverged=state.diverged,
            n_updates=state.n_updates, trace=trace)

    return trainer


@functools.lru_cache(maxsize=64)
def jitted_trainer(objective: Objective, config: TrainConfig):
    """``jax.jit(make_trainer(objective, config))``, cached per (objective, config)."""
    return jax.jit(make_trainer(objective, config))


def train(objective: Objective, data: TrainData, hyper: Hyper = Hyper(), config: TrainConfig = TrainConfig(),
          *, key=None, init_params=None, init_scale: float = 0.0) -> TrainResult:
    """Train one model (validated, jitted). ``data`` from :func:`prepare_data`.

    ``init_params`` default: zeros, or N(0, init_scale²) weights drawn from ``key`` folded with 1.
    ``key`` (a ``jax.random`` key or an int seed; default 0) also drives the shuffling of
    mini-batch and SGD epochs.
    """
    check_data(objective, config, data)
    config = epoch_rows_for(config, data)
    hyper = check_hyper(hyper, config, data.train.X.dtype)
    key = as_key(key)
    dtype = data.train.X.dtype
    if init_params is None:
        init_params = objective.init_params(data.train.X.shape[1], jax.random.fold_in(key, 1),
                                            init_scale, dtype)
    else:
        init_params = check_params(objective, init_params, data.train.X.shape[1], dtype)
    return jitted_trainer(objective, config)(as_hyper_arrays(hyper, dtype), init_params, data, key)
