"""Objectives: model + loss + penalty, as pure functions of ``(params, penalty, batch)``.

The regularisation convention, fixed here once for all of jaxreg::

    J(W, b) = reduce_n ℓ(x_n W + b, y_n)  +  (λ₂ / 2) ‖W‖²  +  λ₁ ‖W‖₁

with ``reduce`` the mean (default) or the sum of the per-example losses (with per-example
weights w_n, :class:`Batch`: Σ w_n ℓ_n / Σ w_n or Σ w_n ℓ_n), and the bias ``b`` unpenalised
unless ``penalize_intercept=True``.

* Zhu and Guo's MNIST paper writes the L2 term as ``λ ‖w‖²`` but its code uses the gradient ``λ w``,
  which is this convention: ``λ₂ = λ`` of the paper's code (``= 2 λ`` of its text).
* The softmax/hinge notebook writes ``0.5 * reg * ‖W‖²``: ``λ₂ = reg`` with ``reduction="mean"``.
* scikit-learn's ``LogisticRegression`` minimises ``C Σ_n ℓ_n + ½‖w‖²`` (L2) or
  ``C Σ_n ℓ_n + ‖w‖₁`` (L1). Dividing by ``C n``: with ``reduction="mean"``,
  ``λ = 1 / (C n)``, i.e. ``C = 1 / (n λ)``, for both penalties (see :func:`lambda_to_sklearn_C`);
  with sample weights scikit-learn minimises ``C Σ_n w_n ℓ_n + penalty``: ``λ = 1 / (C Σ_n w_n)``.
* Elastic net (glmnet's α = scikit-learn's ``l1_ratio``): ``λ (α‖W‖₁ + (1 − α)/2 ‖W‖²)`` is
  ``(λ₁, λ₂) = (α λ, (1 − α) λ)`` (:func:`elastic_net`).

Shapes: ``X: (n, d)``; single-output models have ``W: (d,)``, ``b: ()`` and ``scores: (n,)``;
multiclass models have ``W: (d, C)``, ``b: (C,)`` and ``scores: (n, C)``.
"""
from __future__ import annotations

import dataclasses
from numbers import Integral, Real
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import losses
from jaxreg.grads import objective_grad

__all__ = ["LOSS_NAMES", "Batch", "Penalty", "penalty", "elastic_net", "lambda_to_sklearn_C",
           "sklearn_C_to_lambda", "Objective"]

LOSS_NAMES = losses.LOSS_NAMES


class Batch(NamedTuple):
    """A data batch. X: (n, d) features; y: (n,) targets (real, 0/1, or int class labels);
    weight: (n,) non-negative per-example weights w_n, or None (every example weighs 1).

    With weights the data term is the weighted mean Σ w_n ℓ_n / Σ w_n (or the weighted sum
    Σ w_n ℓ_n), so a 0/1 weight mask selects rows (a cross-validation fold) without changing any
    shape, and an integer weight equals repeating the row. ``weight=None`` computes exactly the
    unweighted objective (no multiply).
    """

    X: jax.Array
    y: jax.Array
    weight: Optional[jax.Array] = None


class Penalty(NamedTuple):
    """Regularisation strengths (vmappable, differentiable): λ₂ of (λ₂/2)‖W‖², λ₁ of λ₁‖W‖₁."""

    l2: jax.Array | float = 0.0
    l1: jax.Array | float = 0.0


def penalty(kind: str, strength) -> Penalty:
    """``Penalty`` for ``kind`` in {"l2", "l1", "none"} with strength λ (a scalar or an array).

    A grid over penalty *types* is then just a grid of ``Penalty`` values, so L1 and L2 models
    train side by side in one vmapped program.
    """
    kind = kind.lower()
    zero = jnp.zeros_like(jnp.asarray(strength, dtype=jnp.result_type(float)))
    if kind == "l2":
        return Penalty(l2=zero + strength, l1=zero)
    if kind == "l1":
        return Penalty(l2=zero, l1=zero + strength)
    if kind == "none":
        return Penalty(l2=zero, l1=zero)
    raise ValueError(f"penalty kind must be 'l2', 'l1' or 'none', got {kind!r}")


def elastic_net(lam, l1_ratio) -> Penalty:
    """glmnet's ``λ (α‖W‖₁ + (1 − α)/2 ‖W‖²)`` as a :class:`Penalty`: λ₁ = α λ, λ₂ = (1 − α) λ
    (α = ``l1_ratio`` in [0, 1]; scalars or arrays)."""
    lam, alpha = jnp.asarray(lam, dtype=jnp.result_type(float)), jnp.asarray(l1_ratio, dtype=jnp.result_type(float))
    return Penalty(l2=(1.0 - alpha) * lam, l1=alpha * lam)


def lambda_to_sklearn_C(lam, n_samples):
    """scikit-learn's ``C`` equivalent to λ under jaxreg's mean-loss convention: C = 1/(n λ)."""
    return 1.0 / (n_samples * lam)


def sklearn_C_to_lambda(C, n_samples):
    """Inverse of :func:`lambda_to_sklearn_C`: λ = 1/(n C)."""
    return 1.0 / (n_samples * C)


@dataclasses.dataclass(frozen=True)
class Objective:
    """A model and its loss. Static (hashable): safe to close over or pass as a static argument.

    Args:
      loss: one of ``"squared"`` (linear regression), ``"logistic"``, ``"logistic_mse"``,
        ``"softmax"``, ``"hinge"``, or a :class:`~jaxreg.losses.Loss` record of your own (its
        ``target`` says whether the model is a regressor, a binary or a multiclass classifier).
      n_classes: number of classes C for ``"softmax"``/``"hinge"``; 1 otherwise.
      reduction: ``"mean"`` or ``"sum"`` of the per-example losses.
      fit_intercept: whether ``params`` holds a bias ``"b"``. Use ``False`` when X already has a
        constant bias feature (the paper's 785th feature), which is then penalised like W.
      penalize_intercept: include ``b`` in the penalty (glmnet and scikit-learn do not).
    """

    loss: "str | losses.Loss"
    n_classes: int = 1
    reduction: str = losses.MEAN
    fit_intercept: bool = True
    penalize_intercept: bool = False

    def __post_init__(self):
        if not isinstance(self.loss, losses.Loss) and self.loss not in LOSS_NAMES:
            raise ValueError(f"loss must be one of {LOSS_NAMES} or a Loss record, got {self.loss!r}")
        losses.get_loss(self.loss)  # a Loss record: its fields checked
        if self.reduction not in losses.REDUCTIONS:
            raise ValueError(f"reduction must be one of {losses.REDUCTIONS}, got {self.reduction!r}")
        if isinstance(self.n_classes, Integral) and not isinstance(self.n_classes, (bool, np.bool_)):
            object.__setattr__(self, "n_classes", int(self.n_classes))  # e.g. np.int64 from y.max() + 1
        if self.is_multiclass:
            if type(self.n_classes) is not int or self.n_classes < 2:
                raise ValueError(f"n_classes must be an int >= 2 for loss={self.loss_name!r}, got {self.n_classes!r}")
        elif self.n_classes != 1:
            raise ValueError(f"n_classes must be 1 for loss={self.loss_name!r}, got {self.n_classes!r}")

    @property
    def record(self) -> losses.Loss:
        """The loss's :class:`~jaxreg.losses.Loss` record (value, residual, link, target kind...)."""
        return self.loss if isinstance(self.loss, losses.Loss) else losses.LOSSES[self.loss]

    @property
    def loss_name(self) -> str:
        """The loss's name (that of its record for a user-defined loss)."""
        return self.record.name

    @property
    def is_multiclass(self) -> bool:
        return self.record.multiclass

    @property
    def is_classifier(self) -> bool:
        return self.record.classifier

    def param_shapes(self, n_features: int) -> dict:
        """``{"W": (d,) or (d, C), "b": () or (C,)}`` ("b" only with an intercept)."""
        shapes = {"W": (n_features, self.n_classes) if self.is_multiclass else (n_features,)}
        if self.fit_intercept:
            shapes["b"] = (self.n_classes,) if self.is_multiclass else ()
        return shapes

    # ----------------------------------------------------------------------------- parameters
    def init_params(self, n_features: int, key=None, scale: float = 0.0, dtype=jnp.float32):
        """Zeros, or N(0, scale²) weights from ``key`` (the paper's text: scale 1). b starts at 0.

        ``scale`` may be a traced value (an ``init_scale`` grid axis): then W = scale · N(0, 1)
        draws, exactly zero where scale == 0.
        """
        shapes = self.param_shapes(n_features)
        if key is None or (isinstance(scale, Real) and scale == 0.0):
            W = jnp.zeros(shapes["W"], dtype)
        elif isinstance(scale, Real):
            W = scale * jax.random.normal(key, shapes["W"], dtype)
        else:
            scale = jnp.asarray(scale, dtype)
            W = jnp.where(scale == 0, jnp.zeros(shapes["W"], dtype), scale * jax.random.normal(key, shapes["W"], dtype))
        params = {"W": W}
        if self.fit_intercept:
            params["b"] = jnp.zeros(shapes["b"], dtype)
        return params

    def penalized_part(self, params):
        """The parameters the penalty applies to: W, and b only if ``penalize_intercept``."""
        if self.penalize_intercept and "b" in params:
            return params
        return {"W": params["W"]}

    # ----------------------------------------------------------------------------- the model
    def scores(self, params, X):
        """s = X W + b: (n,) or (n, C)."""
        s = X @ params["W"]
        return s + params["b"] if "b" in params else s

    def predict_proba(self, params, X):
        """The loss's link of the scores: σ(s) for the logistic losses, softmax(s) for
        multiclass, s itself for regression."""
        return self.record.link(self.scores(params, X))

    def predict(self, params, X):
        """Class labels (threshold 0.5 on σ(s), i.e. s > 0; argmax for multiclass) or values."""
        s = self.scores(params, X)
        if self.is_multiclass:
            return jnp.argmax(s, axis=-1)
        if self.is_classifier:
            return (s > 0).astype(jnp.int32)
        return s

    def accuracy(self, params, batch: Batch):
        """Fraction of correct labels (classifiers; weighted by ``batch.weight`` when given:
        Σ w_n 1[ŷ_n = y_n] / Σ w_n); for regression, R² is more useful."""
        correct = self.predict(params, batch.X) == batch.y.astype(jnp.int32)
        if batch.weight is None:
            return jnp.mean(correct)
        return jnp.sum(batch.weight * correct) / jnp.sum(batch.weight)

    # ----------------------------------------------------------------------------- the objective
    def per_example_loss(self, params, batch: Batch):
        return self.record.value(self.scores(params, batch.X), batch.y)

    def data_loss(self, params, batch: Batch):
        """reduce_n ℓ(s_n, y_n), without the penalty (weighted by ``batch.weight`` if given)."""
        return losses.reduce_losses(self.per_example_loss(params, batch), self.reduction, batch.weight)

    def penalty_value(self, params, pen: Penalty):
        """(λ₂/2)‖θ‖² + λ₁‖θ‖₁ over the penalised parameters θ."""
        leaves = jax.tree_util.tree_leaves(self.penalized_part(params))
        l2 = sum(losses.l2_penalty(leaf) for leaf in leaves)
        l1 = sum(losses.l1_penalty(leaf) for leaf in leaves)
        return pen.l2 * l2 + pen.l1 * l1

    def value(self, params, pen: Penalty, batch: Batch):
        """J = data loss + penalty (a scalar)."""
        return self.data_loss(params, batch) + self.penalty_value(params, pen)

    def smooth_value(self, params, pen: Penalty, batch: Batch):
        """J without the L1 term: the smooth part that proximal methods differentiate."""
        return self.value(params, pen._replace(l1=jnp.zeros_like(jnp.asarray(pen.l1))), batch)

    def grad(self, params, pen: Penalty, batch: Batch):
        """The closed-form gradient (L1 as the subgradient sign(w), sign(0) = 0); see grads.py."""
        return objective_grad(self, params, pen, batch)
