"""Learnable schedules (jaxreg.meta.schedules.Piecewise) and the learned-schedule study
(experiments.meta_learning.learned): the schedule's rate per update, its derivative through the trainer
(forward = reverse(√K) = FD, float64), and the study's record and report on a tiny problem."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import softmax_problem

from experiments.baydin import report as report_hd
from experiments.benchmarks import timing as bench
from experiments.meta_learning import compare, learned
from jaxreg import meta
from jaxreg.meta.schedules import Piecewise
from jaxreg.objective import Objective
from jaxreg.config import Hyper, TrainConfig
from jaxreg.trainer import train

OBJ = Objective("softmax", n_classes=3, penalize_intercept=True)
KEY = jax.random.PRNGKey(1)


def problem(n=60, n_hold=30, d=5, seed=7):
    return softmax_problem(n, n_hold, d, seed)


def test_piecewise_rates():
    h = Hyper(extra={"rates": np.array([1.0, 2.0, 3.0])})
    sched = Piecewise("rates", 4)(h, 10)
    assert [float(sched(t)) for t in (0, 3, 4, 8, 11, 100)] == [1.0, 1.0, 2.0, 3.0, 3.0, 3.0]
    per_epoch = Piecewise()(h, 5)
    assert float(per_epoch(9)) == 2.0
    assert Piecewise("rates", 4) == Piecewise("rates", 4) and hash(Piecewise()) == hash(Piecewise())
    assert Piecewise("rates", 100).pieces(4680, 468) == 47 and Piecewise().pieces(4680, 468) == 10
    with pytest.raises(ValueError, match="every"):
        Piecewise("rates", 0)
    with pytest.raises(ValueError, match="hyper.extra"):
        Piecewise("lr")(h, 5)


def test_schedule_in_trainer_and_its_hypergradient(x64):
    """Rates per epoch drive SGD (the trace of η), and d L_val / d log rates (3 pieces over 10
    updates) agrees three ways: forward, reverse with √K segments, central differences."""
    data = problem()
    cfg = TrainConfig(method="minibatch", batch_size=20, n_epochs=3, schedule=Piecewise(),
                      step_trace=lambda p, s: p["b"])
    rates = np.array([0.3, 0.1, 0.03])
    one = train(OBJ, data, Hyper(extra={"rates": rates}), cfg, key=KEY)
    const = [train(OBJ, data, Hyper(learning_rate=r), TrainConfig(method="minibatch", batch_size=20, n_epochs=1),
                   key=KEY) for r in rates[:1]]
    np.testing.assert_allclose(one.trace[2], const[0].params["b"], rtol=1e-12)  # epoch 1 = constant 0.3
    vl = meta.make_val_loss(OBJ, TrainConfig(method="minibatch", batch_size=20, schedule=Piecewise()), data, None, KEY,
                            horizon=8, hyper_names=("log_rates",), base=Hyper(l2=1e-3, extra={"rates": rates}),
                            checkpoint="sqrt")
    v = np.log(rates)
    fwd, rev, fd = (np.asarray(meta.hypergrad(vl, v, m).grad) for m in ("forward", "reverse", "fd"))
    assert fwd.shape == (3,) and abs(fwd[2]) > 1e-6  # 8 updates: 3 per epoch, the third piece used twice
    np.testing.assert_allclose(rev, fwd, rtol=1e-10)
    np.testing.assert_allclose(fd, fwd, rtol=1e-6, atol=1e-12)


def test_schedule_study_record_and_report():
    """float32 as the study runs: every method scored on the same loss; the headline ratios follow
    the record's own numbers; the report words follow them."""
    data = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32) if a.dtype == jnp.float64 else a, problem())
    rec = learned.schedule_study(
        OBJ, TrainConfig(method="minibatch", batch_size=20), data, None, KEY, horizon=9, base=Hyper(l2=1e-3),
        const_points=compare.log_grid(1e-2, 1.0, 3)[:, None], grid2d_points=compare.log_mesh([(1e-2, 1.0, 2), (0.5, 5.0, 2)]),
        hd_lr0=0.05, hd_beta=1e-3, pieces_every=3, start_eta=0.05, n_steps=3, optimizer=optax.adam(0.3),
        runner=bench.Timer())
    assert rec["pieces"] == 3 and len(rec["learned_rates"]) == 3
    assert rec["grad_evals"] == {"constant": 27, "inverse_time_2d": 36, "sgd_hd": 9, "learned": 81}
    assert rec["schedule_compute_vs_2d_grid"] == pytest.approx(81 / 36)
    best = min(rec["const_best_loss"], rec["grid2d_best_loss"], rec["sgd_hd_loss"])
    assert rec["schedule_vs_best_baseline_loss_ratio"] == pytest.approx(rec["learned_loss"] / best)
    assert rec["learned_loss"] <= rec["meta_trace_loss"][0] and rec["schedule_compute_vs_2d_grid_cpu"] > 0
    text = "\n".join(report_hd.schedule_lines(rec))
    assert ("does not win" in text) == (rec["schedule_vs_best_baseline_loss_ratio"] >= 1)
    assert "above the grid's" in text  # 81 > 36 gradient evaluations
