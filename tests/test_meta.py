"""Hypergradients (jaxreg.meta): three derivatives that agree (float64 and float32, any Hyper
field or vector-valued extra), implicit differentiation against a converged unrolled run, the
guarded meta-optimiser, bad input. Online optimizers: tests/test_meta_online.py.

Small synthetic stand-ins (n = 200, d = 20, C = 5) keep the suite fast; float64 comes from
tests/conftest.py, float32 problems are built explicitly. Problems are module-scoped so each
compiled program is built once.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxreg import meta
from jaxreg.meta import implicit_l2_hypergrad
from jaxreg.objective import Batch, Objective
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.trainer import make_trainer, train

KEY = jax.random.PRNGKey(0)


def rel(a, b):
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def softmax_data(dtype, n=200, n_hold=100, d=20, C=5, seed=0):
    """An MNIST-softmax-like problem: Gaussian features, labels from a noisy linear model."""
    r = np.random.default_rng(seed)
    X = r.normal(size=(n + n_hold, d))
    y = np.argmax(X @ r.normal(size=(d, C)) + 2.0 * r.gumbel(size=(n + n_hold, C)), axis=1)
    mk = lambda s: Batch(jnp.asarray(X[s], dtype), jnp.asarray(y[s], jnp.int32))  # noqa: E731
    return TrainData(mk(slice(0, n)), mk(slice(n, None)))


def binary_data(dtype, n=60, n_hold=40, d=5, seed=1):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n + n_hold, d))
    y = (X @ r.normal(size=d) + r.logistic(size=n + n_hold) > 0).astype(np.float64)
    mk = lambda s: Batch(jnp.asarray(X[s], dtype), jnp.asarray(y[s], dtype))  # noqa: E731
    return TrainData(mk(slice(0, n)), mk(slice(n, None)))


SOFTMAX = Objective("softmax", n_classes=5)
LOGISTIC = Objective("logistic")


@pytest.fixture(scope="module")
def softmax3():
    """Mini-batch SGD (batch 20, 10 steps/epoch), inverse-time schedule, L2: K = 37 steps (a
    partial last epoch), hyperparameters (log η0, log T, log λ), √K checkpointing."""
    data = softmax_data(jnp.float64)
    cfg = TrainConfig(method="minibatch", batch_size=20, schedule="inverse_time")
    p0 = SOFTMAX.init_params(20, jax.random.PRNGKey(1), 0.1, jnp.float64)
    return meta.make_val_loss(SOFTMAX, cfg, data, p0, KEY, horizon=37, checkpoint=True,
                              hyper_names=("log_lr", "log_decay_time", "log_l2"))


@pytest.fixture(scope="module")
def softmax1_f32():
    data = softmax_data(jnp.float32)
    cfg = TrainConfig(method="minibatch", batch_size=20)
    return meta.make_val_loss(SOFTMAX, cfg, data, SOFTMAX.init_params(20, dtype=jnp.float32), KEY,
                              horizon=30, checkpoint=True)


# ------------------------------------------------------------------------ three derivatives agree
def test_horizon_config_and_blocks():
    cfg = meta.horizon_config(TrainConfig(method="minibatch", batch_size=20, record_history=True,
                                          early_stopping="patience", n_epochs=3), 200, 37, checkpoint=True)
    assert (cfg.max_steps, cfg.n_epochs, cfg.eval_every, cfg.remat) == (37, 4, 2, True)
    assert not cfg.record_history and cfg.early_stopping is None
    assert meta.checkpoint_blocks(1000) in ((25, 1000), (40, 1000))
    assert meta.checkpoint_blocks(100) == (10, 100)
    block, n = meta.checkpoint_blocks(997)  # prime: padded to a multiple of ⌈√997⌉ = 32
    assert (block, n) == (32, 1024)
    cfg = meta.horizon_config(TrainConfig(method="full_batch"), 50, 10)
    assert (cfg.n_epochs, cfg.eval_every, cfg.remat) == (10, 10, False)


def test_three_ways_agree_float64_softmax_3d(softmax3, x64):
    v = np.log([0.3, 2.0, 1e-2])
    fwd = meta.grid_hypergrad(softmax3, np.stack([v, v + 0.5]), "forward")  # vmapped over points
    rev = meta.hypergrad(softmax3, v, "reverse")  # through √K checkpointed blocks
    fd = meta.hypergrad(softmax3, v, "fd")
    assert not np.any(fwd.diverged) and not bool(rev.diverged)
    assert float(fwd.loss[0]) == pytest.approx(float(rev.loss), rel=1e-13)
    assert float(fd.loss) == pytest.approx(float(rev.loss), rel=1e-13)
    assert rel(fwd.grad[0], rev.grad) <= 1e-10
    assert rel(fd.grad, rev.grad) <= 1e-6
    assert np.all(np.abs(np.asarray(rev.grad)) > 1e-6)  # every hyperparameter matters here
    assert float(fwd.loss[1]) != float(fwd.loss[0])


@pytest.fixture(scope="module")
def linreg():
    """Toy problem: linear regression, full-batch GD, K = 60; diverges for η ≫ 2/L."""
    r = np.random.default_rng(2)
    X = r.normal(size=(80, 4)) * 2
    y = X @ r.normal(size=4) + r.normal(size=80)
    data = TrainData(Batch(jnp.asarray(X[:60]), jnp.asarray(y[:60])), Batch(jnp.asarray(X[60:]), jnp.asarray(y[60:])))
    obj = Objective("squared")
    return meta.make_val_loss(obj, TrainConfig(method="full_batch"), data, obj.init_params(4, dtype=jnp.float64),
                              KEY, horizon=60, base=Hyper(l2=0.1), hyper_names=("log_lr", "log_l2"))


def test_three_ways_agree_float64_toy(linreg, x64):
    v = [math.log(0.02), math.log(0.1)]
    fwd = meta.grid_hypergrad(linreg, [v], "forward")
    fd = meta.hypergrad(linreg, v, "fd")
    assert rel(fd.grad, fwd.grad[0]) <= 1e-6
    # a diverged inner run (parameters overflow) is a reported outcome, not an exception
    out = meta.hypergrad(linreg, [math.log(1e6), 0.0], "fd")
    assert bool(out.diverged)
    out = meta.hypergrad(linreg, [math.log(50.0), 0.0], "fd")  # finite θ, overflowing loss
    assert not bool(out.diverged) and not np.isfinite(float(out.loss))


def test_three_ways_agree_float32(softmax1_f32):
    v = [math.log(0.2)]
    fwd, rev, fd = (meta.hypergrad(softmax1_f32, v, m) for m in ("forward", "reverse", "fd"))
    assert fwd.loss.dtype == jnp.float32 and fwd.grad.dtype == jnp.float32
    assert rel(rev.grad, fwd.grad) <= 1e-3
    assert rel(fd.grad, fwd.grad) <= 1e-3


# ------------------------------------------------------------------------ implicit differentiation
def test_implicit_l2_matches_converged_unrolled(x64):
    obj = Objective("softmax", n_classes=5, fit_intercept=False)
    data = softmax_data(jnp.float64)
    p0 = obj.init_params(20, dtype=jnp.float64)
    lam, lr = 0.05, 0.5
    vl = meta.make_val_loss(obj, TrainConfig(method="full_batch"), data, p0, KEY, horizon=600,
                            hyper_names=("log_l2",), base=Hyper(learning_rate=lr))
    unrolled = meta.hypergrad(vl, [math.log(lam)], "forward")
    theta = make_trainer(obj, vl.config)(Hyper(lr, 1.0, lam, 0.0), p0, data, KEY).params
    imp = implicit_l2_hypergrad(obj, theta, data, lam)
    assert float(imp.stationarity) < 1e-8 and float(imp.cg_residual) < 1e-8
    assert float(imp.val_loss) == pytest.approx(float(unrolled.loss), rel=1e-12)
    assert rel(imp.grad_log_l2, unrolled.grad[0]) <= 1e-4
    assert float(imp.grad_l2) * lam == pytest.approx(float(imp.grad_log_l2))
    # away from the optimum the formula does not apply, and says so
    assert float(implicit_l2_hypergrad(obj, p0, data, lam).stationarity) > 1e-2


# ------------------------------------------------------------------------ meta-optimisation
def test_meta_optimize_descends_and_guards_chaos(softmax3, x64):
    """Jointly (log η0, log T, log λ), three starts in parallel, the last deep in the chaotic
    regime (η0 = 1000: the unrolled hypergradient explodes)."""
    starts = np.log([[0.05, 1.0, 1e-3], [0.5, 10.0, 1e-1], [1e3, 2.0, 1e-2]])
    res = meta.meta_optimize(softmax3, starts, n_steps=6, optimizer=optax.adam(0.3))
    tr = res.trace
    assert res.hyper_names == ("log_lr", "log_decay_time", "log_l2") and res.n_hypergrads == 6
    assert tr.loss.shape == (3, 6) and tr.log_hyper.shape == (3, 6, 3) and tr.grad.shape == (3, 6, 3)
    assert np.all(res.found) and np.all(np.isfinite(res.loss)) and np.all(np.isfinite(res.log_hyper))
    assert np.all(res.loss[:2] < tr.loss[:2, 0] - 1e-3)  # descended from the sane starts
    assert not np.any(tr.bad[:2])
    assert tr.bad[2, 0] and (tr.exploded[2, 0] or tr.nonfinite[2, 0])  # chaos detected ...
    assert tr.log_hyper[2, 1, 0] < tr.log_hyper[2, 0, 0]  # ... and retreated from (smaller η0)
    # the best point is one the trace evaluated and accepted, with its loss
    for s in range(3):
        i = np.argmin(np.where(tr.bad[s], np.inf, tr.loss[s]))
        assert res.loss[s] == tr.loss[s, i] and np.array_equal(res.log_hyper[s], tr.log_hyper[s, i])


def test_meta_optimize_diverged_inner_run_is_a_flag(linreg, x64):
    """η far beyond 2/L overflows the inner run: flagged, stepped away from, never a NaN answer."""
    res = meta.meta_optimize(linreg, np.log([[1e-3, 0.1], [1e6, 0.1]]), n_steps=7,
                             optimizer=optax.adam(0.5))
    tr = res.trace
    assert tr.diverged[1, 0] and tr.bad[1, 0]
    # no accepted point yet: retreat along -log η, twice as far each time
    np.testing.assert_allclose(np.diff(tr.log_hyper[1, :3, 0]), [-1.0, -2.0])
    assert np.all(res.found) and np.all(np.isfinite(res.loss)) and np.all(np.isfinite(tr.log_hyper))
    assert res.loss[0] < tr.loss[0, 0]


# ------------------------------------------------------------------------ bad input
def test_bad_input_names_the_argument(softmax1_f32):
    data = softmax_data(jnp.float32)
    p0 = SOFTMAX.init_params(20, dtype=jnp.float32)
    cfg = TrainConfig(method="minibatch", batch_size=20)
    for K in (0, -3, 2.5):
        with pytest.raises(ValueError, match="horizon"):
            meta.make_val_loss(SOFTMAX, cfg, data, p0, KEY, horizon=K)
    with pytest.raises(ValueError, match="data.holdout"):
        meta.make_val_loss(SOFTMAX, cfg, TrainData(data.train), p0, KEY, horizon=5)
    with pytest.raises(ValueError, match="data.holdout"):
        implicit_l2_hypergrad(SOFTMAX, p0, TrainData(data.train), 0.1)
    with pytest.raises(ValueError, match="hyper_names"):
        meta.make_val_loss(SOFTMAX, cfg, data, p0, KEY, horizon=5, hyper_names=("log_eta",))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="log_hyper0"):
            meta.meta_optimize(softmax1_f32, [[0.0], [bad]])
        with pytest.raises(ValueError, match="log_hyper"):
            meta.hypergrad(softmax1_f32, [bad])
    with pytest.raises(ValueError, match="log_hyper0"):
        meta.meta_optimize(softmax1_f32, [[0.0, 1.0]])
    with pytest.raises(ValueError, match="mode"):
        meta.hypergrad(softmax1_f32, [0.0], "central")
    with pytest.raises(ValueError, match="n_steps"):
        meta.meta_optimize(softmax1_f32, [[0.0]], n_steps=0)
    with pytest.raises(ValueError, match="l2"):
        implicit_l2_hypergrad(SOFTMAX, p0, data, 0.0)
    with pytest.raises(ValueError, match="learning_rate"):
        meta.make_val_loss(SOFTMAX, cfg, data, p0, KEY, horizon=5, base=Hyper(learning_rate=-0.5))
    with pytest.raises(ValueError, match="params0"):
        meta.make_val_loss(SOFTMAX, cfg, data, {"W": p0["W"][:3], "b": p0["b"]}, KEY, horizon=5)
    with pytest.raises(ValueError, match="key"):
        meta.make_val_loss(SOFTMAX, cfg, data, p0, "seven", horizon=5)
    with pytest.raises(ValueError, match="data"):
        meta.make_val_loss(SOFTMAX, cfg, (data.train.X, data.train.y), p0, KEY, horizon=5)
    with pytest.raises(ValueError, match="hyper_names"):  # log_<name> needs base.extra[name]
        meta.make_val_loss(SOFTMAX, cfg, data, p0, KEY, horizon=5, hyper_names=("log_beta",))


def test_defaults_at_the_boundary(softmax1_f32):
    """params0=None means zeros in the data's dtype (not an IndexError); key=42 means
    PRNGKey(42); both give the very numbers of the explicit arguments."""
    vl = softmax1_f32
    cfg = vl.train_config
    implicit = meta.make_val_loss(SOFTMAX, cfg, vl.data, None, 42, horizon=vl.horizon, checkpoint=True)
    explicit = vl.replace(key=jax.random.PRNGKey(42))
    assert implicit.dtype == jnp.float32 and implicit.params0["W"].shape == (20, 5)
    np.testing.assert_array_equal(implicit.params0["W"], np.zeros((20, 5), np.float32))
    assert float(implicit([math.log(0.2)])[0]) == float(explicit([math.log(0.2)])[0])
    assert float(implicit([math.log(0.2)])[0]) != float(vl([math.log(0.2)])[0])  # another batch order


# ------------------------------------------------------------------------ any hyperparameter
def per_epoch_rates(hyper, steps_per_epoch):
    """A learned schedule: η(t) = hyper.extra["rates"][epoch of t] (a vector-valued extra)."""
    rates = hyper.extra["rates"]
    return lambda count: rates[jnp.minimum(count // steps_per_epoch, rates.shape[0] - 1)]


def test_vector_valued_extra_schedule(x64):
    """log_rates of a 3-epoch schedule: the flat vector is split by the base value's size; the
    loss equals train() with those rates; forward = reverse = FD; the L2 field works beside it."""
    data = softmax_data(jnp.float64, n=60, n_hold=40, d=6, C=3)
    obj = Objective("softmax", n_classes=3)
    cfg = TrainConfig(method="minibatch", batch_size=20, schedule=per_epoch_rates)
    base = Hyper(l2=1e-2, extra={"rates": np.array([0.3, 0.2, 0.1])})
    vl = meta.make_val_loss(obj, cfg, data, None, KEY, horizon=9, base=base, hyper_names=("log_rates", "log_l2"))
    assert vl.n_hyper == 4 and vl.fn.sizes() == (3, 1)
    v = np.log([0.5, 0.4, 0.3, 3e-2])
    want = train(obj, data, Hyper(l2=3e-2, extra={"rates": np.array([0.5, 0.4, 0.3])}),
                 TrainConfig(method="minibatch", batch_size=20, schedule=per_epoch_rates, n_epochs=3), key=KEY)
    want_loss = np.mean(obj.per_example_loss(want.params, data.holdout))
    fwd, rev, fd = (meta.hypergrad(vl, v, m) for m in ("forward", "reverse", "fd"))
    assert float(fwd.loss) == pytest.approx(float(want_loss), rel=1e-13)
    assert fwd.grad.shape == (4,) and np.all(np.abs(np.asarray(fwd.grad)) > 1e-8)
    assert rel(rev.grad, fwd.grad) <= 1e-10
    assert rel(fd.grad, fwd.grad) <= 1e-6
    with pytest.raises(ValueError, match="log_hyper"):
        meta.hypergrad(vl, v[:2])
