"""Losses, reductions, penalties and predictions against independent NumPy formulas.

The references below are written from the textbook definitions (seed 001's slides, seed 002's
notebook), deliberately in the naive form (explicit exp/log, loops), and only evaluated at
moderate logits where the naive form is accurate.
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import Batch, Objective, Penalty, penalty, relative_error
from jaxreg import losses

ALL_LOSSES = ("squared", "logistic", "logistic_mse", "softmax", "hinge")
MULTICLASS = ("softmax", "hinge")


# --------------------------------------------------------------------------- NumPy references
def np_sigmoid(s):
    return 1.0 / (1.0 + np.exp(-s))


def ref_per_example(loss, scores, y):
    """Naive per-example losses in float64 NumPy."""
    scores = np.asarray(scores, np.float64)
    y = np.asarray(y)
    if loss == "squared":
        return (scores - y) ** 2
    if loss == "logistic":
        p = np_sigmoid(scores)
        return -y * np.log(p) - (1 - y) * np.log(1 - p)
    if loss == "logistic_mse":
        return 0.5 * (np_sigmoid(scores) - y) ** 2
    if loss == "softmax":
        out = np.empty(scores.shape[0])
        for i, (row, label) in enumerate(zip(scores, y)):
            p = np.exp(row) / np.sum(np.exp(row))
            out[i] = -np.log(p[int(label)])
        return out
    if loss == "hinge":
        out = np.zeros(scores.shape[0])
        for i, (row, label) in enumerate(zip(scores, y)):
            for j in range(row.shape[0]):
                if j != int(label):
                    out[i] += max(0.0, row[j] - row[int(label)] + 1.0)
        return out
    raise AssertionError(loss)


def ref_reduce(per_example, reduction):
    return per_example.mean() if reduction == "mean" else per_example.sum()


def make_problem(loss, n=9, d=4, C=3, fit_intercept=True, seed=0):
    """Random (obj-compatible) params and batch with moderate scores, in float64."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if loss in MULTICLASS:
        W = rng.normal(size=(d, C)) * 0.7
        b = rng.normal(size=(C,)) * 0.5
        y = rng.integers(0, C, size=n)
        y[:C] = np.arange(C)  # every class present
    else:
        W = rng.normal(size=(d,)) * 0.7
        b = np.float64(rng.normal() * 0.5)
        y = rng.normal(size=n) * 2 if loss == "squared" else rng.integers(0, 2, size=n).astype(np.float64)
    params = {"W": jnp.asarray(W)}
    if fit_intercept:
        params["b"] = jnp.asarray(b)
    return params, Batch(jnp.asarray(X), jnp.asarray(y))


def objective_for(loss, **kw):
    return Objective(loss, n_classes=3 if loss in MULTICLASS else 1, **kw)


def np_scores(params, X):
    s = np.asarray(X) @ np.asarray(params["W"])
    return s + np.asarray(params["b"]) if "b" in params else s


# --------------------------------------------------------------------------- per-example losses
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_per_example_loss_matches_numpy(loss, x64):
    rng = np.random.default_rng(1)
    if loss in MULTICLASS:
        scores = rng.normal(size=(9, 3)) * 2
        y = rng.integers(0, 3, size=9)
    else:
        scores = rng.normal(size=9) * 2
        y = rng.normal(size=9) if loss == "squared" else rng.integers(0, 2, size=9).astype(float)
    got = losses.PER_EXAMPLE_LOSSES[loss](jnp.asarray(scores), jnp.asarray(y))
    assert got.shape == (9,)
    np.testing.assert_allclose(np.asarray(got), ref_per_example(loss, scores, y), rtol=1e-12, atol=1e-13)


def test_hand_computed_per_example_values():
    @jax.jit
    def all_losses():
        return (losses.squared_loss(jnp.array([3.0]), jnp.array([1.0])),
                losses.logistic_loss(jnp.zeros(2), jnp.array([0.0, 1.0])),
                losses.logistic_mse_loss(jnp.zeros(1), jnp.ones(1)),
                losses.softmax_cross_entropy(jnp.zeros((1, 5)), jnp.array([3])),
                losses.multiclass_hinge_loss(jnp.array([[3.2, 5.1, -1.7]]), jnp.array([0])),
                losses.hinge_margins(jnp.array([[3.2, 5.1, -1.7]]), jnp.array([0])))

    squared, logistic, logistic_mse, softmax, hinge, margins = all_losses()
    np.testing.assert_allclose(squared, [4.0])  # (3 - 1)^2
    np.testing.assert_allclose(logistic, [math.log(2)] * 2)  # s = 0: log 2 whatever the label
    np.testing.assert_allclose(logistic_mse, [0.125])  # s = 0, y = 1: ½ (½ − 1)² = 1/8
    np.testing.assert_allclose(softmax, [math.log(5)])  # C equal scores: log C
    # CS231n-style example: scores (3.2, 5.1, -1.7), true class 0 -> max(0, 2.9) + max(0, -3.9)
    np.testing.assert_allclose(hinge, [2.9], rtol=1e-6)
    np.testing.assert_allclose(margins, [[0.0, 2.9, -3.9]], rtol=1e-6)


# --------------------------------------------------------------------------- objective values
@pytest.mark.parametrize("use_jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_objective_value_matches_numpy(loss, reduction, use_jit, x64):
    obj = objective_for(loss, reduction=reduction)
    params, batch = make_problem(loss, seed=2 * ALL_LOSSES.index(loss) + (reduction == "sum"))
    pen = Penalty(l2=0.3, l1=0.05)
    s = np_scores(params, batch.X)
    per_ex = ref_per_example(loss, s, np.asarray(batch.y))
    W = np.asarray(params["W"])
    expected_data = ref_reduce(per_ex, reduction)
    expected = expected_data + 0.5 * 0.3 * np.sum(W**2) + 0.05 * np.sum(np.abs(W))

    data_loss = jax.jit(obj.data_loss) if use_jit else obj.data_loss
    value = jax.jit(obj.value) if use_jit else obj.value
    np.testing.assert_allclose(float(data_loss(params, batch)), expected_data, rtol=1e-12)
    np.testing.assert_allclose(float(value(params, pen, batch)), expected, rtol=1e-12)
    # per-example losses are the un-reduced version
    np.testing.assert_allclose(np.asarray(obj.per_example_loss(params, batch)), per_ex, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_sum_is_n_times_mean(loss, x64):
    params, batch = make_problem(loss, n=9, seed=99)
    v_mean = objective_for(loss, reduction="mean").data_loss(params, batch)
    v_sum = objective_for(loss, reduction="sum").data_loss(params, batch)
    np.testing.assert_allclose(float(v_sum), 9 * float(v_mean), rtol=1e-12)


def test_reduce_losses_and_bad_reduction():
    v = jnp.array([1.0, 2.0, 6.0])
    assert float(losses.reduce_losses(v, "mean")) == pytest.approx(3.0)
    assert float(losses.reduce_losses(v, "sum")) == pytest.approx(9.0)
    with pytest.raises(ValueError, match="reduction"):
        losses.reduce_losses(v, "max")


# --------------------------------------------------------------------------- penalties
def test_penalty_functions():
    W = jnp.array([[1.0, -2.0], [0.0, 3.0]])
    assert float(losses.l2_penalty(W)) == pytest.approx(0.5 * 14.0)
    assert float(losses.l1_penalty(W)) == pytest.approx(6.0)


@pytest.mark.parametrize("penalize_intercept", [False, True])
def test_penalty_value_and_intercept(penalize_intercept, x64):
    obj = Objective("softmax", n_classes=2, penalize_intercept=penalize_intercept)
    params = {"W": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([-4.0, 2.0])}
    pen = Penalty(l2=0.2, l1=0.1)
    W2, W1 = 1 + 4 + 0.25 + 9, 1 + 2 + 0.5 + 3
    b2, b1 = 16 + 4, 6
    if penalize_intercept:
        W2, W1 = W2 + b2, W1 + b1
    assert float(obj.penalty_value(params, pen)) == pytest.approx(0.5 * 0.2 * W2 + 0.1 * W1, rel=1e-12)
    # smooth_value drops exactly the L1 term
    batch = Batch(jnp.array([[1.0, 2.0]]), jnp.array([1]))
    diff = obj.value(params, pen, batch) - obj.smooth_value(params, pen, batch)
    assert float(diff) == pytest.approx(0.1 * W1, rel=1e-12)


def test_penalty_constructor():
    p = penalty("l2", 0.5)
    assert float(p.l2) == 0.5 and float(p.l1) == 0.0
    p = penalty("L1", 0.25)  # case-insensitive
    assert float(p.l2) == 0.0 and float(p.l1) == 0.25
    p = penalty("none", 3.0)
    assert float(p.l2) == 0.0 and float(p.l1) == 0.0
    grid = penalty("l2", jnp.array([0.1, 1.0, 10.0]))
    assert grid.l2.shape == (3,) and grid.l1.shape == (3,)
    np.testing.assert_allclose(grid.l2, [0.1, 1.0, 10.0])
    np.testing.assert_array_equal(grid.l1, 0.0)


# --------------------------------------------------------------------------- float32 numerics
def extreme_problem(loss):
    """float32 data whose scores are ±1e4 (and 0), with every label at every extreme."""
    big = 1e4
    if loss in MULTICLASS:
        # W = I, so scores = X; rows of ±1e4, each with every possible label
        rows = np.array([[big, -big, 0.0], [-big, big, 0.0], [0.0, -big, big]], np.float32)
        X = np.repeat(rows, 3, axis=0)
        y = np.tile(np.arange(3), 3)
        params = {"W": jnp.eye(3, dtype=jnp.float32), "b": jnp.zeros(3, jnp.float32)}
    else:
        X = np.array([[big], [big], [-big], [-big], [0.0]], np.float32)
        y = np.array([0, 1, 0, 1, 1], np.float32)
        params = {"W": jnp.ones(1, jnp.float32), "b": jnp.zeros((), jnp.float32)}
    return params, Batch(jnp.asarray(X), jnp.asarray(y))


@functools.partial(jax.jit, static_argnums=0)
def evaluate(obj, params, pen, batch):
    """Per-example losses, value, closed-form and autodiff gradients, in one program."""
    return (obj.per_example_loss(params, batch), obj.value(params, pen, batch),
            obj.grad(params, pen, batch), jax.grad(obj.value)(params, pen, batch))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_extreme_logits_float32_finite(loss, reduction):
    obj = objective_for(loss, reduction=reduction)
    params, batch = extreme_problem(loss)
    # (no L1 here: W = I has zeros, where the closed form uses sign(0) = 0 and autodiff 1)
    pen = Penalty(l2=0.1)
    per_ex, value, g_closed, g_auto = evaluate(obj, params, pen, batch)
    assert per_ex.dtype == jnp.float32 and value.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(per_ex))), per_ex
    assert np.isfinite(float(value))
    for g in (g_closed, g_auto):
        for leaf in jax.tree_util.tree_leaves(g):
            assert leaf.dtype == jnp.float32
            assert np.all(np.isfinite(np.asarray(leaf))), g
    # and the values are right, not just finite (limits of the stable formulas)
    per_ex = np.asarray(per_ex, np.float64)
    if loss == "logistic":  # softplus(s) - y s: 1e4 when wrong, 0 when right, log 2 at s = 0
        np.testing.assert_allclose(per_ex, [1e4, 0.0, 0.0, 1e4, math.log(2)], atol=1e-3)
    elif loss == "logistic_mse":
        np.testing.assert_allclose(per_ex, [0.5, 0.0, 0.0, 0.5, 0.125], atol=1e-6)
    elif loss == "squared":
        np.testing.assert_allclose(per_ex, [1e8, (1e4 - 1) ** 2, 1e8, (1e4 + 1) ** 2, 1.0], rtol=1e-6)
    elif loss == "softmax":  # loss = max(s) - s_y exactly in the limit
        s = np.asarray(batch.X, np.float64)
        y = np.asarray(batch.y)
        np.testing.assert_allclose(per_ex, s.max(1) - s[np.arange(len(y)), y], atol=1e-3)
    elif loss == "hinge":  # piecewise linear: the naive formula is exact here
        np.testing.assert_allclose(per_ex, ref_per_example("hinge", batch.X, batch.y), rtol=1e-6)
    # gradients equal in the closed form and by autodiff even here (to float32 precision)
    assert relative_error(g_closed, g_auto) < 1e-6


def test_softmax_invariant_to_row_shift(x64):
    rng = np.random.default_rng(3)
    scores = jnp.asarray(rng.normal(size=(9, 3)))
    y = jnp.asarray(rng.integers(0, 3, size=9))
    shifts = jnp.asarray([[0.0], [1.0], [-7.5], [100.0], [-1e3], [1e3], [3.0], [-0.5], [1e2]])
    base = losses.softmax_cross_entropy(scores, y)
    shifted = losses.softmax_cross_entropy(scores + shifts, y)
    np.testing.assert_allclose(np.asarray(shifted), np.asarray(base), rtol=1e-10)
    # and the probabilities / gradients w.r.t. the scores are invariant too
    g = jax.jit(jax.grad(lambda s: jnp.sum(losses.softmax_cross_entropy(s, y))))
    np.testing.assert_allclose(np.asarray(g(scores + shifts)), np.asarray(g(scores)), atol=1e-12)


@pytest.mark.parametrize("loss", MULTICLASS)
def test_multiclass_objective_invariant_to_bias_shift(loss, x64):
    # Adding the same constant to every class's bias shifts every row of scores alike.
    obj = Objective(loss, n_classes=3)
    params, batch = make_problem(loss)
    shifted = {"W": params["W"], "b": params["b"] + 123.0}
    _, value, grad, _ = evaluate(obj, params, Penalty(), batch)
    _, value_shifted, grad_shifted, _ = evaluate(obj, shifted, Penalty(), batch)
    np.testing.assert_allclose(float(value_shifted), float(value), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(grad_shifted["W"]), np.asarray(grad["W"]), atol=1e-10)
    np.testing.assert_allclose(np.asarray(grad_shifted["b"]), np.asarray(grad["b"]), atol=1e-10)


def test_softmax_float32_shift_large():
    # in float32 a shift of 1e4 still gives the same loss up to float32 rounding of the scores
    scores = jnp.asarray([[1.0, 2.0, 3.0]], jnp.float32)
    y = jnp.asarray([0])
    loss_fn = jax.jit(losses.softmax_cross_entropy)
    a = loss_fn(scores, y)
    b = loss_fn(scores + jnp.float32(1e4), y)
    assert b.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-3)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("loss", ["logistic", "logistic_mse"])
def test_sigmoid_probabilities_in_unit_interval(loss, dtype):
    obj = Objective(loss)
    X = jnp.asarray([[-1e4], [-100.0], [-1.0], [0.0], [1.0], [100.0], [1e4]], dtype)
    params = {"W": jnp.ones(1, dtype), "b": jnp.zeros((), dtype)}
    p = np.asarray(obj.predict_proba(params, X))
    assert p.dtype == dtype
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.isfinite(p))
    assert np.all(np.diff(p) >= 0)  # monotone in the score
    assert p[3] == 0.5
    np.testing.assert_allclose(p[2:5], np_sigmoid(np.array([-1.0, 0.0, 1.0])), rtol=1e-6)


def test_softmax_probabilities_rows_sum_to_one():
    obj = Objective("softmax", n_classes=3)
    X = jnp.asarray([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], jnp.float32)
    params = {"W": jnp.eye(3, dtype=jnp.float32), "b": jnp.zeros(3, jnp.float32)}
    P = np.asarray(obj.predict_proba(params, X))
    assert np.all(np.isfinite(P)) and np.all((P >= 0) & (P <= 1))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(P[0], [1.0, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(P[1], [1 / 3] * 3, rtol=1e-6)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(P[2], e / e.sum(), rtol=1e-6)


# --------------------------------------------------------------------------- predictions
@pytest.mark.parametrize("loss", ["logistic", "logistic_mse"])
def test_binary_predictions_by_hand(loss, x64):
    obj = Objective(loss)
    params = {"W": jnp.array([2.0]), "b": jnp.array(-0.5)}
    X = jnp.array([[1.0], [-2.0], [0.5], [0.2]])  # scores 1.5, -4.5, 0.5, -0.1
    np.testing.assert_allclose(np.asarray(obj.scores(params, X)), [1.5, -4.5, 0.5, -0.1], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(obj.predict_proba(params, X)),
                               np_sigmoid(np.array([1.5, -4.5, 0.5, -0.1])), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(obj.predict(params, X)), [1, 0, 1, 0])
    assert float(obj.accuracy(params, Batch(X, jnp.array([1.0, 1.0, 0.0, 0.0])))) == pytest.approx(0.5)
    assert float(obj.accuracy(params, Batch(X, jnp.array([1, 0, 1, 0])))) == 1.0
    # exactly σ = 0.5 (s = 0) is class 0, as in scikit-learn (decision_function > 0)
    assert int(obj.predict(params, jnp.array([[0.25]]))[0]) == 0


def test_binary_predictions_without_intercept():
    # seed 001's prediction slide, with the theta after one SGD step (bias as a feature)
    obj = Objective("logistic", fit_intercept=False)
    theta = jnp.array([0.041338, 0.141338, 0.070669])
    X = jnp.array([[1.0, 2.0, 0.25], [1.0, 1.0, 4.5], [1.0, -3.0, 0.0]])  # (bias, day, hours)
    z = np.asarray(X) @ np.asarray(theta)
    np.testing.assert_allclose(np.asarray(obj.predict_proba({"W": theta}, X)), np_sigmoid(z), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(obj.predict({"W": theta}, X)), (z > 0).astype(int))
    np.testing.assert_array_equal(np.asarray(obj.predict({"W": theta}, X)), [1, 1, 0])


@pytest.mark.parametrize("loss", MULTICLASS)
def test_multiclass_predictions_by_hand(loss):
    obj = Objective(loss, n_classes=3)
    params = {"W": jnp.array([[1.0, 0.0, -1.0], [0.0, 2.0, 1.0]]), "b": jnp.array([0.0, -1.0, 0.5])}
    X = jnp.array([[2.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [-3.0, -1.0]])
    # scores: [2, -1, -1.5], [0, 3, 2.5], [-1, 1, 2.5], [-3, -3, 2.5]
    S = np.array([[2, -1, -1.5], [0, 3, 2.5], [-1, 1, 2.5], [-3, -3, 2.5]], float)
    np.testing.assert_allclose(np.asarray(obj.scores(params, X)), S, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(obj.predict(params, X)), [0, 1, 2, 2])
    P = np.exp(S) / np.exp(S).sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(obj.predict_proba(params, X)), P, rtol=1e-6)
    assert float(obj.accuracy(params, Batch(X, jnp.array([0, 1, 1, 2])))) == pytest.approx(0.75)
    assert float(obj.accuracy(params, Batch(X, jnp.array([2, 2, 0, 0])))) == 0.0


def test_regression_predictions_are_scores():
    obj = Objective("squared")
    params = {"W": jnp.array([5.0]), "b": jnp.array(8.0)}
    X = jnp.array([[0.0], [1.0], [7.0]])
    np.testing.assert_allclose(np.asarray(obj.predict(params, X)), [8.0, 13.0, 43.0])
    np.testing.assert_allclose(np.asarray(obj.predict_proba(params, X)), [8.0, 13.0, 43.0])
    assert not obj.is_classifier and not obj.is_multiclass


def test_init_params_shapes():
    for loss in ALL_LOSSES:
        obj = objective_for(loss)
        p = obj.init_params(4)
        assert set(p) == {"W", "b"}
        if loss in MULTICLASS:
            assert p["W"].shape == (4, 3) and p["b"].shape == (3,)
        else:
            assert p["W"].shape == (4,) and p["b"].shape == ()
        assert float(jnp.abs(p["W"]).sum()) == 0.0
        assert set(objective_for(loss, fit_intercept=False).init_params(4)) == {"W"}
    p = Objective("softmax", n_classes=3, fit_intercept=False).init_params(4, jax.random.PRNGKey(0), scale=2.0)
    assert set(p) == {"W"} and p["W"].shape == (4, 3) and 0.5 < float(jnp.std(p["W"])) < 4.0
