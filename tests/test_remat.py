"""Checkpointed scans (jaxreg.remat) and the trainer's remat modes: the same values and the same
derivatives as the plain scan (they re-run the same arithmetic; float64 agreement to rounding,
1e-12), reverse-mode scratch memory that shrinks, and the placement plan."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from problems import softmax_problem

from experiments.benchmarks import timing as bench
from jaxreg import meta, remat
from jaxreg.objective import Objective
from jaxreg.config import Hyper, TrainConfig
from jaxreg.trainer import train

KEY = jax.random.PRNGKey(3)


def body(c, x):
    c = jnp.tanh(c * 1.1 + x) + 0.05 * c ** 2
    return c, jnp.sum(c ** 2)


@pytest.mark.parametrize("n, how", [(10, ("segment", 3)), (12, ("segment", 4)), (10, ("segment", 20)),
                                    (11, ("branch", 2)), (27, ("branch", 3)), (2, ("branch", 2))])
def test_checkpointed_scans_equal_lax_scan_and_its_gradient(n, how):
    xs = jnp.linspace(-1.0, 1.0, n)
    c0 = jnp.array([0.3, -0.2, 0.1])
    kw = {how[0]: how[1]}

    def loss(c, xs, scan):
        c, ys = scan(body, c, xs)
        return jnp.sum(c) + jnp.sum(ys * jnp.arange(n))

    want = loss(c0, xs, jax.lax.scan)
    got = loss(c0, xs, lambda b, c, x: remat.scan(b, c, x, **kw))
    assert float(got) == pytest.approx(float(want), rel=1e-14)
    g_want = jax.grad(loss, argnums=(0, 1))(c0, xs, jax.lax.scan)
    g_got = jax.grad(loss, argnums=(0, 1))(c0, xs, lambda b, c, x: remat.scan(b, c, x, checkpoint_body=True, **kw))
    for a, b in zip(g_got, g_want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_plan_places_segments():
    assert remat.nearest_divisor(468, 100) == 117  # log-distance: 117/100 < 100/78
    p = remat.plan("sqrt", 10000, 468)
    assert (p.step_segment, p.epoch_segment, p.per_update) == (117, None, True)
    assert remat.plan("sqrt", 10000, 10).epoch_segment == 10  # √K = 100 updates = 10 epochs of 10
    assert remat.plan("sqrt", 1000, 467).step_segment == 32  # prime: ⌈√1000⌉, a remainder segment
    assert remat.plan("log", 1000, 10, segment=4).branch == 4
    assert remat.plan(True, 1000, 10).block and remat.plan(False, 1000, 10).mode is False
    with pytest.raises(ValueError, match="remat"):
        TrainConfig(remat="binomial")
    with pytest.raises(ValueError, match="remat_segment"):
        TrainConfig(remat="sqrt", remat_segment=0)


def problem(n=90, n_hold=40, d=6, seed=1):
    return softmax_problem(n, n_hold, d, seed)


OBJ = Objective("softmax", n_classes=3)


@pytest.mark.parametrize("method, modes", [("minibatch", ("sqrt", "log")), ("full_batch", ("sqrt",))])
def test_trainer_modes_same_run_and_hypergradient(x64, method, modes):
    """Each remat mode trains the same model (history, trace) and gives the same reverse-mode
    hypergradient as no checkpointing (= forward mode); the horizon ends inside an epoch."""
    data = problem(n=60)
    kw = dict(method=method, batch_size=20 if method == "minibatch" else None)
    runs = {m: train(OBJ, data, Hyper(learning_rate=0.3), TrainConfig(**kw, n_epochs=4, eval_every=2, remat=m,
                                                                      step_trace=lambda p, s: p["b"]), key=KEY)
            for m in (False,) + modes}
    for m, r in runs.items():
        np.testing.assert_allclose(r.params["W"], runs[False].params["W"], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(r.trace, runs[False].trace, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(r.history.holdout_loss, runs[False].history.holdout_loss, rtol=1e-13)
    v = [math.log(0.3), math.log(1e-2)]
    for m in modes:
        vl = meta.make_val_loss(OBJ, TrainConfig(**kw, remat_segment=2 if m == "sqrt" else None), data, None, KEY,
                                horizon=10 if method == "minibatch" else 7, checkpoint=m,
                                hyper_names=("log_lr", "log_l2"), base=Hyper(l2=1e-2))
        if m == modes[0]:
            fwd = np.asarray(meta.hypergrad(vl, v, "forward").grad)
        np.testing.assert_allclose(np.asarray(meta.hypergrad(vl, v, "reverse").grad), fwd, rtol=1e-10)


def test_sqrt_remat_bounds_reverse_memory():
    """XLA's scratch memory of the reverse-mode program (compiled, not run) at K = 200 mini-batch
    updates: √K segments well below no checkpointing, below v0.1's blocks of epochs."""
    data = problem(n=200, n_hold=20, d=20)
    cfg = TrainConfig(method="minibatch", batch_size=10)
    mem = {}
    for m in (False, True, "sqrt"):
        vl = meta.make_val_loss(OBJ, cfg, data, None, KEY, horizon=200, checkpoint=m)
        mem[m] = bench.compiled_temp_bytes(meta.hypergrad_program, vl.as_array([0.0]), vl.args, fn=vl.fn,
                                           mode="reverse", eps=1e-5)
    assert mem["sqrt"] < mem[True] < mem[False]
    assert mem["sqrt"] < 0.25 * mem[False]
