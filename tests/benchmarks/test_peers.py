"""The peers solve jaxreg's problem: every peer's path reaches jaxreg's tight optimum (float64),
and the tolerance search finds the loosest matching tolerance."""
import numpy as np
import pytest

from experiments.benchmarks import peers
from jaxreg import Batch, Objective
from jaxreg.solvers import solve_l1_path, solve_l2_path

LAMS = [0.1, 0.01]


def problem(loss):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8))
    if loss == "logistic":
        return Objective("logistic", fit_intercept=False), X, (X @ rng.normal(size=8) + rng.normal(size=200) > 0) * 1.0
    return Objective("softmax", 3, fit_intercept=False), X, np.argmax(X[:, :3] + rng.normal(size=(200, 3)), axis=1)


@pytest.mark.parametrize("peer, loss, kind", [
    ("sklearn-lbfgs", "logistic", "l2"), ("sklearn-lbfgs", "softmax", "l2"), ("jaxopt-lbfgs", "softmax", "l2"),
    ("sklearn-saga", "logistic", "l1"), ("celer", "logistic", "l1"), ("skglm", "logistic", "l1"),
    ("jaxopt-proxgrad", "logistic", "l1")])
def test_each_peer_reaches_jaxregs_optimum(peer, loss, kind):
    obj, X, y = problem(loss)
    solve = solve_l2_path if kind == "l2" else solve_l1_path
    ref = peers.objectives(obj, solve(obj, Batch(X, y), LAMS, tol=1e-12, max_iter=100_000).params["W"], X, y, kind, LAMS)
    W = peers.fit_path(peer, obj, X, y, kind, LAMS, tol=1e-10, max_iter=100_000)
    assert W.shape == (2,) + obj.param_shapes(8)["W"]
    gap = peers.relative_gap(peers.objectives(obj, W, X, y, kind, LAMS), ref)
    assert np.all(np.abs(gap) <= 1e-6), gap  # the same problem: the same optimum


def test_match_tolerance_by_hand():
    ref = np.array([1.0, 2.0])
    values = {1e-2: [1.1, 2.0], 1e-4: [1.0 + 5e-7, 2.0], 1e-6: [1.0, 2.0]}
    m = peers.match_tolerance(lambda t: t, lambda t: np.array(values[t]), ref, [1e-2, 1e-4, 1e-6])
    assert m["tol"] == 1e-4 and m["gap"] == pytest.approx(5e-7) and len(m["tried"]) == 2 and m["seconds"] >= 0
    m = peers.match_tolerance(lambda t: t, lambda t: np.array([1.5, 3.0]), ref, [1e-2])
    assert m["tol"] is None and m["gap"] == pytest.approx(0.5) and m["seconds"] is None


def test_match_tolerance_stops_at_the_cap():
    import time

    def slow(t):
        time.sleep(0.05)
        return np.array([1.1, 2.0])
    m = peers.match_tolerance(slow, lambda v: v, np.array([1.0, 2.0]), [1e-1, 1e-2, 1e-3, 1e-4, 1e-5], cap_s=0.01)
    assert m["tol"] is None and len(m["tried"]) == 2  # the first try is free, the second uses up the cap


def test_handwritten_sweep_is_gradient_descent():
    """One epoch by hand: W₁ = −η ∇J(0) = −η Xᵀ(1/C − Y)/n (the penalties vanish at 0)."""
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    Y = np.eye(3)[y]
    W = peers.handwritten_sweep(jnp.array([0.5, 1.0]), jnp.zeros(2), jnp.zeros(2), X, Y, n_epochs=1)
    expect = -X.T @ (np.full((30, 3), 1 / 3) - Y) / 30
    np.testing.assert_allclose(np.asarray(W), [0.5 * expect, expect], rtol=1e-10)


def test_bad_input():
    obj, X, y = problem("logistic")
    with pytest.raises(ValueError, match="peer"):
        peers.fit_path("glmnet", obj, X, y, "l2", LAMS, tol=1e-4, max_iter=10)
    with pytest.raises(ValueError, match="celer"):
        peers.fit_path("celer", obj, X, y, "l2", LAMS, tol=1e-4, max_iter=10)
    with pytest.raises(ValueError, match="fit_intercept"):
        peers.fit_path("skglm", Objective("logistic"), X, y, "l1", LAMS, tol=1e-4, max_iter=10)
