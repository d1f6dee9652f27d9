"""experiments.meta_learning.compare / records / report and experiments.benchmarks.timing: grid
against meta-optimisation, the horizon study, the study's records and report, timing runners. Expected values by hand or by
running the pieces independently; float64 (tests/conftest.py) on a small linear-regression
problem (full-batch GD, diverges for η ≫ 2/L)."""
import json
import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.benchmarks import timing as bench
from experiments.meta_learning import compare, records, report
from jaxreg import meta
from jaxreg.atomic import to_jsonable
from jaxreg.objective import Batch, Objective
from jaxreg.config import TrainConfig, TrainData

OBJ = Objective("squared")


@pytest.fixture(scope="module")
def vl():
    r = np.random.default_rng(5)
    X = r.normal(size=(70, 3))
    y = X @ r.normal(size=3) + 0.5 * r.normal(size=70)
    data = TrainData(Batch(jnp.asarray(X[:50]), jnp.asarray(y[:50])), Batch(jnp.asarray(X[50:]), jnp.asarray(y[50:])))
    return meta.make_val_loss(OBJ, TrainConfig(method="full_batch"), data, None, 0, horizon=8)


def fake_trace(loss, bad):
    loss, bad = np.asarray(loss, np.float32), np.asarray(bad, bool)
    z = np.zeros(loss.shape + (1,), np.float32)
    return meta.MetaTrace(z, loss, z, loss, bad, bad, bad, bad, bad, loss)


def test_grids_and_selection_by_hand():
    np.testing.assert_allclose(compare.log_grid(1e-2, 1.0, 3), np.log([1e-2, 1e-1, 1.0]), rtol=1e-15)
    mesh = compare.log_mesh([(1.0, 10.0, 2), (1.0, 100.0, 3)])
    np.testing.assert_allclose(np.exp(mesh), [[1, 1], [1, 10], [1, 100], [10, 1], [10, 10], [10, 100]], rtol=1e-13)
    assert compare.best_finite([np.nan, 0.5, 0.2, 0.3, 0.3], [False, False, True, False, False]) == 3
    with pytest.raises(ValueError, match="no grid point"):
        compare.best_finite([np.inf, 0.1], [False, True])
    tr = fake_trace([[3.0, 1.0, 0.9], [2.0, 0.5, 0.4]], [[False, False, False], [False, True, False]])
    assert compare.steps_to_within(tr, 1.0) == [2, 3]  # the rejected 0.5 does not count
    assert compare.steps_to_within(tr, 0.1) == [None, None]
    np.testing.assert_array_equal(compare.accepted_losses(tr, 2), [[3.0, 1.0], [2.0, np.inf]])
    assert (compare.grad_evals("forward", 3, 10), compare.grad_evals("fd", 3, 10), compare.grad_evals("reverse", 3, 10)) == \
        (40, 70, None)


def test_compare_counts_and_ratio():
    grid = compare.GridSearch(np.zeros((4, 1)), np.float32([2.0, 0.5, 1.0, 3.0]), np.zeros(4, bool), 1)
    res = meta.MetaResult(np.zeros((2, 1)), np.float32([0.6, 0.45]), np.ones(2, bool),
                          fake_trace([[1.0, 0.6, 0.7], [0.9, 0.45, 0.5]], np.zeros((2, 3))), ("log_lr",), 3, "forward")
    c = compare.compare(grid, res, horizon=10)
    assert c.best_start == 1 and c.loss_ratio == pytest.approx(0.9)
    assert (c.grid_grad_evals, c.meta_grad_evals, c.compute_fraction) == (40, 2 * 3 * 2 * 10, 3.0)
    assert c.steps_to_within == [None, 2]  # target 1.02 × 0.5 = 0.51
    assert compare.compare(grid, res._replace(mode="reverse"), horizon=10).compute_fraction is None


def test_grid_and_meta_equal_their_parts_and_timer_is_a_runner(vl):
    points = compare.log_grid(1e-3, 1.0, 5)[:, None]
    starts = np.log([[3e-3], [0.3]])
    timer = bench.Timer()
    c = compare.grid_and_meta(vl, points, starts, n_steps=3, optimizer=optax.adam(0.3), runner=timer)
    loss, aux = meta.grid_val_loss(vl, points)  # default runner: the plain jitted call
    np.testing.assert_array_equal(c.grid.loss, np.asarray(loss))  # AOT-compiled and jitted: same bits
    assert c.grid.best == compare.best_finite(loss, aux.diverged)
    res = meta.meta_optimize(vl, starts, n_steps=3, optimizer=optax.adam(0.3))
    np.testing.assert_array_equal(c.meta.trace.loss, res.trace.loss)
    assert [n for n, _ in timer.calls] == ["grid_loss_program", "meta_program"]
    t = timer.of("meta_program")
    assert t["compile_s"] > 0 and t["wall_s"] > 0 and timer.total("wall_s") >= t["wall_s"]
    with pytest.raises(KeyError, match="hypergrad_program"):
        timer.of("hypergrad_program")


def test_horizon_bias_reuses_a_known_start_and_runs_the_rest(vl):
    """At the known horizon the start's trace is reused; the result equals a fresh meta run
    (starts are independent under vmap); the longest horizon's losses equal grid_val_loss."""
    points = compare.log_grid(1e-3, 1.0, 4)[:, None]
    known = compare.grid_and_meta(vl, points, np.log([[1e-2], [0.1]]), n_steps=4, optimizer=optax.adam(0.3))
    hb = compare.horizon_bias(vl, (4, 8, 16), [math.log(0.1)], n_steps=3, optimizer=optax.adam(0.3),
                           curve_points=points, coarse_points=points[::2], known=known)
    assert set(hb.meta_results) == {4, 16}  # 8 = the known horizon: reused
    fresh = meta.meta_optimize(vl, [[math.log(0.1)]], n_steps=3, optimizer=optax.adam(0.3))
    np.testing.assert_allclose(np.log(hb.learned[1]), fresh.log_hyper[0], rtol=1e-12)
    assert hb.learned_loss[1] == pytest.approx(float(fresh.loss[0]), rel=1e-12)
    np.testing.assert_array_equal(hb.curves[8][1], known.grid.loss)
    assert hb.curves[4][1].shape == (4,) and hb.curves[16][1].shape == (2,)
    want, _ = meta.grid_val_loss(vl.replace(horizon=16), np.log(hb.learned))
    np.testing.assert_allclose(hb.loss_at_longest, np.asarray(want), rtol=1e-12)


def test_records_report_and_cost(vl):
    """The records are strict JSON; the report's words follow the numbers it is given."""
    timer = bench.Timer()
    points = compare.log_grid(1e-3, 1.0, 4)[:, None]
    c = compare.grid_and_meta(vl, points, np.log([[1e-2]]), n_steps=2, optimizer=optax.adam(0.3), runner=timer)
    dl = np.asarray(meta.grid_hypergrad(vl, points).grad)[:, 0]
    rec = records.eta_record(c, dl, (1e-2,), timer)
    assert rec["grid_eta"] == pytest.approx([1e-3, 1e-2, 1e-1, 1.0]) and rec["horizon"] == 8
    assert rec["meta_compute_fraction_counted"] == pytest.approx(2 * 2 * 8 / (4 * 8))
    modes = meta.compare_modes(vl, [math.log(0.05)])
    assert modes["max_rel_err"] < 1e-6  # float64: forward = reverse = FD
    cost = bench.hypergrad_cost(vl, [math.log(0.05)], repeats=1)
    assert cost["repeats"] == 1 and cost["run_cpu_s"] > 0 and cost["jvp_cost_ratio"] > 0
    cost = records.cost_record(cost, 0.05, modes)
    assert cost["dloss_dlogeta"]["forward"] == pytest.approx(cost["dloss_dlogeta"]["fd"], rel=1e-6)
    json.dumps(to_jsonable({"softmax": rec, "cost": cost}), allow_nan=False)
    assert bench.compiled_temp_bytes(meta.hypergrad_program, vl.as_array([0.0]), vl.args, fn=vl.fn,
                                     mode="reverse", eps=1e-5) > 0
    s = {"meta_vs_grid_loss_ratio": 1.5, "meta_compute_fraction": 0.5, "meta_compute_fraction_cpu": 0.4,
         "meta3_vs_grid_loss_ratio": 0.99, "meta3_compute_fraction": 0.05, "meta3_compute_fraction_cpu": 0.08}
    details = {"softmax": rec, "joint": {"axes_values": [[1, 2]] * 3}, "cost": cost}
    text = report.answer(s, details)
    assert "50.0% above" in text and "outside the 2% target" in text and "1.0% below" in text
    assert "5.0% of the grid's gradient evaluations" in text and "targets were within" not in text
    assert "within the 2% target" in report.answer(dict(s, meta_vs_grid_loss_ratio=1.01), details)
