"""experiments/meta_lr.py end to end on synthetic digits with a tiny config that runs every study
(the smoke configuration skips binary and horizon): the common run shape, the files, the JSON."""
import json

import pytest

from experiments import meta_lr
from jaxreg.progress import QUIET
from jaxreg.data import synthetic_mnist

TINY = meta_lr.MetaLRConfig(
    softmax=meta_lr.SoftmaxStudy(100, 4, (1e-2, 1.0, 3), (0.1,), 2, 0.5, n_train=300),
    binary=meta_lr.EtaStudy(50, 4, (1e-2, 1.0, 3), (0.1,), 2, 0.5),
    horizon=meta_lr.HorizonStudy((2, 4, 6), 0.1, 2, 3),
    joint=meta_lr.JointStudy(200, 100, 1, ((0.1, 1.0, 2), (1.0, 10.0, 2), (1e-4, 1e-2, 2)), 4, ((0.3, 1.0, 1e-3),), 2,
                             0.5),
    hd=meta_lr.OnlineStudy((0.1, 1.0), (1e-3,)), cost=meta_lr.CostStudy(1, 0.25), n_holdout=200,
    schedule=meta_lr.smoke_config().schedule, implicit=meta_lr.smoke_config().implicit)


def test_smoke_config_is_v01s():
    cfg = json.loads(json.dumps(meta_lr.smoke_config(), default=lambda o: o.__dict__))
    assert cfg["softmax"] == {"batch_size": 100, "horizon": 20, "grid": [1e-3, 1e2, 8], "starts": [3e-2, 8.0],
                              "n_steps": 4, "outer_lr": 0.6, "n_train": 2000}
    assert cfg["binary"] is None and cfg["horizon"] is None and cfg["n_holdout"] == 500 and cfg["smoke"]


def test_run_every_study(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXREG_XLA_CACHE", "0")  # no persistent XLA cache switched on for the rest of the suite
    out = meta_lr.run(tmp_path, TINY, synthetic_mnist(2500, 600, seed=1), QUIET)
    assert set(out) == {"rows", "files", "config", "timings"} and out["rows"] == []
    assert sorted(out["files"]) == sorted(p.name for p in tmp_path.iterdir())
    assert {"meta_lr_horizon.png", "meta_lr_schedule.png"} <= set(out["files"]) and len(out["timings"]) == 8
    res = json.loads((tmp_path / "meta_lr.json").read_text())
    assert res["data_source"] == "synthetic (not MNIST)" and not res["smoke"]
    assert set(res["config"]) == {"seed", "softmax", "binary", "horizon", "joint", "hd", "cost", "schedule", "implicit"}
    d = res["details"]
    assert len(d["horizon"]["learned_eta"]) == 3 and set(d["horizon"]["curves"]) == {"2", "4", "6"}
    assert len(d["hd"]["eta_trace"][0]) == 4 and d["hd"]["eta0"] == pytest.approx([0.1, 1.0])
    assert d["joint"]["grid_grad_evals"] == 8 * 2 and d["joint"]["meta_grad_evals"] == 1 * 2 * 4 * 2
    assert res["binary_meta_vs_grid_loss_ratio"] == d["binary"]["meta_vs_grid_loss_ratio"]
    for k in ("schedule_vs_best_baseline_loss_ratio", "schedule_compute_vs_2d_grid", "implicit_batched_max_rel_err"):
        assert res[k] > 0, k
    assert res["implicit_batched_max_rel_err"] < 1e-4
    assert "## Answer to the exercise" in (tmp_path / "meta_lr.md").read_text()
