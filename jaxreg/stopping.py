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
``tests/test_stopping.py``). The instances below are the two rules of Zhu and Guo's MNIST paper
(:func:`first_accuracy_drop`, :func:`accuracy_patience`), patience on the hold-out loss, and the
‖Δθ‖ rule of the logistic-regression lecture notes (:func:`param_change`).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax.numpy as jnp

from jaxreg import tree

__all__ = ["AT", "StopInitFn", "StopUpdateFn", "StopRule", "AccuracyDropState", "first_accuracy_drop",
           "BestScoreState", "accuracy_patience", "patience", "ParamChangeState", "param_change", "ALIASES",
           "NAMED", "named_rule"]

AT = ("eval", "step")


class StopInitFn(Protocol):
    """``init(params) -> state``: the rule's state for a model starting at ``params``."""

    def __call__(self, params: Any) -> Any: ...


class StopUpdateFn(Protocol):
    """``update(state, params, holdout_loss, holdout_acc) -> (state, stop, selected_params)``:
    ``stop`` a boolean scalar, ``selected_params`` the weights the rule returns if training
    ends now (a pytree like ``params``); the loss and accuracy are scalars (NaN for a per-step
    rule)."""

    def __call__(self, state: Any, params: Any, holdout_loss: Any, holdout_acc: Any) -> tuple[Any, Any, Any]: ...


class StopRule(NamedTuple):
    """A stopping rule: ``init`` (:class:`StopInitFn`) and ``update`` (:class:`StopUpdateFn`);
    ``at``: "eval" or "step" (module docstring); ``needs_holdout``: the rule reads the hold-out
    metrics (the data must have a hold-out set)."""

    init: StopInitFn
    update: StopUpdateFn
    at: str = "eval"
    needs_holdout: bool = True


class AccuracyDropState(NamedTuple):
    prev_params: Any
    prevprev_params: Any
    prev_acc: Any
    n_evals: Any


def first_accuracy_drop() -> StopRule:
    """Zhu and Guo's logistic rule (§6.1 of their paper): stop at the first drop of the hold-out accuracy, from the 4th evaluation
    on, and return the weights from two evaluations before the drop."""

    def init(params):
        dtype = tree.leaf_dtype(params)
        return AccuracyDropState(params, params, jnp.asarray(-jnp.inf, dtype), jnp.asarray(0, jnp.int32))

    def update(s, params, loss, acc):
        drop = (s.n_evals >= 3) & (acc < s.prev_acc)
        selected = tree.where(drop, s.prevprev_params, params)
        return AccuracyDropState(params, s.prev_params, acc, s.n_evals + 1), drop, selected

    return StopRule(init, update)


class BestScoreState(NamedTuple):
    best_params: Any
    best_score: Any
    last_score: Any
    bad_count: Any


def accuracy_patience(patience: int) -> StopRule:
    """Zhu and Guo's softmax rule (§3.2 of their paper): stop after ``patience`` consecutive evaluations whose hold-out accuracy is
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
    """The lecture notes' SGD rule: every ``check_every`` updates, stop when ‖θ − θ_{check_every updates
    ago}‖₂ < ``tol``. A per-update (``at="step"``) rule that reads no hold-out set."""

    def init(params):
        return ParamChangeState(params, jnp.asarray(0, jnp.int32))

    def update(s, params, loss, acc):
        count = s.count + 1
        at_check = count % check_every == 0
        converged = at_check & (tree.norm(tree.sub(params, s.ref_params)) < tol)
        return ParamChangeState(tree.where(at_check, params, s.ref_params), count), converged, params

    return StopRule(init, update, at="step", needs_holdout=False)


# The names used before the rules had descriptive ones; they select the same rules.
ALIASES = {"logistic_paper": "first_accuracy_drop", "softmax_paper": "accuracy_patience"}
NAMED = ("first_accuracy_drop", "accuracy_patience", "patience") + tuple(ALIASES)


def named_rule(name: str, patience_: int, min_delta: float) -> StopRule:
    """The rule ``TrainConfig.early_stopping`` names (its ``patience``/``min_delta`` fields)."""
    name = ALIASES.get(name, name)
    if name == "first_accuracy_drop":
        return first_accuracy_drop()
    if name == "accuracy_patience":
        return accuracy_patience(patience_)
    if name == "patience":
        return patience(patience_, min_delta)
    raise ValueError(f"early_stopping must be None, one of {NAMED} or a StopRule, got {name!r}")
