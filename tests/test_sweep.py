"""Tests of jaxreg.sweeps. Compile time dominates, so the tests share a few programs: the
16-model grid (one program), chunks of 4 (one program reused by every small grid, since an
explicit chunk_size pads every grid to 4 models), batch size 5 (one), the unvmapped trainer
(one), and two in the sharding subprocess."""
import dataclasses
import io
import os
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxreg.objective import Objective
from jaxreg.progress import ProgressBar, format_bar
from jaxreg.layout import model_bytes
from jaxreg.sweep_grid import AXES
from jaxreg.sweeps import sweep, SweepResult
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import train

OBJ = Objective("logistic")
CFG = TrainConfig(method="minibatch", batch_size=8, n_epochs=6, eval_every=2)
GRID = {"penalty": ["l1", "l2"], "lam": [0.1, 0.01], "learning_rate": [0.1, 0.5], "seed": [0, 1]}
KEY = jax.random.PRNGKey(42)
SCALE = 0.1


def make_data(config=CFG, holdout=True, dtype="float64"):
    rng = np.random.default_rng(0)
    w = np.array([1.5, -1.0, 0.5])
    X, Xh, Xt = rng.normal(size=(40, 3)), rng.normal(size=(15, 3)), rng.normal(size=(20, 3))
    lab = lambda A: (A @ w + rng.normal(size=len(A)) > 0).astype(float)  # noqa: E731
    if not holdout:
        return prepare_data(OBJ, config, X, lab(X), dtype=dtype)
    return prepare_data(OBJ, config, X, lab(X), Xh, lab(Xh), Xt, lab(Xt), dtype=dtype)


# a member of a vmapped grid vs a single jitted train call: different programs, so float32
# rounding may differ in the last bits (measured ≤ 1e-7 here); chunked vs unchunked, the same
ATOL = {"float64": 1e-12, "float32": 1e-6}


def leaves_close(a, b, atol=1e-12):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape
        if x.dtype == bool or np.issubdtype(x.dtype, np.integer):
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def take(result: SweepResult, i):
    return jax.tree_util.tree_map(lambda a: a[i], result.flat)


@pytest.fixture(scope="module", params=sorted(ATOL))
def data(request):
    return make_data(dtype=request.param)


def atol_of(data):
    return ATOL[str(data.train.X.dtype)]


@pytest.fixture(scope="module")
def full(data):
    return sweep(OBJ, data, CFG, GRID, key=KEY, init_scale=SCALE)


@pytest.fixture(scope="module")
def chunked(data):
    return sweep(OBJ, data, CFG, GRID, key=KEY, init_scale=SCALE, chunk_size=4)


def test_grid_shapes_axes_and_flat_order(full, data):
    assert full.axes == ("penalty", "lam", "learning_rate", "seed")
    assert full.values == (("l1", "l2"), (0.1, 0.01), (0.1, 0.5), (0, 1))
    assert full.shape == (2, 2, 2, 2)
    assert full.history.holdout_acc.shape == (2, 2, 2, 2, CFG.n_records)
    assert full.params["W"].shape == (2, 2, 2, 2, 3) and full.params["b"].shape == (2, 2, 2, 2)
    assert full.diverged.shape == full.stop_epoch.shape == full.metric("test_acc").shape == (2, 2, 2, 2)
    assert full.flat.history.holdout_acc.shape == (16, CFG.n_records)
    assert full.configs[5] == {"penalty": "l1", "lam": 0.01, "learning_rate": 0.1, "seed": 1}
    assert full.history.holdout_acc[0, 1, 0, 1].tolist() == full.flat.history.holdout_acc[5].tolist()
    assert full.chunk_sizes == {None: (16, 1)}
    assert not full.diverged.any() and (full.n_updates == 6 * 5).all()
    # seeds= is shorthand for a trailing seed axis (same program, same results)
    no_seed = {k: v for k, v in GRID.items() if k != "seed"}
    again = sweep(OBJ, data, CFG, no_seed, seeds=[0, 1], key=KEY, init_scale=SCALE)
    assert again.axes == full.axes
    leaves_close(again.flat, full.flat, atol=0)


def test_members_equal_single_train_calls(full, data):
    for i, c in enumerate(full.configs):
        lam = c["lam"]
        hyper = Hyper(learning_rate=c["learning_rate"], l2=lam * (c["penalty"] == "l2"),
                      l1=lam * (c["penalty"] == "l1"))
        one = train(OBJ, data, hyper, CFG, key=jax.random.fold_in(KEY, c["seed"]), init_scale=SCALE)
        leaves_close(one, take(full, i), atol_of(data))
    # the seed axis changes both the initial weights and the shuffles
    a, b = full.params["W"][0, 0, 0, 0], full.params["W"][0, 0, 0, 1]
    assert not np.allclose(a, b)
    # final metrics are those of the selected weights
    best = full.best("holdout_loss")
    np.testing.assert_allclose(best.metrics["holdout_loss"], np.mean(OBJ.per_example_loss(
        best.params, data.holdout)), rtol=1e-12 if data.train.X.dtype == np.float64 else 1e-6)


def test_chunked_equals_unchunked(full, chunked, data):
    assert chunked.chunk_sizes == {None: (4, 4)}
    assert full.flat.params["W"].dtype == data.train.X.dtype
    leaves_close(full.flat, chunked.flat, atol_of(data))
    leaves_close(full.final, chunked.final, atol_of(data))


def test_auto_chunk_size_from_memory_budget(data, chunked):
    per_model = model_bytes(OBJ, CFG, data)
    assert 0 < per_model < 100_000
    auto = sweep(OBJ, data, CFG, GRID, key=KEY, init_scale=SCALE, memory_budget=4.5 * per_model)
    assert auto.chunk_sizes == {None: (4, 4)}
    leaves_close(auto.flat, chunked.flat, atol=0)


def test_divergence_is_isolated(data):
    # with λ₂ = 0.1, GD multiplies W by (1 - ηλ₂) each step: η = 1e30 overflows in a few steps
    # (without a penalty the log-loss gradient is bounded and W only grows linearly)
    kw = dict(key=KEY, init_scale=SCALE, chunk_size=4, hyper=Hyper(l2=0.1))
    ok = sweep(OBJ, data, CFG, {"learning_rate": [0.1, 0.5], "seed": [3]}, **kw)
    bad = sweep(OBJ, data, CFG, {"learning_rate": [0.1, 1e30, 0.5], "seed": [3]}, **kw)
    assert bad.diverged.tolist() == [[False], [True], [False]]
    assert all(np.isfinite(v).all() for v in jax.tree_util.tree_leaves(bad.params))
    assert 0 < bad.n_updates[1, 0] < 30 and not bad.flat.history.active[1, -1]
    leaves_close(take(ok, 0), take(bad, 0), atol=0)
    leaves_close(take(ok, 1), take(bad, 2), atol=0)
    # selection never returns the diverged model, even where its score looks best
    rigged = dataclasses.replace(bad, final={**bad.final, "holdout_acc": np.array([0.5, 1.0, 0.6])})
    assert rigged.best("holdout_acc").index == (2, 0)
    with pytest.raises(ValueError, match="holdout_acc"):
        dataclasses.replace(bad, final={**bad.final, "holdout_acc": np.array([np.nan, 1.0, np.nan])}
                            ).best("holdout_acc")


def test_best_on_holdout(full):
    acc = full.metric("holdout_acc")
    best = full.best()
    assert acc[best.index] == acc.max()
    assert best.flat_index == np.flatnonzero(full.final["holdout_acc"] == acc.max())[0]
    assert best.config == full.configs[best.flat_index]
    assert best.metrics["test_acc"] == full.metric("test_acc")[best.index]
    np.testing.assert_array_equal(best.params["W"], full.params["W"][best.index])
    loss_best = full.best("holdout_loss")
    assert full.metric("holdout_loss")[loss_best.index] == full.final["holdout_loss"].min()


def test_where_and_best_among_matching(full):
    l1 = full.where(penalty="l1")
    assert l1.tolist() == [c["penalty"] == "l1" for c in full.configs] and l1.sum() == 8
    some = full.where(penalty="l2", lam=[0.1], seed=(1,))
    assert np.flatnonzero(some).tolist() == [i for i, c in enumerate(full.configs)
                                             if (c["penalty"], c["lam"], c["seed"]) == ("l2", 0.1, 1)]
    # the best among the L2 models: highest hold-out accuracy, first in grid order on ties
    idx = [i for i, c in enumerate(full.configs) if c["penalty"] == "l2"]
    scores = [full.final["holdout_acc"][i] for i in idx]
    expected = idx[scores.index(max(scores))]
    best = full.best("holdout_acc", penalty="l2")
    assert best.flat_index == expected and best.config["penalty"] == "l2"
    assert full.best("holdout_acc", penalty=["l1", "l2"]).flat_index == full.best().flat_index
    with pytest.raises(ValueError, match="unknown axis 'momentum'"):
        full.where(momentum=0.9)
    with pytest.raises(ValueError, match="matching"):
        full.best("holdout_acc", lam=0.5)  # no model has λ = 0.5


def test_records_tidy_table(full):
    recs = full.records()
    assert len(recs) == 16
    first = recs[0]
    assert list(first)[:4] == ["penalty", "lam", "learning_rate", "seed"]
    assert first["penalty"] == "l1" and first["lam"] == 0.1 and first["seed"] == 0
    for i in (0, 5, 15):
        assert recs[i]["holdout_acc"] == float(full.final["holdout_acc"][i])
        assert recs[i]["stop_epoch"] == int(full.flat.stop_epoch[i])
        assert recs[i]["diverged"] is bool(full.flat.diverged[i])
        assert type(recs[i]["n_updates"]) is int and type(recs[i]["test_loss"]) is float
    picked = full.records(("lam", ("epochs", "stop_epoch"), "test_acc"))
    assert picked[3] == {"lam": full.configs[3]["lam"], "epochs": int(full.flat.stop_epoch[3]),
                         "test_acc": float(full.final["test_acc"][3])}
    with pytest.raises(ValueError, match="unknown column 'momentum'"):
        full.records(("momentum",))


def test_records_as_csv_and_dataframe(full, tmp_path):
    """to_csv: standard library only, read back by csv; to_dataframe only where pandas is."""
    import csv

    path = full.to_csv(tmp_path / "sweep.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and list(rows[0])[:4] == ["penalty", "lam", "learning_rate", "seed"]
    assert float(rows[5]["holdout_acc"]) == full.records()[5]["holdout_acc"]
    assert rows[5]["diverged"] in ("True", "False") and full.to_records() == full.records()
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs pandas"):
            full.to_dataframe()
    else:
        assert full.to_dataframe().shape[0] == 16


def test_elastic_net_axis_maps_to_l1_and_l2():
    from jaxreg.sweep_grid import expand_grid, hyper_of

    axes, _, configs = expand_grid({"lam": [0.2], "l1_ratio": [0.0, 0.25, 1.0]}, 10)
    assert axes == ("lam", "l1_ratio")
    hypers = [hyper_of(c, Hyper()) for c in configs]
    assert [(h.l1, h.l2) for h in hypers] == [(0.0, 0.2), (0.05, 0.15000000000000002), (0.2, 0.0)]


def test_batch_size_axis(data, chunked):
    grid = {"batch_size": [5, 8], "learning_rate": [0.1, 0.5], "seed": [0]}
    r = sweep(OBJ, data, CFG, grid, key=KEY, init_scale=SCALE, chunk_size=4)
    assert r.shape == (2, 2, 1) and r.chunk_sizes == {5: (4, 1), 8: (4, 1)}
    assert (r.n_updates[0] == 6 * (40 // 5)).all() and (r.n_updates[1] == 6 * 5).all()
    # each batch-size slice equals the same grid run without the axis at that batch size
    only8 = sweep(OBJ, data, CFG, {"learning_rate": [0.1, 0.5], "seed": [0]}, key=KEY,
                  init_scale=SCALE, chunk_size=4)
    leaves_close(jax.tree_util.tree_map(lambda a: a[1], r.result), only8.result, atol=0)
    cfg5 = dataclasses.replace(CFG, batch_size=5)
    only5 = sweep(OBJ, data, cfg5, {"learning_rate": [0.1, 0.5], "seed": [0]}, key=KEY,
                  init_scale=SCALE, chunk_size=4)
    leaves_close(jax.tree_util.tree_map(lambda a: a[0], r.result), only5.result, atol=0)


def test_bad_inputs_raise_before_compiling(data, full):
    cases = [({}, "non-empty"), ({"learning_rate": []}, "learning_rate"),
             ({"momentum": [0.9]}, "momentum"), ({"penalty": ["l2"], "lam": [0.1, -0.1]}, r"'lam'\]\[1\]"),
             ({"penalty": ["l3"], "lam": [0.1]}, "l3"), ({"lam": [0.1]}, "penalty"),
             ({"learning_rate": [0.1, 0.0]}, r"'learning_rate'\]\[1\].*0\.0"),
             ({"learning_rate": [-1.0]}, "learning_rate"), ({"decay_time": [0]}, "decay_time"),
             ({"batch_size": [8, 41]}, r"'batch_size'\]\[1\].*41"), ({"batch_size": [0]}, "batch_size"),
             ({"l2": [-1.0]}, "l2"), ({"seed": [-1]}, "seed"), ({"seed": [0.5]}, "seed"),
             ({"penalty": ["l1"], "lam": [0.1], "l2": [0.1]}, "exclusive")]
    for grid, match in cases:
        with pytest.raises(ValueError, match=match):
            sweep(OBJ, data, CFG, grid)
    with pytest.raises(ValueError, match="learning_rate"):
        sweep(OBJ, data, CFG, {"seed": [0]}, hyper=Hyper(learning_rate=-0.1))
    if data.train.X.dtype == np.float32:  # a value the model's precision cannot hold
        with pytest.raises(ValueError, match="learning_rate.*overflows.*float32"):
            sweep(OBJ, data, CFG, {"learning_rate": [0.1, 1e100]})
    with pytest.raises(ValueError, match="hold-out"):
        sweep(OBJ, make_data(holdout=False), dataclasses.replace(CFG, early_stopping="patience"),
              {"seed": [0]})
    with pytest.raises(ValueError, match="batch_size"):
        sweep(OBJ, data, dataclasses.replace(CFG, batch_size=100), {"seed": [0]})
    with pytest.raises(ValueError, match="seed"):
        sweep(OBJ, data, CFG, {"seed": [0]}, seeds=[1])
    with pytest.raises(ValueError, match="TrainData"):
        sweep(OBJ, (data.train.X, data.train.y), CFG, {"seed": [0]})
    with pytest.raises(ValueError, match="chunk_size"):
        sweep(OBJ, data, CFG, {"seed": [0]}, chunk_size=0)
    with pytest.raises(ValueError, match="metric"):
        full.best("accuracy")
    assert set(GRID) <= set(AXES)


def test_progress_bar(data, chunked, capsys):
    assert format_bar("sweep", "chunk", 3, 10, 12.34) == "sweep: chunk 3/10 [===       ] 12.3s"
    stream = io.StringIO()
    bar = ProgressBar(2, enabled=True, stream=stream)
    bar.update(1), bar.update(2)
    assert stream.getvalue().startswith("\rsweep: chunk 1/2 [=====     ]")
    assert stream.getvalue().endswith("s\n")
    assert not ProgressBar(2, stream=io.StringIO()).enabled  # auto: off when not a terminal
    sweep(OBJ, data, CFG, GRID, key=KEY, init_scale=SCALE, chunk_size=4, progress=True)
    err = capsys.readouterr().err  # one redraw per chunk, counting models, with the rate and time left
    assert "sweep: models 16/16 [==========]" in err and err.count("\r") == 4
    assert re.search(r"models 4/16 \[.*\] [\d.]+s, [\d.e+-]+ models/s, [\d.]+s left", err)
    sweep(OBJ, data, CFG, GRID, key=KEY, init_scale=SCALE, chunk_size=4)  # auto: not a TTY here
    sweep(OBJ, data, CFG, GRID, key=KEY, init_scale=SCALE, chunk_size=4, progress=False)
    assert capsys.readouterr().err == ""


SHARDED = textwrap.dedent("""
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from jaxreg.objective import Objective
    from jaxreg.sweeps import sweep
    from jaxreg import TrainConfig, prepare_data
    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 3)); y = (X[:, 0] + rng.normal(size=24) > 0).astype(float)
    obj = Objective("logistic")
    cfg = TrainConfig(method="minibatch", batch_size=6, n_epochs=2)
    data = prepare_data(obj, cfg, X, y, X[:8], y[:8])
    grid = {"penalty": ["l1", "l2"], "lam": [0.1, 0.01, 0.001], "seed": [0]}  # 6 -> padded to 8
    import jaxreg.engine as E
    seen, to_host = [], E.to_host  # record how the outputs are split over devices
    E.to_host = lambda x: (seen.append((len(x.sharding.device_set), x.shape[0],
                                         x.addressable_shards[0].data.shape[0])), to_host(x))[1]
    r4 = sweep(obj, data, cfg, grid, init_scale=0.1)
    # 8 models, 2 per device (outputs constant across models, e.g. history.epoch, may be
    # replicated instead)
    assert {v[:2] for v in seen} == {(4, 8)} and seen.count((4, 8, 2)) > len(seen) // 2, seen
    seen.clear()
    r1 = sweep(obj, data, cfg, grid, init_scale=0.1, devices=jax.devices()[:1])
    assert seen and set(seen) == {(1, 6, 6)}, set(seen)
    assert r4.chunk_sizes == {None: (8, 1)}, r4.chunk_sizes
    assert r1.chunk_sizes == {None: (6, 1)}, r1.chunk_sizes
    for a, b in zip(jax.tree_util.tree_leaves((r4.flat, r4.final)),
                    jax.tree_util.tree_leaves((r1.flat, r1.final))):
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-12)
    print("SHARDED-OK", r4.best().index)
""")


def test_sharded_over_four_fake_devices_equals_single_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SHARDED-OK" in proc.stdout
