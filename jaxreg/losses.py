"""Per-example losses in numerically stable form, one :class:`Loss` record each; reductions and
penalties.

Every loss takes ``scores`` and targets ``y`` for a batch and returns one value per example:

* ``scores``: ``(n,)`` for the single-output models (linear, logistic), ``(n, C)`` for the
  multiclass ones (softmax, hinge).
* ``y``: ``(n,)``; real targets for ``squared``, 0/1 for the logistic losses, integer class
  labels in ``[0, C)`` for the multiclass losses.

==============  ==========================================  ===============================  ===========
name            per-example loss ℓ(s, y)                    score residual r = ∂ℓ/∂s          source
==============  ==========================================  ===============================  ===========
squared         (s - y)^2                                   2 (s - y)                        [001]
logistic        softplus(s) - y s                           σ(s) - y                         [000, 001, 003]
logistic_mse    ½ (σ(s) - y)^2                              (σ(s) - y) σ(s) (1 - σ(s))       [004]
softmax         logsumexp(s) - s_y                          softmax(s) - onehot(y)           [000, 001, 003]
hinge           Σ_{j≠y} max(0, s_j - s_y + 1)               1[m_j > 0], r_y = -Σ 1[m_j > 0]  [002]
==============  ==========================================  ===============================  ===========

Each record also carries the facts the rest of jaxreg needs about its loss, so no module
dispatches on the loss name: the ``link`` (scores -> probabilities or values), the ``target``
kind (``"real"``, ``"binary"`` 0/1, ``"class"`` labels), ``smooth`` (whether a smooth solver
applies) and ``curvature``, an upper bound c on ℓ''(s) (solvers use c·XᵀX/n as a metric).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

__all__ = ["MEAN", "SUM", "REDUCTIONS", "TARGET_KINDS", "squared_loss", "logistic_loss", "logistic_mse_loss",
           "softmax_cross_entropy", "hinge_margins", "multiclass_hinge_loss", "squared_residual",
           "logistic_residual", "logistic_mse_residual", "softmax_residual", "hinge_residual", "Loss",
           "LOSSES", "LOSS_NAMES", "PER_EXAMPLE_LOSSES", "get_loss", "check_loss", "require_fields",
           "residual_of", "reduce_losses", "l2_penalty", "l1_penalty"]

MEAN, SUM = "mean", "sum"
REDUCTIONS = (MEAN, SUM)
TARGET_KINDS = ("real", "binary", "class")


def squared_loss(scores, y):
    """(s - y)^2 per example; scores, y: (n,)."""
    return (scores - y) ** 2


def logistic_loss(scores, y):
    """Binary cross-entropy from logits, softplus(s) - y s (finite for any float s); (n,)."""
    return jax.nn.softplus(scores) - y * scores


def logistic_mse_loss(scores, y):
    """½ (σ(s) - y)^2 per example: logistic regression trained with the squared error; (n,)."""
    return 0.5 * (jax.nn.sigmoid(scores) - y) ** 2


def softmax_cross_entropy(scores, y):
    """logsumexp(s) - s_y per example. scores: (n, C); y: (n,) int labels -> (n,)."""
    true_score = jnp.take_along_axis(scores, y[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return jax.nn.logsumexp(scores, axis=-1) - true_score


def hinge_margins(scores, y, margin=1.0):
    """m_j = s_j - s_y + margin for j != y, and 0 at j = y. scores: (n, C) -> (n, C)."""
    n_classes = scores.shape[-1]
    true_score = jnp.take_along_axis(scores, y[:, None].astype(jnp.int32), axis=-1)
    is_true = jax.nn.one_hot(y, n_classes, dtype=bool)
    return jnp.where(is_true, 0.0, scores - true_score + margin)


def multiclass_hinge_loss(scores, y, margin=1.0):
    """Σ_{j≠y} max(0, s_j - s_y + margin) per example (Weston-Watkins / CS231n). (n, C) -> (n,)."""
    return jnp.sum(jnp.maximum(hinge_margins(scores, y, margin), 0.0), axis=-1)


# ------------------------------------------------------------------------ score residuals ∂ℓ/∂s
def squared_residual(scores, y):
    return 2.0 * (scores - y)


def logistic_residual(scores, y):
    return jax.nn.sigmoid(scores) - y


def logistic_mse_residual(scores, y):
    """The attenuated gradient of the MSE-logistic lecture: the factor σ(1 − σ) vanishes where σ saturates."""
    p = jax.nn.sigmoid(scores)
    return (p - y) * p * (1.0 - p)


def softmax_residual(scores, y):
    return jax.nn.softmax(scores, axis=-1) - jax.nn.one_hot(y, scores.shape[-1], dtype=scores.dtype)


def hinge_residual(scores, y, margin=1.0):
    active = (hinge_margins(scores, y, margin) > 0).astype(scores.dtype)
    is_true = jax.nn.one_hot(y, scores.shape[-1], dtype=scores.dtype)
    return active - is_true * jnp.sum(active, axis=-1, keepdims=True)


def _identity(scores):
    return scores


def _softmax(scores):
    return jax.nn.softmax(scores, axis=-1)


def _sigmoid_curvature(scores):
    p = jax.nn.sigmoid(scores)
    return p * (1 - p)


def _softmax_curvature(scores):
    p = jax.nn.softmax(scores, axis=-1)
    return p * (1 - p)


class Loss(NamedTuple):
    """Everything jaxreg knows about one loss.

    value: ``(scores, y) -> (n,)`` per-example losses; residual: ``(scores, y) -> ∂ℓ/∂s`` in
    closed form (same shape as scores; None: ``jax.grad`` of Σ value with respect to the scores);
    link: ``scores -> `` probabilities (σ or softmax) or the
    regression value; target: ``"real"`` | ``"binary"`` | ``"class"``; smooth: ℓ is twice
    differentiable (L-BFGS and FISTA apply); curvature: an upper bound c on ℓ''(s) (None: not
    smooth); curvature_at: ``scores -> `` the diagonal of ∂²ℓ/∂s² at the scores (σ(1 − σ),
    p(1 − p)) where it is cheap and informative, else None (the solvers then use the bound).
    """

    name: str
    value: Callable
    residual: Optional[Callable]
    link: Callable
    target: str
    smooth: bool
    curvature: Optional[float]
    curvature_at: Optional[Callable] = None

    @property
    def multiclass(self) -> bool:
        return self.target == "class"

    @property
    def classifier(self) -> bool:
        return self.target != "real"


LOSSES = {rec.name: rec for rec in (
    Loss("squared", squared_loss, squared_residual, _identity, "real", True, 2.0),
    Loss("logistic", logistic_loss, logistic_residual, jax.nn.sigmoid, "binary", True, 0.25, _sigmoid_curvature),
    Loss("logistic_mse", logistic_mse_loss, logistic_mse_residual, jax.nn.sigmoid, "binary", True, 0.25),
    Loss("softmax", softmax_cross_entropy, softmax_residual, _softmax, "class", True, 0.5, _softmax_curvature),
    Loss("hinge", multiclass_hinge_loss, hinge_residual, _softmax, "class", False, None),
)}
LOSS_NAMES = tuple(LOSSES)
PER_EXAMPLE_LOSSES = {name: rec.value for name, rec in LOSSES.items()}


def get_loss(name) -> Loss:
    """The :class:`Loss` record of ``name`` (ValueError naming ``loss`` if unknown); a
    :class:`Loss` record is checked (:func:`check_loss`) and returned as it is."""
    if isinstance(name, Loss):
        return check_loss(name)
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSS_NAMES}, got {name!r}")
    return LOSSES[name]


def check_loss(record: Loss) -> Loss:
    """``record`` if its fields have the types :class:`Loss` documents (ValueError naming the field)."""
    if not isinstance(record, Loss):
        raise ValueError(f"loss must be a loss name {LOSS_NAMES} or a Loss record, got {type(record).__name__}")
    if not isinstance(record.name, str) or not record.name:
        raise ValueError(f"loss.name must be a non-empty string, got {record.name!r}")
    for field in ("value", "link"):
        if not callable(getattr(record, field)):
            raise ValueError(f"loss.{field} must be callable (scores, y) -> per-example values, got "
                             f"{getattr(record, field)!r}")
    for field in ("residual", "curvature_at"):
        if getattr(record, field) is not None and not callable(getattr(record, field)):
            raise ValueError(f"loss.{field} must be callable or None, got {getattr(record, field)!r}")
    if record.target not in TARGET_KINDS:
        raise ValueError(f"loss.target must be one of {TARGET_KINDS}, got {record.target!r}")
    if not isinstance(record.smooth, bool):
        raise ValueError(f"loss.smooth must be a bool, got {record.smooth!r}")
    if record.curvature is not None and not (isinstance(record.curvature, (int, float)) and record.curvature > 0):
        raise ValueError(f"loss.curvature must be a number > 0 (an upper bound on ℓ''(s)) or None, "
                         f"got {record.curvature!r}")
    return record


def require_fields(record: Loss, fields, who: str) -> None:
    """Refuse ``record`` unless it is smooth and its ``fields`` are set (not None): what a solver
    ``who`` needs from a loss (ValueError naming the loss, the solver and the missing fields)."""
    missing = [f for f in fields if getattr(record, f) is None]
    if not record.smooth:
        missing = ["smooth=True"] + missing
    if missing:
        raise ValueError(f"{who} needs a loss with {', '.join(missing)}; loss {record.name!r} lacks "
                         f"{'it' if len(missing) == 1 else 'them'}")


def residual_of(record: Loss, scores, y):
    """r = ∂ℓ/∂s per example: the record's closed form, else ``jax.grad`` of Σ ℓ (examples are
    independent, so the gradient of the sum is the per-example derivative); the shape of scores."""
    if record.residual is not None:
        return record.residual(scores, y)
    return jax.grad(lambda s: jnp.sum(record.value(s, y)))(scores)


def reduce_losses(per_example, reduction, weight=None):
    """Mean or sum over the examples, chosen explicitly: ``reduction`` in {"mean", "sum"}.

    With per-example weights w (n,): the weighted mean Σ w_n ℓ_n / Σ w_n, or the weighted sum
    Σ w_n ℓ_n. ``weight=None`` computes exactly the unweighted mean or sum (no multiply).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if weight is None:
        return jnp.mean(per_example) if reduction == MEAN else jnp.sum(per_example)
    total = jnp.sum(weight * per_example)
    return total / jnp.sum(weight) if reduction == MEAN else total


def l2_penalty(W):
    """½ ‖W‖² (the ½ makes the gradient simply W)."""
    return 0.5 * jnp.sum(W**2)


def l1_penalty(W):
    """‖W‖₁ = Σ |W_ij|."""
    return jnp.sum(jnp.abs(W))
