"""experiments.benchmarks.reference: scikit-learn fits at jaxreg's λ, and the objective in float64. Expected
values from NumPy written out here (the stationarity condition, the objective's formula)."""
import numpy as np
import pytest

from experiments.benchmarks.reference import numpy_softmax_gd, sklearn_fit, value64
from jaxreg import Objective, Penalty

pytest.importorskip("sklearn")


@pytest.fixture
def problem(rng):
    X = rng.normal(size=(80, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=80) > 0).astype(np.float64)
    return X, y


def _sigmoid(s):
    return 1 / (1 + np.exp(-s))


def test_value64_is_the_objective_by_hand(problem, rng):
    X, y = problem
    W, b = rng.normal(size=4).astype(np.float32), np.float32(0.3)
    s = X @ W.astype(np.float64) + float(b)
    loss = np.mean(np.logaddexp(0, s) - y * s)
    expected = loss + 0.5 * 0.1 * np.sum(W.astype(np.float64) ** 2) + 0.02 * np.sum(np.abs(W.astype(np.float64)))
    got = value64(Objective("logistic"), {"W": W, "b": b}, Penalty(l2=0.1, l1=0.02), X, y)
    assert got == pytest.approx(expected, rel=1e-12)


def test_sklearn_l2_fit_is_stationary_in_jaxregs_convention(problem):
    X, y = problem
    lam = 0.05
    p = sklearn_fit(Objective("logistic"), X, y, "l2", lam, tol=1e-10)
    r = _sigmoid(X @ p["W"] + p["b"]) - y
    # ∇J = Xᵀ(σ − y)/n + λW (the bias unpenalised): zero at the optimum, if C = 1/(nλ)
    np.testing.assert_allclose(X.T @ r / len(y) + lam * p["W"], 0, atol=1e-6)
    assert abs(np.mean(r)) < 1e-6


def test_sklearn_l1_fit_meets_the_subgradient_condition(problem):
    X, y = problem
    lam = 0.05
    p = sklearn_fit(Objective("logistic", fit_intercept=False), X, y, "l1", lam, tol=1e-10, max_iter=100_000)
    assert set(p) == {"W"}
    g = X.T @ (_sigmoid(X @ p["W"]) - y) / len(y)
    nz = np.abs(p["W"]) > 1e-8
    np.testing.assert_allclose(g[nz], -lam * np.sign(p["W"][nz]), atol=1e-4)
    assert np.all(np.abs(g[~nz]) <= lam + 1e-4)


def test_sklearn_fit_multiclass_shapes_and_bad_input(problem, rng):
    X, _ = problem
    y = rng.integers(0, 3, len(X))
    p = sklearn_fit(Objective("softmax", n_classes=3), X, y, "l2", 0.1)
    assert p["W"].shape == (4, 3) and p["b"].shape == (3,)
    with pytest.raises(ValueError, match="kind"):
        sklearn_fit(Objective("logistic"), X, y % 2, "elastic", 0.1)
    with pytest.raises(ValueError, match="lam"):
        sklearn_fit(Objective("logistic"), X, y % 2, "l2", 0.0)
    with pytest.raises(ValueError, match="objective.loss"):
        sklearn_fit(Objective("squared"), X, y, "l2", 0.1)


def test_numpy_softmax_gd_by_hand_and_equal_to_jaxregs_trainer(rng, x64):
    from jaxreg.config import Hyper, TrainConfig
    from jaxreg.prepare import prepare_data
    from jaxreg.trainer import train

    X = rng.normal(size=(30, 5))
    y = rng.integers(0, 3, 30)
    Y = np.eye(3)[y]
    W1 = -0.5 * (X.T @ (np.full((30, 3), 1 / 3) - Y) / 30)  # one step from zeros: softmax(0) = 1/3
    np.testing.assert_allclose(numpy_softmax_gd(X, Y, 0.5, 0.0, 0.0, 1), W1, rtol=1e-14)
    obj = Objective("softmax", n_classes=3, fit_intercept=False)
    cfg = TrainConfig("full_batch", n_epochs=25)
    for l2, l1 in ((0.1, 0.0), (0.0, 0.05)):
        W = numpy_softmax_gd(X, Y, 0.5, l2, l1, 25)
        out = train(obj, prepare_data(obj, cfg, X, y), Hyper(learning_rate=0.5, l2=l2, l1=l1), cfg)
        np.testing.assert_allclose(out.params["W"], W, rtol=1e-10, atol=1e-12)
