"""Online hypergradient optimizers and optax factories inside the trainer: SGD-HD's update rule,
SGD-HD with β = 0 is SGD exactly, and optax.adamw / hypergradient_sgd through train, sweep,
the grid engine and a hypergradient (forward = reverse = FD). float64 from tests/conftest.py;
the SGD-HD study runs are checked in float32 as the experiment runs them."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxreg import meta
from jaxreg.objective import Batch, Objective
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.trainer import train

KEY = jax.random.PRNGKey(0)
OBJ = Objective("softmax", n_classes=3)


def rel(a, b):
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def problem(dtype, n=60, n_hold=30, d=5, seed=4):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n + n_hold, d))
    y = np.argmax(X @ r.normal(size=(d, 3)) + r.gumbel(size=(n + n_hold, 3)), axis=1)
    mk = lambda s: Batch(jnp.asarray(X[s], dtype), jnp.asarray(y[s], jnp.int32))  # noqa: E731
    return TrainData(mk(slice(0, n)), mk(slice(n, None)))


@pytest.fixture(scope="module")
def data():
    return problem(jnp.float64)


MINI = dict(method="minibatch", batch_size=20, n_epochs=4, eval_every=2)
ADAMW = functools.partial(optax.adamw, weight_decay=0.05)


def test_hypergradient_sgd_update_rule():
    tx = meta.hypergradient_sgd(0.1, beta=0.5)
    params = {"w": jnp.zeros(2)}
    s = tx.init(params)
    g1, g2 = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, -1.0])}
    u1, s = tx.update(g1, s)
    assert float(s.learning_rate) == pytest.approx(0.1)  # no previous gradient yet
    np.testing.assert_allclose(u1["w"], [-0.1, -0.2])
    u2, s = tx.update(g2, s)
    assert float(s.learning_rate) == pytest.approx(0.1 + 0.5 * (3.0 - 2.0))
    np.testing.assert_allclose(u2["w"], -0.6 * np.array([3.0, -1.0]), rtol=1e-6)
    _, s = tx.update({"w": jnp.array([-30.0, 0.0])}, s)  # η would go negative: held at 0
    assert float(s.learning_rate) == 0.0
    # a schedule as learning_rate: η0 = schedule(0)
    s = meta.hypergradient_sgd(optax.constant_schedule(0.25), beta=0.0).init(params)
    assert float(s.learning_rate) == 0.25


def np_sgd_hd(data, lr0, beta, n_epochs, key, bs=20):
    """SGD-HD written out in NumPy on the trainer's batch order (one permutation per epoch)."""
    X, y = np.asarray(data.train.X), np.asarray(data.train.y)
    n, C = X.shape[0], 3
    W, b = np.zeros((X.shape[1], C)), np.zeros(C)
    prev, lr, lrs = None, lr0, []
    for e in range(n_epochs):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 0), e), n))
        for i in range(n // bs):
            idx = perm[i * bs:(i + 1) * bs]
            s = X[idx] @ W + b
            p = np.exp(s - s.max(1, keepdims=True))
            r = (p / p.sum(1, keepdims=True) - np.eye(C)[y[idx]]) / bs
            g = np.concatenate([(X[idx].T @ r).ravel(), r.sum(0)])
            if prev is not None:
                lr = max(lr + beta * g @ prev, 0.0)
            W, b = W - lr * g[:-C].reshape(W.shape), b - lr * g[-C:]
            prev = g
            lrs.append(lr)
    return {"W": W, "b": b}, np.array(lrs)


def test_sgd_hd_in_train_beta0_is_sgd_exactly_and_beta_follows_numpy(data):
    sgd = train(OBJ, data, Hyper(learning_rate=0.3), TrainConfig(**MINI), key=KEY)
    for cfg, hyper in ((TrainConfig(**MINI, optimizer=functools.partial(meta.hypergradient_sgd, beta=0.0)),
                        Hyper(learning_rate=0.3)),
                       (TrainConfig(**MINI, optimizer=meta.hypergradient_sgd),
                        Hyper(learning_rate=0.3, extra={"beta": 0.0}))):
        hd = train(OBJ, data, hyper, cfg, key=KEY)
        for k in ("W", "b"):  # the same operations in the same order: bitwise equal
            np.testing.assert_array_equal(np.asarray(hd.params[k]), np.asarray(sgd.params[k]))
    cfg = TrainConfig(**MINI, optimizer=meta.hypergradient_sgd, step_trace=meta.trace_learning_rate)
    hd = train(OBJ, data, Hyper(learning_rate=0.05, extra={"beta": 0.02}), cfg, key=KEY)
    want, lrs = np_sgd_hd(data, 0.05, 0.02, 4, KEY)
    assert hd.trace.shape == (12,)
    np.testing.assert_allclose(np.asarray(hd.trace), lrs, rtol=1e-12)
    for k in ("W", "b"):
        np.testing.assert_allclose(np.asarray(hd.params[k]), want[k], rtol=1e-11, atol=1e-13)
    assert lrs[-1] > 0.05  # a too-small η grows
    with pytest.raises(ValueError, match="beta"):  # no silent default β
        train(OBJ, data, Hyper(learning_rate=0.05), cfg, key=KEY)


def np_adamw(data, lr, steps, wd=0.05, b1=0.9, b2=0.999, eps=1e-8):
    """AdamW (Loshchilov & Hutter; optax's form, decay on every parameter) on full batches."""
    X, y = np.asarray(data.train.X), np.asarray(data.train.y)
    n, C = X.shape[0], 3
    p = np.zeros(X.shape[1] * C + C)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        W, b = p[:-C].reshape(-1, C), p[-C:]
        s = X @ W + b
        e = np.exp(s - s.max(1, keepdims=True))
        r = (e / e.sum(1, keepdims=True) - np.eye(C)[y]) / n
        g = np.concatenate([(X.T @ r).ravel(), r.sum(0)])
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = p - lr * ((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * p)
    return {"W": p[:-C].reshape(-1, C), "b": p[-C:]}


def test_adamw_and_sgd_hd_through_train_sweep_and_engine(data):
    """optax.adamw in train equals AdamW in NumPy; a sweep over η (adamw) and over a traced β
    grid axis (SGD-HD, Hyper.extra) gives every member equal to its own train() call."""
    cfg = TrainConfig(n_epochs=12, eval_every=4, optimizer=ADAMW)
    res = train(OBJ, data, Hyper(learning_rate=0.1), cfg)
    want = np_adamw(data, 0.1, 12)
    for k in ("W", "b"):  # Adam divides by √v̂ + ε: jit vs NumPy rounding, ~1e-12 here
        np.testing.assert_allclose(np.asarray(res.params[k]), want[k], rtol=1e-9, atol=1e-12)
    out = sweep(OBJ, data, cfg, {"learning_rate": [0.03, 0.1]})
    np.testing.assert_allclose(out.params["W"][1], res.params["W"], rtol=1e-12, atol=1e-15)

    hd_cfg = TrainConfig(**MINI, optimizer=meta.hypergradient_sgd)
    base = Hyper(learning_rate=0.1, extra={"beta": 0.0})
    out = sweep(OBJ, data, hd_cfg, {"beta": [0.0, 0.01, 0.05]}, hyper=base, key=KEY)
    assert out.shape == (3,)
    for i, beta in enumerate((0.0, 0.01, 0.05)):
        one = train(OBJ, data, base._replace(extra={"beta": beta}), hd_cfg, key=KEY)
        np.testing.assert_allclose(out.params["W"][i], one.params["W"], rtol=1e-12, atol=1e-15)
    assert not np.allclose(out.params["W"][0], out.params["W"][2])  # β matters


@pytest.mark.parametrize("name", ["adamw", "sgd_hd"])
def test_hypergradient_through_optax_factories(data, x64, name):
    """forward = reverse = FD with the optimizer inside the unrolled trainer: adamw in η; SGD-HD
    in (η0, β) with β a traced extra (log_beta)."""
    if name == "adamw":
        cfg, base, names, v = TrainConfig(method="minibatch", batch_size=20, optimizer=ADAMW), Hyper(), \
            ("log_lr",), [math.log(0.05)]
    else:
        cfg, base, names = TrainConfig(method="minibatch", batch_size=20, optimizer=meta.hypergradient_sgd), \
            Hyper(extra={"beta": 1e-2}), ("log_lr", "log_beta")
        v = [math.log(0.1), math.log(1e-2)]
    vl = meta.make_val_loss(OBJ, cfg, data, None, KEY, horizon=10, base=base, hyper_names=names)
    fwd, rev, fd = (meta.hypergrad(vl, v, m) for m in ("forward", "reverse", "fd"))
    assert np.all(np.abs(np.asarray(fwd.grad)) > 1e-8)
    assert rel(rev.grad, fwd.grad) <= 1e-9
    assert rel(fd.grad, fwd.grad) <= 1e-6


def test_sgd_hd_runs_follow_the_trainer_and_adapt():
    """float32, as the experiment: β = 0 reproduces the unrolled val_loss at that η (same
    trainer, same batches), and with β > 0 a too-small η grows; the trace has K entries."""
    data = problem(jnp.float32, n=100, n_hold=50, d=8)
    cfg = TrainConfig(method="minibatch", batch_size=20)
    vl = meta.make_val_loss(OBJ, cfg, data, None, KEY, horizon=13)
    out = meta.sgd_hd_runs(OBJ, cfg, data, [0.2, 0.005], [0.0, 0.05], horizon=13, params0=vl.params0, key=KEY)
    assert out.learning_rates.shape == (2, 13) and out.holdout_loss.dtype == np.float32
    want = meta.grid_val_loss(vl, [[math.log(0.2)]])[0][0]
    assert float(out.holdout_loss[0]) == pytest.approx(float(want), rel=1e-6)
    assert np.all(out.learning_rates[0] == np.float32(0.2))
    assert out.final_learning_rate[1] > 2 * 0.005 and not np.any(out.diverged)
    with pytest.raises(ValueError, match="learning_rates"):
        meta.sgd_hd_runs(OBJ, cfg, data, [0.2, -1.0], [0.0, 0.0], horizon=5)
    with pytest.raises(ValueError, match="same length"):
        meta.sgd_hd_runs(OBJ, cfg, data, [0.2], [0.0, 0.0], horizon=5)


# ---------------------------------------------------------------- SGDN-HD, Adam-HD, the family
def two_steps(tx):
    params = {"w": jnp.zeros(2)}
    s = tx.init(params)
    u1, s = tx.update({"w": jnp.array([1.0, 2.0])}, s, params)
    u2, s = tx.update({"w": jnp.array([3.0, -1.0])}, s, params)
    return np.asarray(u1["w"]), np.asarray(u2["w"]), float(s.learning_rate)


def test_sgd_hd_and_sgdn_hd_by_hand():
    """α0 = 0.1, β = 0.5, g1 = (1, 2), g2 = (3, −1). SGD-HD: α2 = 0.1 + 0.5 (g2·g1 = 1) = 0.6.
    SGDN-HD (μ = 0.9): v1 = g1, d1 = g1 + μ v1 = (1.9, 3.8); α2 = 0.1 + 0.5 (g2·d1 = 1.9) = 1.05;
    v2 = μ v1 + g2 = (3.9, 0.8), d2 = g2 + μ v2 = (6.51, −0.28). No clipping of α (Alg. 4, 5)."""
    u1, u2, lr = two_steps(meta.sgd_hd(0.1, beta=0.5))
    np.testing.assert_allclose(u1, [-0.1, -0.2], rtol=1e-15)
    np.testing.assert_allclose(u2, [-1.8, 0.6], rtol=1e-15)
    assert lr == pytest.approx(0.6, rel=1e-15)
    u1, u2, lr = two_steps(meta.sgdn_hd(0.1, beta=0.5, momentum=0.9))
    np.testing.assert_allclose(u1, [-0.19, -0.38], rtol=1e-14)
    assert lr == pytest.approx(1.05, rel=1e-14)
    np.testing.assert_allclose(u2, [-1.05 * 6.51, 1.05 * 0.28], rtol=1e-14)
    _, _, lr = two_steps(meta.sgd_hd(0.1, beta=-1.0))  # α goes negative: Algorithm 4 lets it
    assert lr == pytest.approx(-0.9, rel=1e-15)


def test_adam_hd_by_hand():
    """Algorithm 6 with b1 = 0.9, b2 = 0.999, ε = 1e-8, α0 = 0.1, β = 0.5: step 1 m̂1 = g1, v̂1 =
    g1², d1 = g1/(|g1| + ε) ≈ (1, 1); step 2 α2 = 0.1 + 0.5 g2·d1; m2 = 0.9 m1 + 0.1 g2, v2 =
    0.999 v1 + 0.001 g2², d2 = (m2/0.19)/(√(v2/0.001999) + ε), all written out here."""
    g1, g2, eps = np.array([1.0, 2.0]), np.array([3.0, -1.0]), 1e-8
    d1 = g1 / (np.abs(g1) + eps)
    lr2 = 0.1 + 0.5 * g2 @ d1
    m2, v2 = 0.9 * 0.1 * g1 + 0.1 * g2, 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    d2 = (m2 / (1 - 0.9**2)) / (np.sqrt(v2 / (1 - 0.999**2)) + eps)
    assert lr2 == pytest.approx(1.1, rel=1e-7) and d2[0] == pytest.approx(0.917774, rel=1e-5)
    u1, u2, lr = two_steps(meta.adam_hd(0.1, beta=0.5))
    np.testing.assert_allclose(u1, -0.1 * d1, rtol=1e-14)
    assert lr == pytest.approx(lr2, rel=1e-14)
    np.testing.assert_allclose(u2, -lr2 * d2, rtol=1e-13)


BASELINES = (("sgd", meta.sgd_hd, 0), ("nesterov", meta.sgdn_hd, 1), ("adam", meta.adam_hd, 2))


@pytest.mark.parametrize("alias, hd, method", BASELINES)
def test_beta0_is_the_base_optimizer_exactly(data, alias, hd, method):
    """β = 0: SGD-HD, SGDN-HD (μ = 0.9) and Adam-HD reproduce optax's sgd, Nesterov sgd and adam
    bit for bit in the trainer (same operations in the same order). The family's member (the
    direction selected at run time) agrees to float64 rounding: XLA fuses the select with the
    update and may round the last bit differently (measured: 1 ulp, 6e-16 relative, for SGD)."""
    base = train(OBJ, data, Hyper(learning_rate=0.05), TrainConfig(**MINI, optimizer=alias, momentum=0.9), key=KEY)
    out = train(OBJ, data, Hyper(learning_rate=0.05), TrainConfig(**MINI, optimizer=functools.partial(hd, beta=0.0)),
                key=KEY)
    fam = train(OBJ, data, Hyper(learning_rate=0.05, extra={"method": method, "beta": 0.0}),
                TrainConfig(**MINI, optimizer=meta.hd_family), key=KEY)
    for k in ("W", "b"):
        np.testing.assert_array_equal(np.asarray(out.params[k]), np.asarray(base.params[k]))
        np.testing.assert_allclose(np.asarray(fam.params[k]), np.asarray(base.params[k]), rtol=1e-14, atol=1e-17)


def test_family_sweep_is_each_method_and_follows_numpy(data):
    """The six methods as ONE sweep (method, β traced per model) equal their own transforms in
    train(); SGDN-HD matches Algorithm 5 written out in NumPy on the trainer's batches."""
    cfg = TrainConfig(**MINI, optimizer=meta.hd_family, step_trace=meta.trace_learning_rate)
    methods, betas = [0, 0, 1, 1, 2, 2], [0.0, 1e-2, 0.0, 1e-2, 0.0, 1e-4]
    grid = [{"method": m, "beta": b} for m, b in zip(methods, betas)]
    from jaxreg import engine
    hypers = engine.stack_hypers(6, Hyper(learning_rate=0.05, extra={"method": 0.0, "beta": 0.0}),
                                 method=methods, beta=betas)
    out = engine.train_models(OBJ, cfg, data, hypers, keys=KEY, progress=False)
    for i, (m, b) in enumerate(zip(methods, betas)):
        one = train(OBJ, data, Hyper(learning_rate=0.05),
                    TrainConfig(**MINI, optimizer=functools.partial((meta.sgd_hd, meta.sgdn_hd, meta.adam_hd)[m], beta=b),
                                step_trace=meta.trace_learning_rate), key=KEY)
        np.testing.assert_allclose(out.result.params["W"][i], one.params["W"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(out.result.trace[i], one.trace, rtol=1e-12)
    assert len(grid) == 6 and not np.allclose(out.result.trace[3], 0.05)  # SGDN-HD adapted α
    # SGDN-HD in NumPy
    X, y = np.asarray(data.train.X), np.asarray(data.train.y)
    W, bias, lr = np.zeros((X.shape[1], 3)), np.zeros(3), 0.05
    v = d_prev = np.zeros(X.shape[1] * 3 + 3)
    for e in range(4):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.fold_in(KEY, 0), e), X.shape[0]))
        for i in range(X.shape[0] // 20):
            idx = perm[i * 20:(i + 1) * 20]
            s = X[idx] @ W + bias
            p = np.exp(s - s.max(1, keepdims=True))
            r = (p / p.sum(1, keepdims=True) - np.eye(3)[y[idx]]) / 20
            g = np.concatenate([(X[idx].T @ r).ravel(), r.sum(0)])
            lr = lr + 1e-2 * g @ d_prev
            v = 0.9 * v + g
            d_prev = g + 0.9 * v
            W, bias = W - lr * d_prev[:-3].reshape(W.shape), bias - lr * d_prev[-3:]
    np.testing.assert_allclose(out.result.params["W"][3], W, rtol=1e-10, atol=1e-13)
    assert float(out.result.trace[3][-1]) == pytest.approx(lr, rel=1e-10)


@pytest.mark.parametrize("hd", [meta.sgdn_hd, meta.adam_hd])
def test_hypergradient_through_sgdn_hd_and_adam_hd(data, x64, hd):
    """forward = reverse = FD in (log α0, log β) with SGDN-HD / Adam-HD inside the trainer."""
    cfg = TrainConfig(method="minibatch", batch_size=20, optimizer=hd)
    beta = 1e-2 if hd is meta.sgdn_hd else 1e-4
    vl = meta.make_val_loss(OBJ, cfg, data, None, KEY, horizon=10, base=Hyper(extra={"beta": beta}),
                            hyper_names=("log_lr", "log_beta"))
    v = [math.log(0.05), math.log(beta)]
    fwd, rev, fd = (meta.hypergrad(vl, v, m) for m in ("forward", "reverse", "fd"))
    assert np.all(np.abs(np.asarray(fwd.grad)) > 1e-10)
    assert rel(rev.grad, fwd.grad) <= 1e-9
    assert rel(fd.grad, fwd.grad) <= 1e-6


def test_the_older_sgd_hd_name_warns_and_matches_the_floored_sgd_hd():
    params = {"W": jnp.ones(3)}
    with pytest.warns(DeprecationWarning, match="sgd_hd"):
        old = meta.hypergradient_sgd(0.1, beta=0.5)
    new = meta.sgd_hd(0.1, beta=0.5, min_learning_rate=0.0)
    so, sn = old.init(params), new.init(params)
    for g in ({"W": jnp.array([1.0, -2.0, 0.5])}, {"W": jnp.array([-3.0, 2.0, -0.5])}):
        uo, so = old.update(g, so, params)
        un, sn = new.update(g, sn, params)
        np.testing.assert_array_equal(uo["W"], un["W"])
    assert float(sn.learning_rate) == 0.0  # the second product is negative: the floor holds η at 0
