"""What both path solvers share: the augmented data X̃ = [X, 1], the data term and its gradient
from the scores (weighted: Σ w ℓ / Σ w), the mean curvature, freezing of stopped members, input
validation.

Weights: the batch's weights g (n,) weigh every member and the shared preconditioner metric
X̃ᵀ diag(g) X̃ / Σ g; per-member weights (L, n) (cross-validation folds as 0/1 masks) multiply
them in each member's data term only, so all folds share one preconditioner (it need not be
exact) and one compiled program.

θ = [W; b] is one array, (p,) or (p, C) with p = d + 1 (d without intercept); ``mask`` (p,) or
(p, 1) is 1 on penalised rows. The scores s = X̃θ are linear in θ, so a line search along d
costs one product X̃d.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import losses, tree, validation, weights
from jaxreg.objective import Objective

SMOOTH_LOSSES = tuple(name for name, rec in losses.LOSSES.items() if rec.smooth)


class SolverResult(NamedTuple):
    """Results with a leading λ axis of length L = len(lambdas).

    params: ``{"W": (L, d[, C]), "b": (L[, C])}`` ("b" only with an intercept); value: J at
    params (L,); n_iter: iterations (L,) int; converged: (L,) bool; optimality: the final
    stopping measure (L,): ‖∇J‖∞ (L2) or ‖G‖∞ (L1).
    """

    params: Any
    value: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    optimality: jax.Array


class _Data(NamedTuple):
    Xa: jax.Array     # (n, p): X with a trailing column of ones if fit_intercept
    XaT: jax.Array    # (p, n): its transpose, stored
    y: jax.Array      # (n,)
    mask: jax.Array   # (p,) or (p, 1): 1 on penalised rows of θ
    scale: jax.Array  # 1/n (mean) or 1 (sum); with weights 1/Σw (mean); () or (L,) per member
    w: Any = None     # None (unweighted), (n,) shared or (L, n) per-member weights
    gram_w: Any = None  # (n,) weights g of the shared preconditioner metric (None: unweighted)
    gram_scale: Any = None  # 1/Σg (mean) or 1 (sum): the metric is X̃ᵀ diag(g) X̃ · gram_scale

    @property
    def member_axes(self):
        """``in_axes`` of this data for ``jax.vmap`` over the members: only per-member weights
        (and their scales) are batched."""
        b = 0 if self.w is not None and self.w.ndim == 2 else None
        return _Data(None, None, None, None, b, b, None, None)


def vdot(a, b):
    """Σ a·b over every entry (θ is one array here: (p,) or (p, C))."""
    return jnp.sum(a * b)


def _per_row(w, like):
    return w[:, None] if like.ndim == 2 else w


def loss_value(obj, data, s):
    """The data term reduce_n ℓ(s_n, y_n) from the scores s = X̃θ (weighted if ``data.w``)."""
    return losses.reduce_losses(obj.record.value(s, data.y), obj.reduction, data.w)


def loss_grad(obj, data, s):
    """∇_θ of the data term from the scores: scale · X̃ᵀ r, r = ∂ℓ/∂s (r ← w ⊙ r with weights)."""
    r = losses.residual_of(obj.record, s, data.y)
    if data.w is not None:
        r = r * _per_row(data.w, r)
    return data.scale * (data.XaT @ r)


def mean_curvature(obj, s, w=None):
    """c with X̃ᵀ diag(ℓ''(s)) X̃ ≈ c X̃ᵀX̃: the (weighted) mean of the loss's ``curvature_at``
    (p(1 − p) over every class), at least 1e-4 of the bound; the bound itself (2 squared) where
    there is none."""
    c0 = obj.record.curvature
    if obj.record.curvature_at is None:
        return jnp.asarray(c0, s.dtype)
    c = obj.record.curvature_at(s)
    mean = jnp.mean(c) if w is None else jnp.sum(c * _per_row(w, c)) / (jnp.sum(w) * (c.size // w.size))
    return jnp.maximum(mean, 1e-4 * c0)


def rows_weighted(data, v):
    """g ⊙ v over the rows (v: (n,) or (n, k)) for the preconditioner's weights g (v if none)."""
    return v if data.gram_w is None else v * _per_row(data.gram_w, v)


def lane_loop(parts, lams, theta0, max_iter, tol, key: str = "theta"):
    """Run the tasks ``lams`` (a (T,) array, or a tuple of them) of one lane in one while_loop.

    ``parts`` = (init(θ, λ) -> state, step(state) -> state, finish(θ, λ, measure) -> (J,
    measure), restart(state, λ) -> state); ``state[key]`` is the iterate. When the current task
    stops (``done`` or ``max_iter`` steps) its iterate, step count and stopping measure are
    recorded and the lane restarts at the next λ from that iterate (a warm start). Returns
    (θ (T, ...), J (T,), steps (T,), converged (T,), measure (T,)), J from scratch."""
    init, step, finish, restart = parts
    at = lambda i: jax.tree_util.tree_map(lambda a: a[i], lams)  # noqa: E731
    T = jax.tree_util.tree_leaves(lams)[0].shape[0]
    out = (jnp.zeros((T,) + theta0.shape, theta0.dtype), jnp.zeros(T, jnp.int32), jnp.zeros(T, theta0.dtype))

    def body(c):
        st, idx, out = c
        fin = st["done"] | (st["k"] >= max_iter)
        out = tuple(o.at[idx].set(jnp.where(fin, v, o[idx])) for o, v in zip(out, (st[key], st["k"], st["meas"])))
        st = tree.where(fin, restart(st, at(jnp.minimum(idx + 1, T - 1))), st)
        return step(st), idx + fin.astype(jnp.int32), out

    _, _, (theta, k, meas) = jax.lax.while_loop(lambda c: c[1] < T, body, (init(theta0, at(0)), jnp.int32(0), out))
    value, meas = jax.vmap(finish)(theta, lams, meas)
    return theta, value, k, meas <= tol, meas


def freeze(done, old, new):
    """A stopped member keeps its state (``tree.where(done, old, new)``)."""
    return tree.where(done, old, new)


def check_member_weights(member_weights, base, L: int, n: int):
    """(L, n) per-member weights (times the batch's weights ``base``), each row non-negative,
    finite and not all zero; ValueError naming ``member_weights`` otherwise."""
    mw = np.asarray(member_weights, np.float64)
    if mw.shape != (L, n):
        raise ValueError(f"member_weights must have shape ({L}, {n}): one weight row per lambda, got {mw.shape}")
    if not np.all(np.isfinite(mw)) or np.any(mw < 0):
        raise ValueError("member_weights must be finite and non-negative")
    mw = mw if base is None else mw * base
    empty = np.flatnonzero(~(mw.sum(axis=1) > 0))
    if empty.size:
        raise ValueError(f"member_weights rows {empty[:5].tolist()} give every example zero weight")
    return mw


def prepare(objective, batch, lambdas, tol, tol64, max_iter, init, dtype, member_weights=None, *,
            solver: str = "this solver", loss_fields=()):
    """Validate at the boundary (plain Python/NumPy, before jit); build the augmented data.

    ``loss_fields``: the :class:`~jaxreg.losses.Loss` fields the calling ``solver`` reads (its
    ``LOSS_FIELDS``); a loss that is not smooth or lacks one is refused by name.

    Weights: ``batch.weight`` (n,) weighs every member's data term and the shared preconditioner;
    ``member_weights`` (L, n) multiplies it per member (a cross-validation fold's 0/1 mask).
    """
    if not isinstance(objective, Objective):
        raise ValueError(f"objective must be an Objective with a smooth loss (e.g. {SMOOTH_LOSSES}), "
                         f"got {type(objective).__name__}")
    losses.require_fields(objective.record, loss_fields, solver)
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(f"batch must be a Batch(X, y[, weight]) or an (X, y) pair, got {type(batch).__name__}")
    X, y = validation.check_batch(batch[0], batch[1], objective, names=("batch.X", "batch.y"))
    if objective.is_classifier and np.unique(y).size < 2:  # as scikit-learn: no finite minimiser
        raise ValueError(f"batch.y holds a single class ({y[0]:g}); a classifier needs examples of at least "
                         "2 classes")
    base = batch[2] if len(batch) == 3 else None
    base = None if base is None else weights.check_sample_weight(base, X.shape[0], "batch.weight")
    lam = check_lambdas(lambdas)
    mw = None if member_weights is None else check_member_weights(member_weights, base, lam.shape[0], X.shape[0])
    max_iter = validation.check_scalar(max_iter, "max_iter", low=1, integer=True)
    dtype = validation.check_float_dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(X.dtype)
    tol = tol64 if tol is None and dtype == np.float64 else 1e-5 if tol is None else tol
    tol = validation.check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    (n, d), L, C = X.shape, lam.shape[0], objective.n_classes
    w_shape = (d, C) if objective.is_multiclass else (d,)
    Xa = np.concatenate([X, np.ones((n, 1), X.dtype)], 1) if objective.fit_intercept else X
    mask = np.ones(Xa.shape[1], dtype)
    mask[-1] = 0.0 if objective.fit_intercept and not objective.penalize_intercept else 1.0
    theta = np.zeros((L, Xa.shape[1]) + w_shape[1:], dtype)
    if init is not None:
        if not isinstance(init, dict) or set(init) != ({"W", "b"} if objective.fit_intercept else {"W"}):
            raise ValueError("init must be a params dict with the keys of objective.init_params(d)")
        for key, shape, rows in (("W", w_shape, slice(0, d)), ("b", w_shape[1:], d))[:len(init)]:
            v = np.asarray(init[key], dtype)
            if v.shape not in (shape, (L,) + shape):
                raise ValueError(f"init[{key!r}] must have shape {shape} or {(L,) + shape}, "
                                 f"got {v.shape}")
            theta[:, rows] = v
    Xa_host = np.asarray(Xa, dtype)
    Xa = tree.to_device(Xa_host)
    mean = objective.reduction == losses.MEAN
    scale = tree.to_device((1.0 / n if base is None else 1.0 / base.sum()) if mean else 1.0, dtype)
    w, gram_w = (None, None) if base is None else (tree.to_device(base, dtype),) * 2
    member_scale = scale
    if mw is not None:
        w = tree.to_device(mw, dtype)
        member_scale = tree.to_device(1.0 / mw.sum(axis=1) if mean else np.ones(L), dtype)
    data = _Data(Xa, tree.to_device(np.ascontiguousarray(Xa_host.T)),
                 tree.to_device(y, jnp.int32 if objective.is_multiclass else dtype),
                 tree.to_device(mask[:, None] if objective.is_multiclass else mask), member_scale, w, gram_w, scale)
    return data, tree.to_device(lam, dtype), tree.to_device(theta), max_iter, d, dtype, tol


def check_lambdas(lambdas, name: str = "lambdas") -> np.ndarray:
    """(L,) values (one per member) or (L, T) (T tasks per lane, solved in turn with warm
    starts), each ≥ 0 and finite."""
    try:
        arr = np.asarray(lambdas, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be real numbers, shape (L,) or (L, T), got {lambdas!r}") from None
    if arr.ndim > 2:
        raise ValueError(f"{name} must have shape (L,) (one per member) or (L, T) (lanes of tasks), got {arr.shape}")
    if arr.ndim == 2 and arr.size:
        validation.check_values(arr.ravel(), name, low=0.0)
        return arr
    return validation.check_values(lambdas, name, low=0.0)


class ConvergenceWarning(UserWarning):
    """A solver's answer is not a minimiser (scikit-learn's name for its warning)."""


def separated(objective, data, theta, unpenalised) -> np.ndarray:
    """(M,) bool: members (or lane tasks, flattened) with no penalty (``unpenalised`` (M,)) whose
    θ (M, p[, C]) classifies every training example of positive weight with a positive margin.
    The data are then separable, so the loss has no minimum: it tends to 0 as ‖W‖ → ∞ along θ
    (exact: a θ with all margins > 0 proves separability)."""
    out = np.zeros(len(unpenalised), bool)
    if objective.record.target == "real" or not np.any(unpenalised):
        return out
    Xa, y, th = np.asarray(data.Xa, np.float64), np.asarray(data.y).astype(int), np.asarray(theta, np.float64)
    w = None if data.w is None else np.asarray(data.w)
    per_task = th.shape[0] // (1 if w is None or w.ndim == 1 else w.shape[0])  # lane tasks per member row of w
    for i in np.flatnonzero(unpenalised):
        s = Xa @ th[i]
        if objective.is_multiclass:
            true = np.take_along_axis(s, y[:, None], 1)[:, 0]
            margin = true - np.max(np.where(np.eye(s.shape[1], dtype=bool)[y], -np.inf, s), axis=1)
        else:
            margin = (2 * y - 1) * s
        keep = slice(None) if w is None else (w if w.ndim == 1 else w[i // per_task]) > 0
        out[i] = bool(np.all(margin[keep] > 0))
    return out


def result(objective, d, theta, *rest, data=None, unpenalised=None, solver="solver"):
    """θ (..., p[, C]) split into {"W", "b"} with the leading (member[, task]) axes kept; NumPy
    arrays (slicing on the host compiles nothing). With ``data`` and ``unpenalised`` (bool, the
    leading axes of θ: λ₁ = λ₂ = 0), a member on separable data (:func:`separated`) is marked not
    converged, with a :class:`ConvergenceWarning` naming its ``lambdas`` entry."""
    theta, rest = np.asarray(theta), [np.asarray(r) for r in rest]
    if data is not None:
        lead = theta.shape[:np.ndim(unpenalised)]
        flat = theta.reshape((-1,) + theta.shape[len(lead):])
        bad = separated(objective, data, flat, np.asarray(unpenalised).ravel()).reshape(lead)
        if bad.any():
            import warnings

            W = np.abs(theta[bad]).max()
            idx = ", ".join(f"lambdas[{', '.join(map(str, i))}]" for i in zip(*np.nonzero(bad)))
            warnings.warn(f"{solver}: {idx} = 0 and the training data are linearly separable: the loss has no "
                          f"minimum (it tends to 0 as ||W|| grows), so the weights returned (max |W| = {W:.3g}) "
                          "depend on tol and max_iter; converged is False for them. Use a penalty > 0.",
                          ConvergenceWarning, stacklevel=3)
            rest[2] = rest[2] & ~bad
    cut = (Ellipsis, slice(0, d)) + ((slice(None),) if objective.is_multiclass else ())
    bias = (Ellipsis, d) + ((slice(None),) if objective.is_multiclass else ())
    params = {"W": theta[cut], **({"b": theta[bias]} if objective.fit_intercept else {})}
    return SolverResult(params, *rest)


