"""experiments/benchmarks/bench_peers.py: the common experiment shape, the λ subsets that give every capped
peer a jaxreg row on the same λ, and a tiny end-to-end run on synthetic digits (one problem,
first calls in fresh processes included) that writes the issue's keys."""
import dataclasses
import inspect
import json

import pytest

from experiments.benchmarks import bench_peers
from jaxreg.data import synthetic_mnist
from jaxreg.progress import QUIET

KEYS = {"l2_speedup_vs_sklearn_cold", "l2_speedup_vs_sklearn_cold_empty_cache", "l2_speedup_vs_jaxopt",
        "l1_speedup_vs_celer", "l1_speedup_vs_skglm", "l1_speedup_vs_saga", "sweep_vs_handwritten",
        "fraction_of_matmul", "max_objective_gap", "rows"}


def test_common_shape():
    cfg = bench_peers.default_config()
    assert dataclasses.is_dataclass(cfg) and type(cfg).__dataclass_params__.frozen
    assert type(bench_peers.smoke_config()) is type(cfg) and "python -m experiments.benchmarks.bench_peers" in type(cfg).__doc__
    assert list(inspect.signature(bench_peers.run).parameters) == ["out_dir", "config", "data", "progress"]
    assert len(cfg.lambdas) >= 7


def test_subsets_pair_each_capped_peer_with_jaxreg():
    cfg = dataclasses.replace(bench_peers.default_config(), subsets=(("2v3-l1", "sklearn-saga", 2),
                                                                     ("2v3-l1", "celer", 2)))
    sub = bench_peers.solver_subsets("2v3-l1", cfg)
    assert sub["sklearn-saga"] == ("sklearn-saga", 2) and sub["celer"] == ("celer", 2)
    assert sub["jaxreg"] == ("jaxreg", 7) and sub["jaxreg@2"] == ("jaxreg", 2) and sub["skglm"] == ("skglm", 7)


def test_bad_problem_is_refused(tmp_path):
    cfg = dataclasses.replace(bench_peers.smoke_config(), problems=("glmnet",))
    with pytest.raises(ValueError, match="config.problems"):
        bench_peers.run(tmp_path, cfg, synthetic_mnist(n_train=600, n_test=200, seed=1), QUIET)


def test_tiny_run_writes_the_issue_keys(tmp_path):
    cfg = dataclasses.replace(bench_peers.smoke_config(), problems=("2v3-l2",), lambdas=(0.1, 0.01), pool=(600, 60, 200),
                              sweep_epochs=1, scaling_models=(1, 2), scaling_n=(200, 400), scaling_d=(16, 32))
    out = bench_peers.run(tmp_path, cfg, synthetic_mnist(n_train=600, n_test=200, seed=1), QUIET)
    assert sorted(out["files"]) == ["bench_peers.json", "bench_peers.md", "bench_peers_scaling.png"]
    report = json.loads((tmp_path / "bench_peers.json").read_text())
    assert KEYS <= set(report)
    rows = {r["solver"]: r for r in report["rows"]}
    assert set(rows) == {"jaxreg", "sklearn-lbfgs", "jaxopt-lbfgs"}
    for r in rows.values():  # every solver matched J* on this easy problem, and was timed cold and warm
        assert r["status"] == "ok" and r["gap"] <= cfg.rel and r["cold_s"] > 0 and r["warm_s"] > 0
    assert rows["sklearn-lbfgs"]["cold_empty_cache_s"] is None and rows["jaxreg"]["cold_empty_cache_s"] > 0
    assert report["l2_speedup_vs_sklearn_cold"] == rows["sklearn-lbfgs"]["cold_s"] / rows["jaxreg"]["cold_s"]
    assert report["l1_speedup_vs_celer"] is None  # the L1 problem did not run
    assert "| 2v3-l2 | jaxreg |" in (tmp_path / "bench_peers.md").read_text()
