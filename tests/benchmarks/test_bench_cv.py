"""experiments/benchmarks/bench_cv.py: the common experiment shape, and a tiny run on synthetic digits that
writes bench_cv.json with exactly the keys the issue asks for (timings are not checked)."""
import dataclasses
import inspect
import json

from experiments.benchmarks import bench_cv
from jaxreg.data import synthetic_mnist
from jaxreg.progress import QUIET

KEYS = {"name", "sklearn_s", "jaxreg_s", "speedup", "sklearn_C", "jaxreg_C", "same_C", "cv_score_gap"}


def test_common_shape():
    cfg = bench_cv.default_config()
    assert dataclasses.is_dataclass(cfg) and type(cfg).__dataclass_params__.frozen
    assert type(bench_cv.smoke_config()) is type(cfg) and "python -m experiments.benchmarks.bench_cv" in type(cfg).__doc__
    assert list(inspect.signature(bench_cv.run).parameters) == ["out_dir", "config", "data", "progress"]


def test_tiny_run_writes_the_issue_keys(tmp_path):
    cfg = dataclasses.replace(bench_cv.smoke_config(), problems=("mnist_2v3_l2",), Cs=3, binary_rows=300, pool=(1500, 100, 300),
                              straggler=False, sgd_cv=False)
    out = bench_cv.run(tmp_path, cfg, synthetic_mnist(n_train=1500, n_test=300, seed=1), QUIET)
    assert sorted(out["files"]) == ["bench_cv.json", "bench_cv.md"]
    report = json.loads((tmp_path / "bench_cv.json").read_text())
    assert "min_speedup" in report and len(report["problems"]) == 1
    row = report["problems"][0]
    assert KEYS <= set(row) and row["name"] == "mnist_2v3_l2" and isinstance(row["same_C"], bool)
    assert report["min_speedup"] == row["speedup"] == row["sklearn_s"] / row["jaxreg_s"]
