"""Converged path solvers: sklearn parity, vmap = separate solves, failure modes, input checks.

The path tests run in float64 and in float32 (``solve(..., dtype=...)``, the precision the
experiments use); the tolerances per dtype are in ``TOL``. Objectives are always evaluated in
float64 at the returned parameters. Measured in float32 (this problem): optimality ≤ 9.4e-6,
relative objective gap to scikit-learn ≤ 1.2e-7.
"""
import functools
import warnings

import jax

jax.config.update("jax_enable_x64", True)  # also done by conftest.py; needed for 1e-6 parity

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from jaxreg import Batch, Objective, Penalty, lambda_to_sklearn_C  # noqa: E402
from jaxreg.solvers import ConvergenceWarning, SolverResult, solve_l1_path, solve_l2_path  # noqa: E402

LAMS = np.array([1.0, 0.1, 0.01, 0.001])
N, D = 200, 10
DTYPES = ("float64", "float32")
# opt: the solver's stopping measure; parity: relative objective excess over scikit-learn's;
# stat: |∇J| (L2) and KKT residuals (L1) evaluated in float64; value: rtol of the reported J;
# member: a vmapped member vs a separate solve (value rtol, params atol).
TOL = {"float64": dict(l2_opt=1e-8, l1_opt=1e-7, parity=1e-6, l2_stat=1e-8, stat=1e-6, value=1e-12,
                       member_value=1e-10, member_params=1e-5),
       "float32": dict(l2_opt=1e-5, l1_opt=1e-5, parity=1e-6, l2_stat=2e-5, stat=3e-5, value=1e-5,
                       member_value=1e-6, member_params=1e-3)}


def _problem(loss):
    rng = np.random.default_rng(1 if loss == "logistic" else 2)
    X = rng.normal(size=(N, D)) * rng.uniform(0.2, 3.0, size=D) + rng.normal(size=D)
    if loss == "logistic":
        y = (X @ rng.normal(size=D) + 2 * rng.normal(size=N) > 0).astype(np.float64)
        return Objective("logistic"), Batch(X, y)
    y = np.argmax(X @ rng.normal(size=(D, 3)) + 2 * rng.normal(size=(N, 3)), axis=1)
    return Objective("softmax", n_classes=3), Batch(X, y)


def _penalty(kind, lam):
    return Penalty(l2=lam) if kind == "l2" else Penalty(l1=lam)


def _member(result, i):
    return {k: v[i] for k, v in result.params.items()}


def _sklearn_params(obj, batch, kind, lam):
    est = LogisticRegression(C=lambda_to_sklearn_C(lam, N), l1_ratio=0.0 if kind == "l2" else 1.0,
                             solver="lbfgs" if kind == "l2" else "saga", tol=1e-12, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga's ConvergenceWarning at tol=1e-12
        est.fit(batch.X, batch.y)
    if obj.is_multiclass:  # same over-parametrised multinomial model: W (d, C) = coef_.T
        return {"W": est.coef_.T, "b": est.intercept_}
    return {"W": est.coef_[0], "b": est.intercept_[0]}


@functools.lru_cache(maxsize=None)
def _solved(loss, kind, dtype):
    obj, batch = _problem(loss)
    solve = functools.partial(solve_l2_path if kind == "l2" else solve_l1_path, dtype=dtype)
    return obj, batch, kind, solve, solve(obj, batch, LAMS), TOL[dtype]


@pytest.fixture(params=[(loss, kind, dt) for dt in DTYPES for kind in ("l2", "l1") for loss in ("logistic", "softmax")],
                ids=lambda p: "-".join(p))
def path(request):
    return _solved(*request.param)


@pytest.fixture(params=[(loss, dt) for dt in DTYPES for loss in ("logistic", "softmax")], ids=lambda p: "-".join(p))
def l2_path(request):
    return _solved(request.param[0], "l2", request.param[1])


@pytest.fixture(params=[(loss, dt) for dt in DTYPES for loss in ("logistic", "softmax")], ids=lambda p: "-".join(p))
def l1_path(request):
    return _solved(request.param[0], "l1", request.param[1])


def _member64(result, i):
    return {k: np.asarray(v[i], np.float64) for k, v in result.params.items()}


def test_result_structure(path):
    obj, batch, kind, solve, res, tol = path
    assert isinstance(res, SolverResult)
    assert res.params["W"].dtype == solve.keywords["dtype"]
    w_shape = (len(LAMS), D) + ((3,) if obj.is_multiclass else ())
    assert res.params["W"].shape == w_shape and res.params["b"].shape == (len(LAMS),) + w_shape[2:]
    for field in (res.value, res.n_iter, res.converged, res.optimality):
        assert field.shape == (len(LAMS),)
    assert np.all(np.asarray(res.converged))
    assert np.all(np.asarray(res.optimality) <= tol[f"{kind}_opt"])


def test_parity_with_sklearn(path):
    """J_jax is no worse than sklearn's (lbfgs for L2, saga for L1) by 1e-6 relative, every λ."""
    obj, batch, kind, _, res, tol = path
    for i, lam in enumerate(LAMS):
        pen = _penalty(kind, lam)
        j_jax = float(obj.value(_member64(res, i), pen, batch))
        j_sk = float(obj.value(_sklearn_params(obj, batch, kind, lam), pen, batch))
        assert (j_jax - j_sk) / abs(j_sk) <= tol["parity"], (lam, j_jax, j_sk)
        np.testing.assert_allclose(float(res.value[i]), j_jax, rtol=tol["value"])


def test_l2_stationarity(l2_path):
    obj, batch, _, _, res, tol = l2_path
    for i, lam in enumerate(LAMS):
        grad = obj.grad(_member64(res, i), Penalty(l2=lam), batch)
        gmax = max(float(np.max(np.abs(g))) for g in jax.tree.leaves(grad))
        assert gmax <= tol["l2_stat"]
        np.testing.assert_allclose(gmax, float(res.optimality[i]), rtol=1e-3, atol=tol["l2_opt"] / 10)


def test_l1_optimality_conditions(l1_path):
    """KKT: |∂f/∂w_j| ≤ λ where w_j = 0, ∂f/∂w_j = −λ sign(w_j) elsewhere; ∂f/∂b = 0."""
    obj, batch, _, _, res, tol = l1_path
    for i, lam in enumerate(LAMS):
        p = _member64(res, i)
        g = obj.grad(p, Penalty(), batch)
        W, gW = np.asarray(p["W"]), np.asarray(g["W"])
        assert np.all(np.abs(gW[W == 0]) <= lam + tol["stat"])
        np.testing.assert_allclose(gW[W != 0], -lam * np.sign(W[W != 0]), atol=tol["stat"])
        np.testing.assert_allclose(np.asarray(g["b"]), 0.0, atol=tol["stat"])
    assert np.sum(np.asarray(res.params["W"][0]) == 0) > 0  # λ = 1 gives a sparse solution


def _assert_same_member(a, i, b, j, tol=TOL["float64"]):
    np.testing.assert_allclose(float(a.value[i]), float(b.value[j]), rtol=tol["member_value"])
    for k in a.params:
        np.testing.assert_allclose(np.asarray(a.params[k][i]), np.asarray(b.params[k][j]), atol=tol["member_params"])


def test_vmapped_path_equals_separate_solves(path):
    """A member's result does not depend on the other members (frozen once stopped)."""
    obj, batch, kind, solve, res, tol = path
    rev = solve(obj, batch, LAMS[::-1])  # same shapes: no recompilation
    for i in range(len(LAMS)):
        _assert_same_member(res, i, rev, len(LAMS) - 1 - i, tol)
    for i in (0, len(LAMS) - 1):  # every member at λ_i: all stop together
        same = solve(obj, batch, np.full(len(LAMS), LAMS[i]))
        _assert_same_member(res, i, same, 0, tol)
        assert np.all(np.asarray(same.n_iter) == np.asarray(same.n_iter)[0])
    if (obj.loss, kind) == ("logistic", "l2"):  # and one truly separate solve (L = 1)
        one = solve(obj, batch, LAMS[-1:])
        assert bool(one.converged[0])
        _assert_same_member(res, len(LAMS) - 1, one, 0, tol)


def test_path_frozen_members_and_init():
    """Members stop at different iterations; warm init at the solution converges at once."""
    obj, batch = _problem("logistic")
    res = solve_l2_path(obj, batch, LAMS)
    assert len(set(np.asarray(res.n_iter).tolist())) > 1
    again = solve_l2_path(obj, batch, LAMS, init=res.params)
    assert np.all(np.asarray(again.n_iter) == 0) and np.all(np.asarray(again.converged))


def test_elastic_net():
    obj, batch = _problem("logistic")
    res = solve_l1_path(obj, batch, LAMS, l2=0.1)
    for i, lam in enumerate(LAMS):
        g = obj.grad(_member(res, i), Penalty(l2=0.1), batch)
        W, gW = np.asarray(res.params["W"][i]), np.asarray(g["W"])
        np.testing.assert_allclose(gW[W != 0], -lam * np.sign(W[W != 0]), atol=1e-6)
    assert np.all(np.asarray(res.converged))


@pytest.mark.parametrize("solve", [solve_l2_path, solve_l1_path])
def test_separable_unregularised_does_not_nan(solve):
    """λ = 0 on separable data has no minimiser: hit max_iter, report converged=False, no NaN."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, D))
    y = (X[:, 0] > 0).astype(np.float64)
    with pytest.warns(ConvergenceWarning, match=r"lambdas\[0\], lambdas\[1\] = 0 .* linearly separable"):
        res = solve(Objective("logistic"), Batch(X, y), [0.0, 0.0, 1e-3, 1e-2], max_iter=25, tol=1e-12)
    assert not bool(res.converged[0]) and int(res.n_iter[0]) == 25
    for leaf in jax.tree.leaves(res):
        assert np.all(np.isfinite(np.asarray(leaf, dtype=np.float64)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(lambdas=[]), "lambdas"),
    (dict(lambdas=[0.1, -1.0]), "lambdas"),
    (dict(lambdas=[[[0.1, 0.2]]]), "lambdas"),  # (L,) members or (L, T) lanes of tasks, not 3-D
    (dict(lambdas=[float("nan")]), "lambdas"),
    (dict(X=np.ones(N)), "X"),
    (dict(y=np.zeros(N + 1)), "y"),
    (dict(y=np.full(N, 2.0)), "y"),
    (dict(tol=0.0), "tol"),
    (dict(max_iter=0), "max_iter"),
    (dict(init={"W": np.zeros(D + 1), "b": 0.0}), "init"),
    (dict(objective=Objective("hinge", n_classes=3)), "loss"),
])
@pytest.mark.parametrize("solve", [solve_l2_path, solve_l1_path])
def test_bad_input_raises(solve, kwargs, match):
    obj, batch = _problem("logistic")
    args = dict(objective=obj, X=batch.X, y=batch.y, lambdas=LAMS)
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("tol", "max_iter", "init") if k in args}
    with pytest.raises(ValueError, match=match):
        solve(args["objective"], Batch(args["X"], args["y"]), args["lambdas"], **extra)


def test_bad_l2_raises():
    obj, batch = _problem("logistic")
    with pytest.raises(ValueError, match="l2"):
        solve_l1_path(obj, batch, LAMS, l2=[0.1, 0.2])
    with pytest.raises(ValueError, match="l2"):
        solve_l1_path(obj, batch, LAMS, l2=-1.0)
