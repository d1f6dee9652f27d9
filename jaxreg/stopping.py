"""Stopping rules as objects: an ``(init, update)`` pair over an explicit state (optax's idiom).

    rule = StopRule(init, update, at="eval")
    state = rule.init(params0)
    state, stop, selected = rule.update(state, params, holdout_loss, holdout_acc)

* ``at="eval"`` rules are called after every evaluation (every ``eval_every`` epochs) with the
  hold-out loss and accuracy of the current weights; ``selected`` is the weights the rule would
  return if training ended now (the early-stopping choice).
* ``at="step"`` rules are called after every applied parameter update; the loss and accuracy
  arguments are NaN (nothing is evaluated per step) and ``selected`` is ignored.

Rules are written for one model, ungated: the trainer applies an update only to a model that
is still active (``jnp.where``), so a stopped or diverged model keeps its rule state, its
choice and its weights while the other members of a vmapped grid go on. ``stop`` is a boolean
scalar; once True the trainer freezes the model. A user rule is any ``StopRule`` (see
``tests/test_stopping.py``). The instances below are the paper's two rules (seed 003), patience
on the hold-out loss, and seed 000's ‖Δθ‖ rule.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax.numpy as jnp

from jaxreg import tree

AT = ("eval", "step")


class StopRule(NamedTuple):
    """``init(params) -> state``; ``update(state, params, holdout_loss, holdout_acc) -> (state,
    stop, selected_params)``; ``at``: "eval" or "step" (module docstring); ``needs_holdout``:
    the rule reads the hold-out metrics (the data must have a hold-out set)."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple]
    at: str = "eval"
    needs_holdout: bool = True


class PaperLogisticState(NamedTuple):
    prev_params: Any
    prevprev_params: Any
    prev_acc: Any
    n_evals: Any


def logistic_paper() -> StopRule:
    """Seed 003 §6.1: stop at the first drop of the hold-out accuracy, from the 4th evaluation
    on, and return the weights from two evaluations before the drop."""

    def init(params):
        dtype = tree.leaf_dtype(params)
        return PaperLogisticState(params, params, jnp.asarray(-jnp.inf, dtype), jnp.asarray(0, jnp.int32))

    def update(s, params, loss, acc):
        drop = (s.n_evals >= 3) & (acc < s.prev_acc)
        selected = tree.where(drop, s.prevprev_params, params)
        return PaperLogisticState(params, s.prev_params, acc, s.n_evals + 1), drop, selected

    return StopRule(init, update)


class BestScoreState(NamedTuple):
    best_params: Any
    best_score: Any
    last_score: Any
    bad_count: Any


def softmax_paper(patience: int) -> StopRule:
    """Seed 003 §3.2: stop after ``patience`` consecutive evaluations whose hold-out accuracy is
    below the last non-decreasing one; return the weights of the best hold-out accuracy."""

    def init(params):
        dtype = tree.leaf_dtype(params)
        return BestScoreState(params, jnp.asarray(-jnp.inf, dtype), jnp.asarray(0.0, dtype), jnp.asarray(0, jnp.int32))

    def update(s, params, loss, acc):
        better = acc > s.best_score
        falling = acc < s.last_score
        bad = jnp.where(falling, s.bad_count + 1, 0)
        s = BestScoreState(tree.where(better, params, s.best_params), jnp.where(better, acc, s.best_score),
                           jnp.where(falling, s.last_score, acc), bad)
        return s, bad >= patience, s.best_params

    return StopRule(init, update)


def patience(patience: int, min_delta: float = 0.0) -> StopRule:
    """Stop when the hold-out loss has not improved by more than ``min_delta`` for ``patience``
    evaluations; return the weights of the lowest hold-out loss."""

    def init(params):
        dtype = tree.leaf_dtype(params)
        return BestScoreState(params, jnp.asarray(-jnp.inf, dtype), jnp.asarray(0.0, dtype), jnp.asarray(0, jnp.int32))

    def update(s, params, loss, acc):
        better = loss < -s.best_score - min_delta  # best_score holds −(best loss)
        bad = jnp.where(better, 0, s.bad_count + 1)
        s = BestScoreState(tree.where(better, params, s.best_params), jnp.where(better, -loss, s.best_score),
                           s.last_score, bad)
        return s, bad >= patience, s.best_params

    return StopRule(init, update)


class ParamChangeState(NamedTuple):
    ref_params: Any
    count: Any


def param_change(tol: float, check_every: int) -> StopRule:
    """Seed 000's SGD rule: every ``check_every`` updates, stop when ‖θ − θ_{check_every updates
    ago}‖₂ < ``tol``. A per-update (``at="step"``) rule that reads no hold-out set."""

    def init(params):
        return ParamChangeState(params, jnp.asarray(0, jnp.int32))

    def update(s, params, loss, acc):
        count = s.count + 1
        at_check = count % check_every == 0
        converged = at_check & (tree.norm(tree.sub(params, s.ref_params)) < tol)
        return ParamChangeState(tree.where(at_check, params, s.ref_params), count), converged, params

    return StopRule(init, update, at="step", needs_holdout=False)


NAMED = ("logistic_paper", "softmax_paper", "patience")


def named_rule(name: str, patience_: int, min_delta: float) -> StopRule:
    """The rule ``TrainConfig.early_stopping`` names (its ``patience``/``min_delta`` fields)."""
    if name == "logistic_paper":
        return logistic_paper()
    if name == "softmax_paper":
        return softmax_paper(patience_)
    if name == "patience":
        return patience(patience_, min_delta)
    raise ValueError(f"early_stopping must be None, one of {NAMED} or a StopRule, got {name!r}")
