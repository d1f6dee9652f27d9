"""The peers jaxreg is measured against, each fitting a whole λ path of the same problem.

Every peer minimises jaxreg's objective without an intercept (so all solve exactly the same
problem, :mod:`jaxreg.objective`)::

    J(W) = (1/n) Σ_n ℓ(x_n W, y_n) + (λ₂/2)‖W‖²      ("l2": logistic or softmax)
    J(w) = (1/n) Σ_n ℓ(x_n w, y_n) + λ₁‖w‖₁           ("l1": binary logistic)

mapped onto each peer's own parametrisation: scikit-learn's and celer's ``C = 1/(nλ)``, skglm's
``alpha = λ``, jaxopt's ``l2reg``/``l1reg = λ``. :func:`fit_path` returns the weights ``(L, d)``
or ``(L, d, C)`` for the λ of ``lambdas`` at the peer's own tolerance ``tol`` (its own stopping
measure: a gradient norm, a duality gap, a fixed-point residual); the benchmark then finds, per
peer, the loosest ``tol`` that reaches a reference objective (:func:`match_tolerance`).
:func:`handwritten_sweep` is the grid a user would write by hand, the sweep engine's peer.

scikit-learn, celer, skglm and jaxopt are optional: each is imported when its peer is used.
"""
from __future__ import annotations

import time
import warnings
from functools import lru_cache, partial
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import validation
from jaxreg.objective import Batch, Objective, Penalty

from experiments.benchmarks.reference import sklearn_fit, value64

# peer -> (penalties it fits, losses it fits)
PEERS = {
    "sklearn-lbfgs": (("l2",), ("logistic", "softmax")),
    "sklearn-saga": (("l1",), ("logistic",)),
    "celer": (("l1",), ("logistic",)),
    "skglm": (("l1",), ("logistic",)),
    "jaxopt-lbfgs": (("l2",), ("logistic", "softmax")),
    "jaxopt-proxgrad": (("l1",), ("logistic",)),
}


def _check(peer: str, objective: Objective, kind: str):
    if peer not in PEERS:
        raise ValueError(f"peer must be one of {tuple(PEERS)}, got {peer!r}")
    kinds, loss_names = PEERS[peer]
    if kind not in kinds or objective.loss not in loss_names:
        raise ValueError(f"peer {peer!r} fits {kinds} penalties of {loss_names} losses, got kind={kind!r}, "
                         f"loss={objective.loss!r}")
    if objective.fit_intercept or objective.reduction != "mean":
        raise ValueError("objective must have fit_intercept=False and reduction='mean' (the problem every peer solves)")


def _sklearn(objective, X, y, kind, lambdas, tol, max_iter):
    return np.stack([sklearn_fit(objective, X, y, kind, lam, tol=tol, max_iter=max_iter)["W"] for lam in lambdas])


def _celer(objective, X, y, kind, lambdas, tol, max_iter):
    import celer

    out = []
    for lam in lambdas:
        model = celer.LogisticRegression(C=1.0 / (X.shape[0] * lam), fit_intercept=False, tol=tol, max_iter=max_iter)
        out.append(model.fit(X, y).coef_[0])
    return np.stack(out)


def _skglm(objective, X, y, kind, lambdas, tol, max_iter):
    import skglm

    out = []
    for lam in lambdas:
        model = skglm.SparseLogisticRegression(alpha=lam, fit_intercept=False, tol=tol, max_iter=max_iter)
        out.append(model.fit(X, y).coef_[0])
    return np.stack(out)


@lru_cache(maxsize=64)
def jaxopt_path_program(objective: Objective, kind: str, tol: float, max_iter: int) -> Callable:
    """One program per (objective, kind, tol, max_iter), kept, so that a second call does not
    compile again: ``jit(vmap over λ of jaxopt's solver.run)``: ``(lambdas, X, y) -> W (L, ...)`` from zeros —
    the "hand-written jax.vmap over jaxopt" a user would write. LBFGS for "l2",
    ProximalGradient with ``prox_lasso`` for "l1"."""
    import jaxopt

    if kind == "l2":
        solver = jaxopt.LBFGS(fun=lambda W, lam, X, y: objective.value({"W": W}, Penalty(l2=lam), Batch(X, y)),
                              tol=tol, maxiter=max_iter)
        run = lambda lam, W0, X, y: solver.run(W0, lam, X, y).params  # noqa: E731
    else:
        solver = jaxopt.ProximalGradient(fun=lambda W, X, y: objective.data_loss({"W": W}, Batch(X, y)),
                                         prox=jaxopt.prox.prox_lasso, tol=tol, maxiter=max_iter)
        run = lambda lam, W0, X, y: solver.run(W0, hyperparams_prox=lam, X=X, y=y).params  # noqa: E731

    @jax.jit
    def path(lambdas, X, y):
        W0 = jnp.zeros(objective.param_shapes(X.shape[1])["W"], X.dtype)
        return jax.vmap(run, in_axes=(0, None, None, None))(lambdas, W0, X, y)

    return path


def _jaxopt(objective, X, y, kind, lambdas, tol, max_iter):
    X = jnp.asarray(X)
    path = jaxopt_path_program(objective, kind, float(tol), int(max_iter))
    return np.asarray(path(jnp.asarray(lambdas, X.dtype), X, jnp.asarray(y)))


_FIT = {"sklearn-lbfgs": _sklearn, "sklearn-saga": _sklearn, "celer": _celer, "skglm": _skglm,
        "jaxopt-lbfgs": _jaxopt, "jaxopt-proxgrad": _jaxopt}


def fit_path(peer: str, objective: Objective, X, y, kind: str, lambdas: Sequence[float], *, tol: float,
             max_iter: int) -> np.ndarray:
    """The weights ``(L, d)`` / ``(L, d, C)`` peer ``peer`` finds for each λ of ``lambdas`` at its
    tolerance ``tol`` (at most ``max_iter`` of its iterations; convergence warnings silenced)."""
    _check(peer, objective, kind)
    lambdas = validation.check_values(lambdas, "lambdas", low=0.0, low_inclusive=False)
    tol = validation.check_scalar(tol, "tol", low=0.0, low_inclusive=False)
    max_iter = validation.check_scalar(max_iter, "max_iter", low=1, integer=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _FIT[peer](objective, np.asarray(X), np.asarray(y), kind, lambdas, tol, max_iter)


def objectives(objective: Objective, W, X, y, kind: str, lambdas) -> np.ndarray:
    """J (float64) at each ``W[i]`` for ``lambdas[i]``."""
    pen = (lambda lam: Penalty(l2=lam)) if kind == "l2" else (lambda lam: Penalty(l1=lam))
    return np.asarray([value64(objective, {"W": w}, pen(lam), X, y) for w, lam in zip(W, lambdas)])


def relative_gap(values, reference) -> np.ndarray:
    """(J − J*)/|J*| per λ (negative: better than the reference)."""
    values, reference = np.asarray(values, np.float64), np.asarray(reference, np.float64)
    return (values - reference) / np.abs(reference)


def match_tolerance(fit: Callable[[float], np.ndarray], value: Callable[[np.ndarray], np.ndarray], reference,
                    ladder: Sequence[float], rel: float = 1e-6, cap_s: float = float("inf")) -> dict:
    """Matched accuracy: try the tolerances of ``ladder`` (loose to tight) until ``value(fit(tol))``
    is within ``rel`` of ``reference`` for every λ (the loosest matching tolerance).

    Returns ``{"tol", "gap", "seconds", "values", "tried"}``: the matching tolerance (None when
    none does, or when the tries after the first exceed ``cap_s`` seconds: the peer fails the
    match), the largest relative gap there (the best reached when failing), the wall seconds of
    that fit, its objectives, and ``[(tol, gap, seconds)]`` for every tolerance tried. The cap
    counts from the second try, so that a first call's compilation does not use it up."""
    rel = validation.check_scalar(rel, "rel", low=0.0, low_inclusive=False)
    tried, values, spent = [], {}, 0.0
    for tol in ladder:
        if len(tried) > 1 and spent > cap_s:
            break
        t = time.perf_counter()
        values[tol] = np.asarray(value(fit(tol)), np.float64)
        seconds = time.perf_counter() - t
        spent += seconds if tried else 0.0
        tried.append((float(tol), float(np.max(relative_gap(values[tol], reference))), seconds))
        if tried[-1][1] <= rel:
            return {"tol": float(tol), "gap": tried[-1][1], "seconds": seconds, "values": values[tol], "tried": tried}
    best = min(range(len(tried)), key=lambda k: tried[k][1])
    return {"tol": None, "gap": tried[best][1], "seconds": None, "values": values[tried[best][0]], "tried": tried}


@partial(jax.jit, static_argnames="n_epochs")
def handwritten_sweep(learning_rate, l2, l1, X, Y, n_epochs: int):
    """The minimal grid a JAX user writes by hand: ``jit(vmap(lax.scan))`` of full-batch gradient
    descent on the mean softmax cross-entropy (``jax.grad``) plus λ₂‖W‖²/2 + λ₁‖W‖₁, from zeros,
    data as arguments. learning_rate, l2, l1: (G,); X (n, d); Y (n, C) one-hot -> W (G, d, C)."""
    def one(lr, lam2, lam1):
        def loss(W):
            S = X @ W
            return jnp.mean(jax.nn.logsumexp(S, axis=1) - jnp.sum(Y * S, axis=1))

        def step(W, _):
            return W - lr * (jax.grad(loss)(W) + lam2 * W + lam1 * jnp.sign(W)), None
        return jax.lax.scan(step, jnp.zeros((X.shape[1], Y.shape[1]), X.dtype), None, length=n_epochs)[0]
    return jax.vmap(one)(learning_rate, l2, l1)
