"""Bad input a new user tries (issue 12's list), at every public entry point: each is refused
before anything is compiled with a ValueError naming the argument, or handled (an int seed for
a key, a whole float for an integer field, a plain (X, y) tuple for a solver). The divergence
rule, reproduce.py, atomic_open and the data layer have their tests beside their modules
(test_train, test_reproduce, test_atomic, test_data_*)."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import engine, meta
from jaxreg.config import TrainData
from jaxreg.objective import Batch, Objective
from jaxreg.solvers import ConvergenceWarning, solve_l1_path, solve_l2_path
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import train

LOGISTIC, SQUARED = Objective("logistic"), Objective("squared")
SOFTMAX10, SOFTMAX3 = Objective("softmax", n_classes=10), Objective("softmax", n_classes=3)
CFG = TrainConfig(n_epochs=2)
rng = np.random.default_rng(0)
X = rng.normal(size=(20, 3))
Y01 = (X[:, 0] > 0).astype(float)
Y10 = np.arange(20) % 10


def batch(X, y):
    return Batch(jnp.asarray(X), jnp.asarray(y))


# ------------------------------------------------------- hand-built data at train/sweep/meta/engine
def entry_points():
    """(name, call(objective, config, data, init_params)) for every entry point that takes data."""
    return [
        ("train", lambda o, c, d, p=None: train(o, d, Hyper(), c, init_params=p)),
        ("sweep", lambda o, c, d, p=None: sweep(o, d, c, {"learning_rate": [0.1]}, init_params=p)),
        ("meta", lambda o, c, d, p=None: meta.make_val_loss(o, c, d, p, horizon=2)),
        ("engine", lambda o, c, d, p=None: engine.train_models(o, c, d, engine.stack_hypers(1), params0=p)),
    ]


HOLDOUT = batch(X[:6], Y01[:6])
CASES = [
    # a batch larger than the training set (a JAX slicing error before)
    ("batch_size", LOGISTIC, TrainConfig(method="minibatch", batch_size=50, n_epochs=2),
     TrainData(batch(X, Y01), HOLDOUT), None, r"batch_size \(50\) must be <= the number of training examples \(20\)"),
    # early stopping without a hold-out set (silently stopped at epoch 2 before)
    ("holdout", LOGISTIC, TrainConfig(early_stopping="patience", n_epochs=2), TrainData(batch(X, Y01)), None,
     r"early_stopping='patience' needs a hold-out set \(data.holdout\)"),
    # softmax data for C = 10 trained with C = 3 (a NaN loss before)
    ("n_classes", SOFTMAX3, CFG, TrainData(batch(X, Y10), batch(X[:6], Y10[:6])), None,
     r"data.train.y labels must lie in \[0, 3\)"),
    # data prepared for another objective: multiclass labels for the logistic loss; 0/1 floats
    # for softmax; integer labels for the squared loss
    ("target", LOGISTIC, CFG, TrainData(batch(X, Y10), HOLDOUT), None, r"data.train.y must be 0/1 for loss='logistic'"),
    ("target", SOFTMAX10, CFG, TrainData(batch(X, Y01), batch(X[:6], Y10[:6])), None,
     r"data.train.y must hold integer class labels for loss='softmax'"),
    ("target", SQUARED, CFG, TrainData(batch(X, Y10), batch(X[:6], Y01[:6])), None,
     r"data.train.y must be real-valued \(floating\) for loss='squared'"),
    # initial weights of the wrong shape (a dot_general error before)
    ("init", LOGISTIC, CFG, TrainData(batch(X, Y01), HOLDOUT), {"W": np.zeros(4), "b": np.zeros(())},
     r"(init_params|params0)\['W'\] must have shape \(3,\), got \(4,\)"),
    # not a TrainData at all
    ("type", LOGISTIC, CFG, (X, Y01), None, r"data must be a TrainData"),
]


@pytest.mark.parametrize("entry", [e[0] for e in entry_points()])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_hand_built_data_is_checked_at_every_entry_point(entry, case):
    _, objective, config, data, init, match = case
    call = dict(entry_points())[entry]
    with pytest.raises(ValueError, match=match):
        call(objective, config, data, init)


# ------------------------------------------------------------------ TrainConfig's fields
def test_integer_fields_are_normalised_and_fractions_refused():
    cfg = TrainConfig(method="minibatch", batch_size=8.0, n_epochs=np.int64(4), eval_every=2.0, patience=np.float32(3),
                      max_steps=10.0, check_every=5.0)
    for name, value in [("batch_size", 8), ("n_epochs", 4), ("eval_every", 2), ("patience", 3), ("max_steps", 10),
                        ("check_every", 5)]:
        assert getattr(cfg, name) == value and type(getattr(cfg, name)) is int, name
    same = TrainConfig(method="minibatch", batch_size=8, n_epochs=4, eval_every=2, patience=3, max_steps=10, check_every=5)
    assert cfg == same and hash(cfg) == hash(same)
    # the program compiled for one is the other's: the float config trains, and so does the int one after it
    data = prepare_data(LOGISTIC, same, X, Y01)
    a = train(LOGISTIC, data, Hyper(), cfg, key=1)
    b = train(LOGISTIC, data, Hyper(), same, key=1)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    for field, value in [("batch_size", 8.5), ("n_epochs", 2.5), ("n_epochs", True), ("eval_every", "2"),
                         ("patience", np.nan), ("max_steps", 0), ("check_every", -1)]:
        kw = {"method": "minibatch", "batch_size": 8, field: value}
        with pytest.raises(ValueError, match=field):
            TrainConfig(**kw)


@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan"), float("inf"), "0.9", None, True])
def test_momentum_is_a_finite_float_in_0_1(value):
    with pytest.raises(ValueError, match="momentum"):
        TrainConfig(momentum=value)
    assert type(TrainConfig(momentum=np.float32(0.5)).momentum) is float


# ---------------------------------------------------------------------------- prepare_data
@pytest.mark.parametrize("dtype, match", [(np.int32, r"dtype must be float32 or float64, got int32"),
                                          (np.float16, r"dtype must be float32 or float64, got float16"),
                                          ("complex64", r"dtype must be float32 or float64, got complex64"),
                                          ("not-a-dtype", r"dtype must be a floating dtype")])
def test_prepare_data_dtype(dtype, match):
    with pytest.raises(ValueError, match=match):
        prepare_data(LOGISTIC, CFG, X, Y01, dtype=dtype)


def test_half_precision_input_is_promoted_and_float64_needs_x64():
    data = prepare_data(LOGISTIC, CFG, X.astype(np.float16), Y01)
    assert data.train.X.dtype == np.float32  # not trained silently in float16
    np.testing.assert_array_equal(data.train.X, X.astype(np.float16).astype(np.float32))
    assert prepare_data(LOGISTIC, CFG, np.arange(40).reshape(20, 2), Y01).train.X.dtype == np.float32
    with jax.enable_x64(False):
        assert prepare_data(LOGISTIC, CFG, X, Y01).train.X.dtype == np.float32  # X's float64, as JAX can
        with pytest.raises(ValueError, match="dtype=float64 needs 64-bit JAX"):
            prepare_data(LOGISTIC, CFG, X, Y01, dtype=np.float64)


@pytest.mark.parametrize("args, match", [
    ((X, Y01 + 1j), r"y_train must be numeric \(real numbers\), got dtype complex128"),
    ((X, Y01, X[:4], Y01[:4] * 1j), r"y_holdout must be numeric"),
    ((X + 1j, Y01), r"X_train must hold real numbers, got dtype complex128"),
    (([[1.0, 2.0], [3.0]], [0, 1]), r"X_train must be a rectangular array \(rows of equal length\)"),
    ((X, [0, [1, 0]] + [0] * 18), r"y_train must be a rectangular array"),
    ((X, Y01, [[1.0, 2.0, 3.0], [1.0, 2.0]], [0, 1]), r"X_holdout must be a rectangular array"),
    (([["a", "b", "c"]] * 20, Y01), r"X_train must hold real numbers"),
])
def test_prepare_data_values(args, match):
    with pytest.raises(ValueError, match=match):
        prepare_data(SQUARED if "y_" in match and "numeric" in match else LOGISTIC, CFG, *args)


# --------------------------------------------------------------------------------- devices
@pytest.mark.parametrize("devices, match", [([], "devices must name at least one device"),
                                            (["cpu"], "devices must be jax devices"),
                                            ("cpu", "devices must be a list of jax devices"),
                                            (jax.devices()[:1] * 2, "devices must not repeat a device")])
def test_devices_are_checked_before_xla_sees_them(devices, match):
    data = prepare_data(LOGISTIC, CFG, X, Y01)
    with pytest.raises(ValueError, match=match):  # an empty list aborted the interpreter in XLA
        sweep(LOGISTIC, data, CFG, {"learning_rate": [0.1]}, devices=devices)
    with pytest.raises(ValueError, match=match):
        engine.train_models(LOGISTIC, CFG, data, engine.stack_hypers(1), devices=devices)


# ------------------------------------------------------------------------------------ keys
def test_int_seeds_and_none_are_keys_and_other_keys_are_named():
    data = prepare_data(LOGISTIC, TrainConfig(method="minibatch", batch_size=5, n_epochs=2), X, Y01, X[:6], Y01[:6])
    cfg = TrainConfig(method="minibatch", batch_size=5, n_epochs=2)
    same = lambda a, b: np.testing.assert_array_equal(a.params["W"], b.params["W"])  # noqa: E731
    same(train(LOGISTIC, data, Hyper(), cfg, key=42, init_scale=0.1),
         train(LOGISTIC, data, Hyper(), cfg, key=jax.random.PRNGKey(42), init_scale=0.1))
    same(train(LOGISTIC, data, Hyper(), cfg, key=None), train(LOGISTIC, data, Hyper(), cfg, key=jax.random.PRNGKey(0)))
    a = sweep(LOGISTIC, data, cfg, {"seed": [0, 1]}, key=42)
    b = sweep(LOGISTIC, data, cfg, {"seed": [0, 1]}, key=jax.random.PRNGKey(42))
    np.testing.assert_array_equal(a.flat.params["W"], b.flat.params["W"])
    vl = meta.make_val_loss(LOGISTIC, cfg, data, None, 42, horizon=3)
    assert float(vl([0.0])[0]) == float(meta.make_val_loss(LOGISTIC, cfg, data, None, jax.random.PRNGKey(42),
                                                           horizon=3)([0.0])[0])
    # typed keys (jax.random.key) give the bits of the raw ones, in train and in the grid engine
    for grid in ({"seed": [0, 1]}, {"learning_rate": [0.1, 0.2]}):
        np.testing.assert_array_equal(sweep(LOGISTIC, data, cfg, grid, key=jax.random.key(42)).flat.params["W"],
                                      sweep(LOGISTIC, data, cfg, grid, key=42).flat.params["W"])
    same(train(LOGISTIC, data, Hyper(), cfg, key=jax.random.key(3)), train(LOGISTIC, data, Hyper(), cfg, key=3))
    with pytest.raises(ValueError, match="keys: typed keys of the rbg generator"):
        sweep(LOGISTIC, data, cfg, {"seed": [0]}, key=jax.random.key(0, impl="rbg"))
    for bad in ("seed", 1.5, -1, 2**70, True, np.zeros(3, np.uint32), [0, 1]):
        for call in (lambda k: train(LOGISTIC, data, Hyper(), cfg, key=k),
                     lambda k: sweep(LOGISTIC, data, cfg, {"seed": [0]}, key=k),
                     lambda k: meta.make_val_loss(LOGISTIC, cfg, data, None, k, horizon=3)):
            with pytest.raises(ValueError, match="key"):
                call(bad)


# --------------------------------------------------------------------------------- solvers
@pytest.mark.parametrize("solve", [solve_l2_path, solve_l1_path])
def test_solvers_take_a_plain_tuple(solve):
    lam = [0.1, 0.01]
    a = solve(LOGISTIC, (X, Y01), lam)  # an AttributeError before
    b = solve(LOGISTIC, Batch(jnp.asarray(X), jnp.asarray(Y01)), lam)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    for bad, match in [((X,), r"batch must be a Batch\(X, y\[, weight\]\) or an \(X, y\) pair"), (X, "batch must be"),
                       ((X, Y01[:5]), "batch.y has 5 entries"), (([[1.0], [2.0, 3.0]], [0, 1]), "batch.X must be a rectangular")]:
        with pytest.raises(ValueError, match=match):
            solve(LOGISTIC, bad, lam)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got float16"):
        solve(LOGISTIC, (X, Y01), lam, dtype=np.float16)


@pytest.mark.parametrize("solve", [solve_l2_path, solve_l1_path])
def test_separable_data_without_penalty_warns_and_is_not_converged(solve):
    """As scikit-learn: no minimum exists (the loss → 0 as ‖W‖ → ∞), so say so. λ > 0 members
    and non-separable data are left alone."""
    Xs = np.concatenate([X[:10] - 3.0, X[10:] + 3.0])
    ys = np.r_[np.zeros(10), np.ones(10)]
    assert np.all((2 * ys - 1) * Xs.sum(1) > 0)  # separable by w = (1, 1, 1)
    with pytest.warns(ConvergenceWarning, match=r"lambdas\[1\] = 0 and the training data are linearly separable"):
        res = solve(LOGISTIC, (Xs, ys), [0.1, 0.0])
    assert np.asarray(res.converged).tolist() == [True, False]
    y10 = np.where(Xs[:, 0] > 0, 2, 0)  # separable three-class data (class 1 absent)
    with pytest.warns(ConvergenceWarning, match=r"lambdas\[0\]"):
        assert not bool(solve(SOFTMAX3, (Xs, y10), [0.0]).converged[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overlapping classes: a minimum exists, no warning
        noisy = (X[:, 0] + rng.normal(size=20) > 0).astype(float)
        assert np.all(np.asarray(solve(LOGISTIC, (X, noisy), [0.0]).converged))


@pytest.mark.parametrize("solve", [solve_l2_path, solve_l1_path])
def test_a_single_class_is_refused(solve):
    with pytest.raises(ValueError, match=r"batch.y holds a single class \(1\)"):
        solve(LOGISTIC, (X, np.ones(20)), [0.1])
    with pytest.raises(ValueError, match=r"batch.y holds a single class \(2\)"):
        solve(SOFTMAX3, (X, np.full(20, 2)), [0.1])
    solve(SQUARED, (X, np.ones(20)), [0.1])  # regression: fine


# --------------------------------------------------------------------- meta's entry point
def test_make_val_loss_defaults_and_base_hyper():
    data = prepare_data(LOGISTIC, CFG, X, Y01, X[:6], Y01[:6])
    vl = meta.make_val_loss(LOGISTIC, CFG, data, None, horizon=2)  # an IndexError before
    assert vl.params0["W"].shape == (3,) and float(np.abs(vl.params0["W"]).max()) == 0.0
    for base, field in [(Hyper(learning_rate=-0.5), "learning_rate"), (Hyper(l2=-1.0), "l2"),
                        (Hyper(decay_time=0.0), "decay_time")]:  # gradient ascent ran silently
        with pytest.raises(ValueError, match=field):
            meta.make_val_loss(LOGISTIC, CFG, data, None, horizon=2, base=base)
    with pytest.raises(ValueError, match="data.holdout is required"):
        meta.make_val_loss(LOGISTIC, CFG, prepare_data(LOGISTIC, CFG, X, Y01), None, horizon=2)


# --------------------------------------------------------------- the persistent XLA cache
def test_compile_cache_honours_jaxreg_cache_dir(tmp_path, monkeypatch):
    from experiments.benchmarks import timing as bench

    before = jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JAXREG_XLA_CACHE", raising=False)
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        assert bench.enable_compile_cache() == str(tmp_path / "cache" / "xla")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache" / "xla")
        jax.config.update("jax_compilation_cache_dir", None)
        monkeypatch.setenv("JAXREG_XLA_CACHE", "0")
        assert bench.enable_compile_cache() is None and jax.config.jax_compilation_cache_dir is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
