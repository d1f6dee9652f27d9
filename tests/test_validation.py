"""Bad input is rejected at the API boundary with a ValueError that names the argument."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import Objective, penalty
from jaxreg import validation as V

SOFTMAX3 = Objective("softmax", n_classes=3)
HINGE3 = Objective("hinge", n_classes=3)
LOGISTIC = Objective("logistic")
SQUARED = Objective("squared")


# --------------------------------------------------------------------------- features
def test_valid_features_pass_through():
    X = V.as_features([[1, 2], [3, 4]])
    assert X.shape == (2, 2) and X.dtype == np.float32  # ints become float32
    X64 = V.as_features(np.ones((3, 2)))
    assert X64.dtype == np.float64  # floats keep their precision
    assert V.as_features(np.ones((3, 2), np.float32), dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("X,match", [
    (np.zeros(3), r"X must be 2-D"),
    (np.zeros((2, 3, 4)), r"X must be 2-D"),
    (np.zeros((0, 3)), r"X must not be empty"),
    (np.zeros((3, 0)), r"X must not be empty"),
    (np.array([[1.0, np.nan]]), r"X contains NaN or inf"),
    (np.array([[1.0, np.inf], [-np.inf, 0.0]]), r"X contains NaN or inf \(2 entries\)"),
    (np.array([["a", "b"]]), r"X must hold real numbers"),
    (np.array([[1 + 1j]]), r"X must hold real numbers"),
    (np.array([[True, False]]), r"X must hold real numbers"),
], ids=["1d", "3d", "no-rows", "no-cols", "nan", "inf", "str", "complex", "bool"])
def test_bad_features(X, match):
    with pytest.raises(ValueError, match=match):
        V.as_features(X)


def test_features_error_uses_given_name():
    with pytest.raises(ValueError, match=r"^X_val contains NaN"):
        V.as_features(np.array([[np.nan]]), name="X_val")


# --------------------------------------------------------------------------- targets
def test_valid_targets():
    y = V.as_targets([0, 2, 1, 2], SOFTMAX3, 4)
    assert y.dtype == np.int32 and list(y) == [0, 2, 1, 2]
    y = V.as_targets(np.array([0.0, 1.0, 2.0]), HINGE3, 3)  # integral floats are labels too
    assert y.dtype == np.int32 and list(y) == [0, 1, 2]
    y = V.as_targets(np.array([True, False]), LOGISTIC, 2)
    assert y.dtype == np.float32 and list(y) == [1.0, 0.0]
    y = V.as_targets([0.5, -3.25], SQUARED, 2)
    assert list(y) == [0.5, -3.25]


@pytest.mark.parametrize("objective,y,n,match", [
    (SOFTMAX3, [0, 1, 2, 0, 1], 4, r"y has 5 entries but X has 4 rows"),
    (SQUARED, [1.0], 3, r"y has 1 entries but X has 3 rows"),
    (SOFTMAX3, [[0], [1]], 2, r"y must be 1-D"),
    (SOFTMAX3, [0, 1, 3], 3, r"y labels must lie in \[0, 3\)"),
    (HINGE3, [-1, 0, 1], 3, r"y labels must lie in \[0, 3\)"),
    (SOFTMAX3, [0, 1.5, 2], 3, r"y must hold integer class labels"),
    (LOGISTIC, [0, 0.5, 1], 3, r"y must hold integer class labels"),
    (LOGISTIC, [0, 1, 2], 3, r"y must be 0/1 for loss='logistic'"),
    (Objective("logistic_mse"), [-1, 0, 1], 3, r"y must be 0/1"),
    (LOGISTIC, [0, np.nan, 1], 3, r"y contains NaN or inf"),
    (SQUARED, [0.0, np.inf], 2, r"y contains NaN or inf"),
    (SOFTMAX3, ["a", "b"], 2, r"y must be numeric"),
], ids=["too-long", "too-short", "2d", "label-too-big", "label-negative", "non-integer",
        "non-integer-binary", "not-0/1", "not-0/1-mse", "nan", "inf", "str"])
def test_bad_targets(objective, y, n, match):
    with pytest.raises(ValueError, match=match):
        V.as_targets(np.asarray(y), objective, n)


def test_check_batch_names_the_arguments():
    X, y = V.check_batch(np.ones((3, 2)), [0, 1, 1], LOGISTIC)
    assert X.shape == (3, 2) and y.shape == (3,)
    with pytest.raises(ValueError, match=r"^y_train has 2 entries but X has 3 rows"):
        V.check_batch(np.ones((3, 2)), [0, 1], LOGISTIC, names=("X_train", "y_train"))
    with pytest.raises(ValueError, match=r"^X_train contains NaN"):
        V.check_batch(np.array([[np.nan, 1.0]]), [0], LOGISTIC, names=("X_train", "y_train"))
    with pytest.raises(ValueError, match=r"^X_train must not be empty"):
        V.check_batch(np.ones((0, 2)), [], LOGISTIC, names=("X_train", "y_train"))


def test_check_n_features():
    V.check_n_features(np.ones((2, 4)), 4)
    with pytest.raises(ValueError, match=r"X_test has 3 features, expected 4"):
        V.check_n_features(np.ones((2, 3)), 4, name="X_test")


# --------------------------------------------------------------------------- scalars
def test_valid_scalars():
    assert V.check_scalar(0.0, "l2", low=0) == 0.0  # λ = 0 is allowed
    assert V.check_scalar(1e-3, "learning_rate", low=0, low_inclusive=False) == 1e-3
    assert V.check_scalar(np.float32(0.5), "lr", low=0) == 0.5
    assert V.check_scalar(jnp.asarray(0.25), "lr", low=0) == 0.25  # 0-d arrays are scalars
    assert V.check_scalar(np.array(2.0), "lr") == 2.0
    n = V.check_scalar(3.0, "n_steps", integer=True, low=1)
    assert n == 3 and isinstance(n, int)
    assert V.check_scalar(np.int64(7), "n_steps", integer=True) == 7
    assert V.check_scalar(float("inf"), "max_norm", allow_inf=True) == float("inf")
    assert V.check_scalar(1.0, "p", low=0, high=1) == 1.0


@pytest.mark.parametrize("value,kwargs,match", [
    (-0.1, dict(low=0), r"^l2 must be >= 0, got -0.1"),
    (0.0, dict(low=0, low_inclusive=False), r"^l2 must be > 0, got 0.0"),
    (-1.0, dict(low=0, low_inclusive=False), r"^l2 must be > 0"),
    (1.5, dict(high=1), r"^l2 must be <= 1"),
    (float("nan"), dict(low=0), r"^l2 must be finite"),
    (float("inf"), dict(low=0), r"^l2 must be finite"),
    (2.5, dict(integer=True), r"^l2 must be an integer"),
    (np.array([0.1, 0.2]), {}, r"^l2 must be a scalar, got shape \(2,\)"),
    (np.array([0.1]), {}, r"^l2 must be a scalar"),
    ([1.0], {}, r"^l2 must be a scalar"),
], ids=["negative", "zero-exclusive", "negative-exclusive", "too-high", "nan", "inf", "non-int",
        "vector", "length-1", "list"])
def test_bad_scalars(value, kwargs, match):
    with pytest.raises(ValueError, match=match):
        V.check_scalar(value, "l2", **kwargs)


def test_non_positive_learning_rate():
    for lr in (0.0, -0.01, 0):
        with pytest.raises(ValueError, match=r"learning_rate must be > 0"):
            V.check_scalar(lr, "learning_rate", low=0, low_inclusive=False)


@pytest.mark.parametrize("value", ["0.1", "abc", None, 1 + 2j, np.complex128(1.0), True, np.bool_(True)],
                         ids=["numeric-str", "str", "None", "complex", "np-complex", "bool", "np-bool"])
def test_non_real_scalars_rejected_naming_argument(value):
    # a learning rate of "0.1" or True is a caller's mistake, not 0.1 or 1.0
    with pytest.raises(ValueError, match=r"learning_rate"):
        V.check_scalar(value, "learning_rate", low=0, low_inclusive=False)


def test_check_values():
    np.testing.assert_array_equal(V.check_values([0.0, 0.1, 1.0], "lambdas", low=0), [0.0, 0.1, 1.0])
    np.testing.assert_array_equal(V.check_values(0.5, "lambdas", low=0), [0.5])  # a scalar is a 1-grid
    with pytest.raises(ValueError, match=r"^lambdas must be a non-empty 1-D sequence"):
        V.check_values([], "lambdas")
    with pytest.raises(ValueError, match=r"^lambdas must be a non-empty 1-D sequence"):
        V.check_values([[0.1, 0.2]], "lambdas")
    with pytest.raises(ValueError, match=r"^lambdas\[1\] must be >= 0, got -1.0"):
        V.check_values([0.1, -1.0], "lambdas", low=0)
    with pytest.raises(ValueError, match=r"^lambdas\[0\] must be finite"):
        V.check_values([np.nan], "lambdas", low=0)


# --------------------------------------------------------------------------- objective construction
@pytest.mark.parametrize("kwargs,match", [
    (dict(loss="cross_entropy"), r"^loss must be one of"),
    (dict(loss="Logistic"), r"^loss must be one of"),
    (dict(loss="logistic", reduction="avg"), r"^reduction must be one of"),
    (dict(loss="softmax"), r"^n_classes must be an int >= 2 for loss='softmax'"),  # default 1
    (dict(loss="softmax", n_classes=1), r"^n_classes must be an int >= 2"),
    (dict(loss="hinge", n_classes=0), r"^n_classes must be an int >= 2 for loss='hinge'"),
    (dict(loss="softmax", n_classes=3.0), r"^n_classes must be an int >= 2"),
    (dict(loss="softmax", n_classes=True), r"^n_classes must be an int >= 2"),
    (dict(loss="logistic", n_classes=2), r"^n_classes must be 1 for loss='logistic'"),
    (dict(loss="squared", n_classes=3), r"^n_classes must be 1 for loss='squared'"),
], ids=["unknown-loss", "case", "reduction", "softmax-default-C", "softmax-C1", "hinge-C0",
        "float-C", "bool-C", "logistic-C2", "squared-C3"])
def test_bad_objective(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Objective(**kwargs)


def test_valid_objectives():
    for loss in ("squared", "logistic", "logistic_mse"):
        assert Objective(loss).n_classes == 1
    for loss in ("softmax", "hinge"):
        assert Objective(loss, n_classes=2, reduction="sum").is_multiclass


def test_numpy_integer_n_classes_accepted():
    # n_classes computed as y.max() + 1 is a NumPy integer; it is a valid class count
    obj = Objective("softmax", n_classes=np.int64(3))
    assert obj.n_classes == 3 and isinstance(obj.n_classes, int)
    assert obj == Objective("softmax", n_classes=3) and hash(obj) == hash(Objective("softmax", n_classes=3))


def test_bad_penalty_kind():
    with pytest.raises(ValueError, match=r"penalty kind must be 'l2', 'l1' or 'none', got 'l3'"):
        penalty("l3", 1.0)
    with pytest.raises(ValueError, match=r"penalty kind"):
        penalty("elasticnet", 1.0)
