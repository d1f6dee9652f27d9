"""jaxreg.meta.implicit / experiments.meta_learning.implicit_study: jax.grad through a converged L2 path (implicit
function theorem, every λ at once) equals central differences of re-solved paths and the
forward-mode derivative of a long converged training run; per-group λ by rescaling equals the
one-λ solve when the groups agree. float64 (conftest), tiny synthetic problems, tolerances
written at each check."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from problems import softmax_problem

from experiments.meta_learning import implicit_study as st
from jaxreg.meta import implicit as ip
from jaxreg.objective import Objective
from jaxreg.solvers import solve_l2_path

SOFTMAX = Objective("softmax", n_classes=3)


def problem(n=120, n_hold=60, d=6, seed=2, classes=3):
    return softmax_problem(n, n_hold, d, seed, classes, n_test=n_hold)


@pytest.fixture(scope="module")
def data():
    return problem()


def fd_path(obj, data, lams, eps=1e-5, **kw):
    """Central differences in log λ of the re-solved path's hold-out losses."""
    up = ip.holdout_loss(obj, ip.l2_path(obj, data.train, lams * math.exp(eps), **kw), data.holdout)
    dn = ip.holdout_loss(obj, ip.l2_path(obj, data.train, lams * math.exp(-eps), **kw), data.holdout)
    return (np.asarray(up) - np.asarray(dn)) / (2 * eps)


def test_path_is_the_solver_and_grad_is_fd(x64, data):
    lams = np.array([1e-3, 1e-2, 1e-1, 1.0])
    params = ip.l2_path(SOFTMAX, data.train, lams, tol=1e-12)
    want = solve_l2_path(SOFTMAX, data.train, lams, tol=1e-12).params
    for k in ("W", "b"):
        np.testing.assert_allclose(params[k], want[k], rtol=1e-12, atol=1e-14)
    loss, g = ip.path_hypergrad(SOFTMAX, data, lams, tol=1e-12)
    fd = fd_path(SOFTMAX, data, lams, tol=1e-12)  # FD error ~ε² + solver tol / ε ≈ 1e-9
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-10)
    assert np.all(np.abs(g) > 1e-6) and loss.shape == (4,)


def test_logistic_and_penalised_intercept(x64):
    """A binary loss (W of shape (d,)) with the bias penalised too: grad = FD."""
    obj = Objective("logistic", penalize_intercept=True)
    d = problem(classes=2)
    lams = np.array([1e-2, 1e-1])
    _, g = ip.path_hypergrad(obj, d, lams, tol=1e-12)
    np.testing.assert_allclose(g, fd_path(obj, d, lams, tol=1e-12), rtol=1e-6, atol=1e-10)


def test_groups_rescaling_and_grad(x64, data):
    """Per-group λ: equal groups reproduce the one-λ path and its gradient (summed over groups);
    unequal groups match central differences group by group."""
    groups = np.array([0, 0, 1, 1, 2, 2])
    p1 = ip.l2_path(SOFTMAX, data.train, np.array([0.05]), tol=1e-12)
    pg = ip.l2_path(SOFTMAX, data.train, np.full((1, 3), 0.05), groups=groups, tol=1e-12)
    np.testing.assert_allclose(pg["W"], p1["W"], rtol=1e-8, atol=1e-10)
    _, g1 = ip.path_hypergrad(SOFTMAX, data, np.array([0.05]), tol=1e-12)
    _, gg = ip.path_hypergrad(SOFTMAX, data, np.full((1, 3), 0.05), groups=groups, tol=1e-12)
    assert float(gg.sum()) == pytest.approx(float(g1[0]), rel=1e-7)
    lam = np.array([[0.01, 0.3, 0.05]])
    _, g = ip.path_hypergrad(SOFTMAX, data, lam, groups=groups, tol=1e-12)

    def loss_at(lam_):
        return float(ip.holdout_loss(SOFTMAX, ip.l2_path(SOFTMAX, data.train, lam_, groups=groups, tol=1e-12),
                                     data.holdout)[0])

    for j in range(3):  # central differences in log λ_j, step 1e-5
        e = np.zeros((1, 3))
        e[0, j] = 1e-5
        fd = (loss_at(lam * np.exp(e)) - loss_at(lam * np.exp(-e))) / 2e-5
        assert g[0, j] == pytest.approx(fd, rel=1e-5, abs=1e-10)


def test_unrolled_check_agrees_and_studies_run(x64, data):
    """The implicit path hypergradient = forward mode through 1,500 Nesterov updates (converged)
    to 1e-6; the grid and the meta loop run and the meta loop improves the hold-out loss."""
    d = st.centred(data)
    rec = st.unrolled_check(SOFTMAX, d, [0.05, 0.5], horizon=1500, momentum=0.9, tol=1e-12)
    assert rec["implicit_batched_max_rel_err"] < 1e-6
    np.testing.assert_allclose(rec["implicit_holdout_loss"], rec["unrolled_holdout_loss"], rtol=1e-9)
    grid = st.lambda_grid(SOFTMAX, d, [1e-3, 1e-2, 1e-1, 1.0], tol=1e-10)
    assert grid["best_holdout_loss"] == min(grid["holdout_loss"]) and len(grid["test_loss"]) == 4
    m = st.meta_lambda(SOFTMAX, d, 1.0, n_steps=4, learning_rate=0.5, tol=1e-10)
    assert m["trace"]["holdout_loss"][-1] < m["trace"]["holdout_loss"][0] and m["n_hyper"] == 1
    mg = st.meta_lambda(SOFTMAX, d, 1.0, n_steps=2, learning_rate=0.5, tol=1e-10, groups=np.array([0, 0, 0, 1, 1, 1]))
    assert mg["n_hyper"] == 2 and len(mg["trace"]["lambda"][0]) == 2
    assert list(st.row_groups(3)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_centring_is_exact_with_an_unpenalised_intercept(x64, data):
    lams = np.array([1e-2, 1e-1])
    a = ip.path_hypergrad(SOFTMAX, data, lams, tol=1e-12)
    b = ip.path_hypergrad(SOFTMAX, st.centred(data), lams, tol=1e-12)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-10)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-7)


def test_errors(x64, data):
    with pytest.raises(ValueError, match="groups"):
        ip.l2_path(SOFTMAX, data.train, np.ones((1, 2)), groups=np.array([0, 1]))
    with pytest.raises(ValueError, match="lambdas must have shape"):
        ip.l2_path(SOFTMAX, data.train, np.ones((1, 2)), groups=np.array([0, 0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match="penalize_intercept"):
        ip.l2_path(Objective("softmax", n_classes=3, penalize_intercept=True), data.train, np.ones((1, 1)),
                   groups=np.zeros(6, int))
    with pytest.raises(ValueError, match="lambdas must be > 0"):
        ip.l2_path(SOFTMAX, data.train, np.array([[0.0]]), groups=np.zeros(6, int))
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda lam: ip.l2_path(SOFTMAX, data.train, lam)["W"])(jnp.array([0.1]))
