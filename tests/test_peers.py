"""The peers solve jaxreg's problem: every peer's path reaches jaxreg's tight optimum (float64),
and the tolerance search finds the loosest matching tolerance."""
import numpy as np
import pytest

from jaxreg import Batch, Objective, peers
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


def test_loosest_tolerance_by_hand():
    ref = np.array([1.0, 2.0])
    values = {1e-2: [1.1, 2.0], 1e-4: [1.0 + 5e-7, 2.0], 1e-6: [1.0, 2.0]}
    tol, gap, tried = peers.loosest_tolerance(lambda t: t, lambda t: np.array(values[t]), ref, [1e-2, 1e-4, 1e-6])
    assert tol == 1e-4 and gap == pytest.approx(5e-7) and len(tried) == 2
    tol, gap, _ = peers.loosest_tolerance(lambda t: t, lambda t: np.array([1.5, 3.0]), ref, [1e-2])
    assert tol is None and gap == pytest.approx(0.5)


def test_bad_input():
    obj, X, y = problem("logistic")
    with pytest.raises(ValueError, match="peer"):
        peers.fit_path("glmnet", obj, X, y, "l2", LAMS, tol=1e-4, max_iter=10)
    with pytest.raises(ValueError, match="celer"):
        peers.fit_path("celer", obj, X, y, "l2", LAMS, tol=1e-4, max_iter=10)
    with pytest.raises(ValueError, match="fit_intercept"):
        peers.fit_path("skglm", Objective("logistic"), X, y, "l1", LAMS, tol=1e-4, max_iter=10)
