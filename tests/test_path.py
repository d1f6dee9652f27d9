"""Regularisation paths (jaxreg.solvers.path) and weighted solvers, float64: λ_max is exactly the
edge of the all-zero solution, glmnet's grid, per-member weights = separate solves on the rows,
integer weights = repeated rows, warm-started lanes = the cold path, elastic net = scikit-learn."""
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from jaxreg import Batch, Objective, lambda_to_sklearn_C
from jaxreg.solvers import solve_l1_path, solve_l2_path
from jaxreg.solvers.path import (intercept_only, lambda_max, lambda_path, solve_members, solve_path,
                                 straggler_fraction)

N, D = 120, 6


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(N, D)) * rng.uniform(0.5, 2.0, size=D)
    y = (X @ rng.normal(size=D) + rng.normal(size=N) > 0.4).astype(np.float64)
    return X, y, rng.uniform(0.0, 2.0, size=N)


@pytest.mark.parametrize("loss", ["logistic", "softmax", "squared"])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_lambda_max_is_the_edge_of_the_zero_solution(binary, loss, alpha, x64):
    X, y, w = binary
    obj = Objective(loss, n_classes=3) if loss == "softmax" else Objective(loss)
    yy = {"logistic": y, "softmax": (X[:, 0] > 0).astype(int) + (X[:, 1] > 1), "squared": X[:, 0] + y}[loss]
    batch = Batch(X, yy, w)
    top = lambda_max(obj, batch, alpha)
    res = solve_members(obj, batch, alpha * top * np.array([1.001, 0.99]), (1 - alpha) * top * np.array([1.001, 0.99]),
                        tol=1e-10)
    W = np.abs(res.params["W"]).reshape(2, -1).max(axis=1)
    assert W[0] == 0.0 and W[1] > 1e-4, W
    # the intercept-only start is the optimal b (softmax: up to a constant shift of all classes)
    b = intercept_only(obj, yy, w)["b"]
    centre = (lambda v: v - np.mean(v)) if loss == "softmax" else (lambda v: v)
    np.testing.assert_allclose(centre(res.params["b"][0]), centre(b), atol=1e-8)


def test_lambda_path_follows_glmnet_defaults(binary, x64):
    X, y, _ = binary
    obj = Objective("logistic")
    lams = lambda_path(obj, Batch(X, y))
    assert lams.shape == (100,) and lams[0] == pytest.approx(lambda_max(obj, Batch(X, y)), rel=1e-14)
    assert lams[-1] == pytest.approx(1e-4 * lams[0], rel=1e-12)  # n ≥ d: ratio 1e-4
    np.testing.assert_allclose(np.diff(np.log(lams)), np.log(1e-4) / 99, rtol=1e-10)
    wide = lambda_path(obj, Batch(X[:5], y[:5]), n_lambdas=3)  # n < d: ratio 1e-2
    assert wide[-1] / wide[0] == pytest.approx(1e-2, rel=1e-12)
    # ridge: α floored at 1e-3 as glmnet does
    assert lambda_max(obj, Batch(X, y), 0.0) == pytest.approx(1e3 * lams[0], rel=1e-12)


@pytest.mark.parametrize("solver", ["l2", "l1"])
def test_member_weights_equal_separate_solves_and_integer_weights_equal_repeats(binary, solver, x64):
    X, y, _ = binary
    obj = Objective("logistic")
    solve = solve_l2_path if solver == "l2" else solve_l1_path
    masks = np.ones((2, N))
    masks[0, :40], masks[1, 40:80] = 0, 0
    lam = [0.02, 0.01]
    res = solve(obj, Batch(X, y), lam, member_weights=masks, tol=1e-10)
    for k in range(2):
        keep = masks[k] > 0
        alone = solve(obj, Batch(X[keep], y[keep]), [lam[k]], tol=1e-10)
        np.testing.assert_allclose(res.params["W"][k], alone.params["W"][0], atol=2e-8)
        np.testing.assert_allclose(res.value[k], alone.value[0], rtol=1e-12)
    counts = np.arange(N) % 3  # 0, 1, 2 copies
    wres = solve(obj, Batch(X, y, counts.astype(float)), [0.01], tol=1e-10)
    rep = solve(obj, Batch(np.repeat(X, counts, 0), np.repeat(y, counts)), [0.01], tol=1e-10)
    np.testing.assert_allclose(wres.params["W"], rep.params["W"], atol=2e-8)
    assert np.all(res.converged) and np.all(wres.converged)


def test_warm_started_blocks_solve_the_same_path(binary, x64):
    X, y, _ = binary
    obj = Objective("logistic")
    masks = np.ones((2, N))
    masks[1, ::2] = 0
    cold = solve_path(obj, Batch(X, y), l1_ratio=0.5, n_lambdas=8, member_weights=masks, tol=1e-10, n_blocks=8)
    for blocks in (1, 3):  # one lane of 8 λ per weight row; 3 lanes of 3 (the last padded)
        warm = solve_path(obj, Batch(X, y), l1_ratio=0.5, n_lambdas=8, member_weights=masks, tol=1e-10,
                          n_blocks=blocks)
        assert warm.result.params["W"].shape == (2, 8, D) and warm.n_blocks == blocks
        np.testing.assert_allclose(warm.result.params["W"], cold.result.params["W"], atol=1e-7)
        assert np.all(warm.result.converged)
    # warm starts pay: the sequential lanes need fewer iterations in all than the cold solve
    assert warm.result.n_iter.sum() < cold.result.n_iter.sum()
    # the first λ is λ_max of all rows: member 0 (all rows) sits at the edge of the zero solution
    assert np.max(np.abs(cold.result.params["W"][0, 0])) < 1e-10
    assert straggler_fraction([10, 10]) == 0.0 and straggler_fraction([1, 3]) == pytest.approx(1 / 3)


def test_elastic_net_matches_scikit_learn_saga(binary, x64):
    X, y, _ = binary
    obj = Objective("logistic")
    lam, alpha = 0.02, 0.4
    res = solve_members(obj, Batch(X, y), [alpha * lam], [(1 - alpha) * lam], tol=1e-11)
    est = LogisticRegression(C=lambda_to_sklearn_C(lam, N), l1_ratio=alpha, solver="saga", tol=1e-12,
                             max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    ours = np.concatenate([res.params["W"][0], [res.params["b"][0]]])
    theirs = np.concatenate([est.coef_[0], est.intercept_])
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-6


@pytest.mark.parametrize("call,match", [
    (lambda b: lambda_max(Objective("logistic"), b, 1.5), "l1_ratio must be <= 1"),
    (lambda b: lambda_path(Objective("logistic"), b, lambda_min_ratio=0.0), "lambda_min_ratio must be >"),
    (lambda b: solve_path(Objective("logistic"), b, [0.1, 0.01], n_blocks=3), "n_blocks must be <= 2"),
    (lambda b: solve_members(Objective("logistic"), b, [0.1], [0.1, 0.2]), "one entry per member"),
    (lambda b: solve_l2_path(Objective("logistic"), b, [[0.1, -1.0]]), r"lambdas\[1\] must be >= 0"),
    (lambda b: solve_l2_path(Objective("logistic"), b, [0.1], member_weights=np.zeros((1, N))), "zero weight"),
    (lambda b: solve_l2_path(Objective("logistic"), b, [0.1], member_weights=np.ones((2, N))), r"shape \(1, 120\)"),
    (lambda b: solve_l2_path(Objective("logistic"), b._replace(weight=-np.ones(N)), [0.1]), "non-negative"),
    (lambda b: lambda_max(Objective("logistic"), b._replace(y=np.zeros(N)), 1.0), "every class"),
])
def test_bad_input_is_named(binary, call, match):
    X, y, _ = binary
    with pytest.raises(ValueError, match=match):
        call(Batch(X, y))
