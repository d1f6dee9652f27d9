"""Closed-form gradients vs autodiff vs central finite differences (float64), the gradient
checking tools themselves, and the λ ↔ scikit-learn C convention.

Compiling is what costs time here (each static configuration is one XLA program), so:

* the four penalties (none, L2, L1, L2+L1) are *vmapped* inside one program, each with its own
  random parameters, and closed form, autodiff and finite differences
  (``jaxreg.finite_difference_grad``) are computed in that same jitted program;
* the static factors loss × intercept mode (fit_intercept × penalize_intercept) are crossed in
  full (20 test cases), and shape (n, d, C) and reduction (mean/sum) are
  rotated through them so that every pair of levels of the five factors occurs (checked by
  ``test_gradient_grid_covers_all_pairs``); with the 4 penalties that is 80 gradient checks.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.test_util import check_grads

from jaxreg import (Batch, Objective, Penalty, check_grad, finite_difference_grad,
                    lambda_to_sklearn_C, relative_error, sklearn_C_to_lambda)
from jaxreg import grads as jgrads

ALL_LOSSES = ("squared", "logistic", "logistic_mse", "softmax", "hinge")
SMOOTH_LOSSES = ("squared", "logistic", "logistic_mse", "softmax")
MULTICLASS = ("softmax", "hinge")
SHAPES = [(1, 1, 2), (7, 3, 3), (50, 10, 5)]  # (n, d, C); C is used by the multiclass losses only
INTERCEPT_MODES = [(False, False), (False, True), (True, False), (True, True)]  # (fit, penalize)
REDUCTIONS = ("mean", "sum")
PENALTIES = {"none": (0.0, 0.0), "l2": (0.7, 0.0), "l1": (0.0, 0.3), "l2+l1": (0.7, 0.3)}

CLOSED_VS_AUTODIFF_TOL = 1e-10
VS_FINITE_DIFF_TOL = 1e-6
HINGE_KINK_GAP = 1e-3

# loss × intercept mode in full; (shape, reduction) rotated so that all pairs are covered
GRID = [(loss, mode, SHAPES[(li + mi) % 3], REDUCTIONS[(mi + li // 2) % 2])
        for li, loss in enumerate(ALL_LOSSES) for mi, mode in enumerate(INTERCEPT_MODES)]
GRID_IDS = [f"{loss}-fit={f}-penb={pb}-{n}x{d}x{C}-{r}" for loss, (f, pb), (n, d, C), r in GRID]


def away_from_zero(rng, shape, low=0.2, high=1.2):
    """Random values with |v| in [low, high] and random signs (|v| is differentiable there)."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def min_abs_hinge_margin(S, y):
    """min over examples and j != y of |s_j − s_y + 1| (distance to the hinge's kinks)."""
    m = S - S[np.arange(len(y)), y][:, None] + 1.0
    m[np.arange(len(y)), y] = np.inf  # the true class has no margin
    return np.min(np.abs(m))


def random_params(loss, X, y, fit_intercept, C, rng):
    """Weights (and bias) away from 0; for hinge, resampled until every margin is off its kink."""
    d = X.shape[1]
    w_shape, b_shape = ((d, C), (C,)) if loss in MULTICLASS else ((d,), ())
    for _ in range(10_000):
        W, b = away_from_zero(rng, w_shape), away_from_zero(rng, b_shape)
        if loss != "hinge":
            break
        if min_abs_hinge_margin(X @ W + (b if fit_intercept else 0.0), y) > HINGE_KINK_GAP:
            break
    else:  # pragma: no cover
        raise RuntimeError("could not sample hinge parameters away from the kinks")
    params = {"W": jnp.asarray(W)}
    if fit_intercept:
        params["b"] = jnp.asarray(b)
    return params


def random_data(loss, n, d, C, rng):
    X = rng.normal(size=(n, d))
    if loss in MULTICLASS:
        y = rng.integers(0, C, size=n)
    elif loss == "squared":
        y = rng.normal(size=n) * 2.0
    else:
        y = rng.integers(0, 2, size=n).astype(np.float64)
    return X, y


def random_problem(loss, shape, fit_intercept, rng, copies=1):
    """Objective-ready float64 data and ``copies`` independent parameter draws (stacked)."""
    n, d, C = shape
    X, y = random_data(loss, n, d, C, rng)
    draws = [random_params(loss, X, y, fit_intercept, C, rng) for _ in range(copies)]
    params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *draws)
    return params, Batch(jnp.asarray(X), jnp.asarray(y))


def stacked_penalties():
    l2, l1 = zip(*PENALTIES.values())
    return Penalty(l2=jnp.asarray(l2, jnp.float64), l1=jnp.asarray(l1, jnp.float64))


def three_gradients(objs, params, pens, batches):
    """(closed form, autodiff, finite differences) for each objective, vmapped over the stacked
    penalties, all in one jitted program."""

    def one(obj, P, batch):
        closed = jax.vmap(obj.grad, in_axes=(0, 0, None))(P, pens, batch)
        auto = jax.vmap(jax.grad(obj.value), in_axes=(0, 0, None))(P, pens, batch)
        # the penalties' objectives are independent, so the gradient of their sum w.r.t. copy k
        # of the parameters is the gradient of objective k
        total = lambda Q: jnp.sum(jax.vmap(obj.value, in_axes=(0, 0, None))(Q, pens, batch))  # noqa: E731
        return closed, auto, finite_difference_grad(total, P)

    return jax.jit(lambda Ps: [one(o, P, b) for o, P, b in zip(objs, Ps, batches)])(params)


def gradient_errors(loss, configs, seed, weights=False):
    """{(mode, shape, reduction, penalty): (closed~autodiff, autodiff~FD, closed~FD)}; with
    ``weights``, every batch carries random per-example weights (some zero, see :func:`weighted`)."""
    rng = np.random.default_rng(seed)
    objs, params, batches = [], [], []
    for (fit, pen_b), shape, reduction in configs:
        objs.append(Objective(loss, n_classes=shape[2] if loss in MULTICLASS else 1,
                              reduction=reduction, fit_intercept=fit, penalize_intercept=pen_b))
        P, batch = random_problem(loss, shape, fit, rng, copies=len(PENALTIES))
        params.append(P)
        batches.append(weighted(batch, rng) if weights else batch)
    results = three_gradients(objs, params, stacked_penalties(), batches)
    errors = {}
    for config, grads3 in zip(configs, results):
        for i, name in enumerate(PENALTIES):
            c, a, f = (jax.tree_util.tree_map(lambda leaf: leaf[i], g) for g in grads3)
            errors[config + (name,)] = (relative_error(c, a), relative_error(a, f), relative_error(c, f))
    return errors


def test_gradient_grid_covers_all_pairs():
    """Every pair of levels of the five factors occurs somewhere in the gradient grid."""
    rows = [(loss, mode, shape, red, pen) for loss, mode, shape, red in GRID for pen in PENALTIES]
    levels = [ALL_LOSSES, INTERCEPT_MODES, SHAPES, REDUCTIONS, tuple(PENALTIES)]
    for i, j in itertools.combinations(range(5), 2):
        seen = {(r[i], r[j]) for r in rows}
        assert seen == set(itertools.product(levels[i], levels[j])), (i, j)


@pytest.mark.parametrize("loss,mode,shape,reduction", GRID, ids=GRID_IDS)
def test_closed_form_vs_autodiff_vs_finite_differences(loss, mode, shape, reduction, x64):
    errors = gradient_errors(loss, [(mode, shape, reduction)], seed=GRID.index((loss, mode, shape, reduction)))
    assert len(errors) == len(PENALTIES)
    failures = []
    for (_, _, _, pen), (closed_auto, auto_fd, closed_fd) in errors.items():
        if not (closed_auto <= CLOSED_VS_AUTODIFF_TOL and auto_fd <= VS_FINITE_DIFF_TOL
                and closed_fd <= VS_FINITE_DIFF_TOL):
            failures.append(f"penalty={pen}: closed~auto {closed_auto:.2e}, auto~FD {auto_fd:.2e}, "
                            f"closed~FD {closed_fd:.2e}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("loss", SMOOTH_LOSSES)
def test_jax_check_grads_on_value(loss, x64):
    rng = np.random.default_rng(11)
    C = 3 if loss in MULTICLASS else 1
    params, batch = random_problem(loss, (7, 3, C), True, rng)
    params = jax.tree_util.tree_map(lambda leaf: leaf[0], params)
    obj = Objective(loss, n_classes=C, penalize_intercept=True)
    # the penalty strength is an input too (hyperparameters are differentiable)
    f = jax.jit(lambda p, lam: obj.value(p, Penalty(l2=lam), batch))
    check_grads(f, (params, jnp.float64(0.5)), order=1, modes=["rev"])


def test_gradient_is_closed_form_per_loss_by_hand(x64):
    """r = ∂ℓ/∂s as documented, on one example each (catches a wrong factor of 2 etc.)."""
    s = jnp.array([0.3, -1.2])
    y = jnp.array([1.0, 0.0])
    p = 1 / (1 + np.exp(-np.asarray(s)))
    np.testing.assert_allclose(jgrads.score_residual("squared", s, y), 2 * (np.asarray(s) - [1, 0]))
    np.testing.assert_allclose(jgrads.score_residual("logistic", s, y), p - [1, 0])
    np.testing.assert_allclose(jgrads.score_residual("logistic_mse", s, y), (p - [1, 0]) * p * (1 - p))
    S = jnp.array([[1.0, 2.0, 0.5]])
    P = np.exp([1.0, 2.0, 0.5]) / np.exp([1.0, 2.0, 0.5]).sum()
    np.testing.assert_allclose(jgrads.score_residual("softmax", S, jnp.array([2])), [P - [0, 0, 1]])
    # hinge, true class 2: margins 1.5 (active), 2.5 (active) -> r = [1, 1, -2]
    np.testing.assert_allclose(jgrads.score_residual("hinge", S, jnp.array([2])), [[1.0, 1.0, -2.0]])
    # true class 1: margins 0 (1 - 2 + 1: exactly at the kink counts as inactive) and -0.5 -> r = 0
    np.testing.assert_allclose(jgrads.score_residual("hinge", S, jnp.array([1])), [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="loss must be one of"):
        jgrads.score_residual("cubic", s, y)


def test_l1_subgradient_is_zero_at_zero(x64):
    obj = Objective("logistic", fit_intercept=False)
    batch = Batch(jnp.array([[1.0, 2.0, -1.0]]), jnp.array([1.0]))
    params = {"W": jnp.array([0.0, 0.5, -0.5])}
    g_data = obj.grad(params, Penalty(), batch)["W"]
    g = obj.grad(params, Penalty(l1=0.25), batch)["W"]
    np.testing.assert_allclose(np.asarray(g - g_data), [0.0, 0.25, -0.25], atol=1e-15)


@pytest.mark.parametrize("penalize_intercept", [False, True])
def test_bias_penalised_only_when_asked(penalize_intercept, x64):
    obj = Objective("squared", penalize_intercept=penalize_intercept)
    batch = Batch(jnp.array([[1.0], [2.0]]), jnp.array([0.0, 0.0]))
    params = {"W": jnp.array([0.0]), "b": jnp.array(0.0)}  # data gradient is exactly zero here
    zero_pred = obj.grad(params, Penalty(l2=1.0, l1=1.0), batch)
    assert float(zero_pred["b"]) == 0.0 and float(zero_pred["W"][0]) == 0.0
    params = {"W": jnp.array([0.0]), "b": jnp.array(2.0)}  # residual 2(s - y) = 4 for both examples
    g = obj.grad(params, Penalty(l2=0.5, l1=0.25), batch)
    expected_b = 4.0 + ((0.5 * 2.0 + 0.25) if penalize_intercept else 0.0)
    assert float(g["b"]) == pytest.approx(expected_b, rel=1e-12)
    assert float(g["W"][0]) == pytest.approx((4 * 1 + 4 * 2) / 2, rel=1e-12)


# --------------------------------------------------------------------------- the checking tools
def test_relative_error_definition():
    assert relative_error(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])) == pytest.approx(1.0)
    assert relative_error(jnp.array([2.0]), jnp.array([1.0])) == pytest.approx(1 / 3)
    assert relative_error({"a": jnp.array([3.0]), "b": jnp.zeros(2)}, {"a": jnp.array([3.0]), "b": jnp.zeros(2)}) == 0.0
    assert relative_error(jnp.zeros(3), jnp.zeros(3)) == 0.0
    # pytrees: ‖a−b‖/‖a+b‖ over all leaves together
    a = {"W": jnp.array([1.0, 2.0]), "b": jnp.array(2.0)}
    b = {"W": jnp.array([1.0, 2.0]), "b": jnp.array(0.0)}
    assert relative_error(a, b) == pytest.approx(2.0 / np.linalg.norm([2.0, 4.0, 2.0]))


def test_finite_difference_grad_on_known_function(x64):
    params = {"W": jnp.array([[0.3, -1.0], [2.0, 0.5]]), "b": jnp.array(0.7)}

    def f(p):
        return jnp.sum(jnp.sin(p["W"])) + p["b"] ** 3 * jnp.sum(p["W"])

    exact = {"W": np.cos(np.asarray(params["W"])) + 0.7**3, "b": 3 * 0.7**2 * float(jnp.sum(params["W"]))}
    fd = finite_difference_grad(f, params)
    assert set(fd) == {"W", "b"} and fd["W"].shape == (2, 2) and fd["b"].shape == ()
    assert relative_error(fd, exact) < 1e-9
    assert check_grad(f, jax.grad(f), params) < 1e-9
    wrong = lambda p: jax.tree_util.tree_map(lambda g: 1.01 * g, jax.grad(f)(p))  # noqa: E731
    assert check_grad(f, wrong, params) > 1e-3


# --------------------------------------------------------------------------- λ ↔ scikit-learn C
def test_lambda_C_round_trip():
    for lam, n in [(1e-4, 60_000), (0.1, 10), (3.0, 1), (0.5, 7)]:
        C = lambda_to_sklearn_C(lam, n)
        assert C == pytest.approx(1.0 / (n * lam), rel=1e-15)
        assert sklearn_C_to_lambda(C, n) == pytest.approx(lam, rel=1e-12)
    lams = np.array([0.01, 0.1, 1.0])
    np.testing.assert_allclose(sklearn_C_to_lambda(lambda_to_sklearn_C(lams, 40), 40), lams, rtol=1e-12)


def test_lambda_convention_matches_sklearn_logistic_regression(x64):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    n, d, lam = 40, 3, 0.1
    X = rng.normal(size=(n, d))
    y = (X @ np.array([1.5, -2.0, 0.5]) + 0.3 + rng.normal(size=n) > 0).astype(np.float64)
    clf = LogisticRegression(C=lambda_to_sklearn_C(lam, n), tol=1e-10, max_iter=10_000).fit(X, y)
    params = {"W": jnp.asarray(clf.coef_[0]), "b": jnp.asarray(clf.intercept_[0])}
    obj = Objective("logistic")  # mean loss, (λ/2)‖W‖², unpenalised bias
    batch = Batch(jnp.asarray(X), jnp.asarray(y))
    g = obj.grad(params, Penalty(l2=lam), batch)
    norm = float(np.linalg.norm(ravel_pytree(g)[0]))
    assert norm < 1e-5, norm
    # negative control: the other common convention (λ‖W‖², i.e. λ₂ = 2λ) is clearly not optimal
    g_other = obj.grad(params, Penalty(l2=2 * lam), batch)
    assert float(np.linalg.norm(ravel_pytree(g_other)[0])) > 1e-3


# --------------------------------------------------------------------------- per-example weights
def weighted(batch, rng):
    """The batch with random weights in [0, 3), about a fifth of them exactly zero."""
    n = batch.X.shape[0]
    w = rng.uniform(0.0, 3.0, size=n) * (rng.uniform(size=n) > 0.2)
    w[0] = max(w[0], 0.5)  # never all zero
    return Batch(batch.X, batch.y, jnp.asarray(w))


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_weighted_closed_form_vs_autodiff_vs_finite_differences(loss, x64):
    """Weighted data terms (mean: Σwℓ/Σw, sum: Σwℓ) for both reductions and two intercept modes
    in one program: closed form = jax.grad ≤ 1e-10, both = central differences ≤ 1e-6."""
    configs = [((True, False), (7, 3, 3), "mean"), ((False, True), (50, 10, 5), "sum"),
               ((True, True), (50, 10, 5), "mean")]
    errors = gradient_errors(loss, configs, seed=100 + ALL_LOSSES.index(loss), weights=True)
    assert len(errors) == len(configs) * len(PENALTIES)
    failures = [f"{key}: " + ", ".join(f"{e:.2e}" for e in errs) for key, errs in errors.items()
                if not (errs[0] <= CLOSED_VS_AUTODIFF_TOL and max(errs[1:]) <= VS_FINITE_DIFF_TOL)]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("loss", ["logistic", "softmax", "squared"])
def test_integer_weights_equal_repeated_rows_and_zero_weights_removed_rows(loss, x64):
    """w_n = k is the row repeated k times (k = 0: the row removed), for J, ∇J and accuracy;
    weights of ones equal no weights (float64, 1e-13)."""
    rng = np.random.default_rng(7)
    C = 3 if loss in MULTICLASS else 1
    params, batch = random_problem(loss, (12, 4, 3), True, rng)
    params = jax.tree_util.tree_map(lambda leaf: leaf[0], params)
    obj = Objective(loss, n_classes=C)
    k = np.array([0, 1, 2, 3, 1, 0, 2, 1, 1, 4, 1, 2])
    rep = Batch(jnp.repeat(batch.X, k, axis=0), jnp.repeat(batch.y, k))
    pen = Penalty(l2=0.3, l1=0.1)
    for reduction in REDUCTIONS:
        o = Objective(loss, n_classes=C, reduction=reduction)
        wb = Batch(batch.X, batch.y, jnp.asarray(k, jnp.float64))
        assert float(o.value(params, pen, wb)) == pytest.approx(float(o.value(params, pen, rep)), rel=1e-13)
        assert relative_error(o.grad(params, pen, wb), o.grad(params, pen, rep)) < 1e-13
    ones = Batch(batch.X, batch.y, jnp.ones(12))
    assert relative_error(obj.grad(params, pen, ones), obj.grad(params, pen, batch)) < 1e-13
    if obj.is_classifier:
        wb = Batch(batch.X, batch.y, jnp.asarray(k, jnp.float64))
        # the unweighted accuracy is a float32 mean of booleans: 1e-7
        assert float(obj.accuracy(params, wb)) == pytest.approx(float(obj.accuracy(params, rep)), rel=1e-7)
