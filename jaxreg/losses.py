"""Per-example losses in numerically stable form, reductions and penalties.

Every loss takes ``scores`` and targets ``y`` for a batch and returns one value per example:

* ``scores``: ``(n,)`` for the single-output models (linear, logistic), ``(n, C)`` for the
  multiclass ones (softmax, hinge).
* ``y``: ``(n,)``; real targets for ``squared``, 0/1 for the logistic losses, integer class
  labels in ``[0, C)`` for the multiclass losses.

The formulas follow the source documents (seed numbers in brackets):

==============  ==========================================  ==================================
name            per-example loss                            where from
==============  ==========================================  ==================================
squared         (s - y)^2                                   linear regression [001]
logistic        softplus(s) - y s  = -y log σ(s) - (1-y) log(1-σ(s))   [000, 001, 003]
logistic_mse    ½ (σ(s) - y)^2                              logistic regression with MSE [004]
softmax         logsumexp(s) - s_y  = -log softmax(s)_y     softmax regression [000, 001, 003]
hinge           Σ_{j≠y} max(0, s_j - s_y + 1)               multiclass SVM [002]
==============  ==========================================  ==================================
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

MEAN, SUM = "mean", "sum"
REDUCTIONS = (MEAN, SUM)


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


PER_EXAMPLE_LOSSES = {
    "squared": squared_loss,
    "logistic": logistic_loss,
    "logistic_mse": logistic_mse_loss,
    "softmax": softmax_cross_entropy,
    "hinge": multiclass_hinge_loss,
}
MULTICLASS_LOSSES = ("softmax", "hinge")
BINARY_LOSSES = ("logistic", "logistic_mse")


def reduce_losses(per_example, reduction):
    """Mean or sum over the examples, chosen explicitly: ``reduction`` in {"mean", "sum"}."""
    if reduction == MEAN:
        return jnp.mean(per_example)
    if reduction == SUM:
        return jnp.sum(per_example)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def l2_penalty(W):
    """½ ‖W‖² (the ½ makes the gradient simply W)."""
    return 0.5 * jnp.sum(W**2)


def l1_penalty(W):
    """‖W‖₁ = Σ |W_ij|."""
    return jnp.sum(jnp.abs(W))
