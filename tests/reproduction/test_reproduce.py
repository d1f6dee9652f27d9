"""experiments/: the scripts' common shape, their determinism on synthetic digits, and
reproduce.py's plumbing (no MNIST, no network)."""
import dataclasses
import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import jaxreg.data
from experiments import baydin_hd, common, meta_lr, paper_logistic, paper_softmax, reproduce, seed_extras
from experiments.benchmarks import bench_huge_grid
from jaxreg.data import synthetic_mnist
from jaxreg.progress import QUIET

REPO = Path(__file__).resolve().parent.parent.parent
NO_STEPS = "logistic,softmax,extras,meta,baydin"

TINY_LOGISTIC = paper_logistic.LogisticConfig(
    pairs=((2, 3),), n_iterations=40, record_every=10, lambdas=(0.01, 0.001), large_lambdas=(0.3,),
    n_train_pool=1500, n_test_pool=600, code_split=False)
TINY_SOFTMAX = paper_softmax.SoftmaxConfig(tuning_epochs=4, rule_epochs=3, code_epochs=2, final_epochs=(3,),
                                           n_train_pool=1000, n_holdout=200, n_test=300)
TINY_EXTRAS = seed_extras.ExtrasConfig(student_max_updates=200, mse_iterations=20, n_train_pool=1500, n_holdout=200,
                                       n_test=300, projection_dim=20, sklearn_check=False, raw_pixels=False)


@pytest.fixture(scope="module")
def digits():
    return synthetic_mnist(n_train=1500, n_test=600, seed=3)


@pytest.mark.parametrize("mod", [paper_logistic, paper_softmax, seed_extras, meta_lr, bench_huge_grid, baydin_hd], ids=lambda m: m.__name__)
def test_script_has_the_common_shape(mod):
    name = mod.__name__.removeprefix("experiments.")  # "benchmarks.bench_huge_grid" for a benchmark
    cfg = mod.default_config()
    assert dataclasses.is_dataclass(cfg) and type(mod.smoke_config()) is type(cfg)
    assert type(cfg).__dataclass_params__.frozen
    assert f"python -m experiments.{name}" in type(cfg).__doc__  # the command that reproduces it
    assert list(inspect.signature(mod.run).parameters) == ["out_dir", "config", "data", "progress"]
    assert not any("sys.path" in line for line in inspect.getsource(mod).splitlines())


def _numbers(out, keys=("rows",)):
    return [(r.get("experiment"), r.get("metric"), r.get("jaxreg")) for k in keys for r in out[k]]


def _check_outputs(out, out_dir):
    assert set(out) >= {"rows", "files", "config", "timings"}
    assert sorted(out["files"]) == sorted(os.listdir(out_dir))
    json.dumps(out["config"])  # JSON-able as it is


def test_logistic_run_twice_identical(tmp_path, digits):
    a = paper_logistic.run(tmp_path / "a", TINY_LOGISTIC, digits, QUIET)
    b = paper_logistic.run(tmp_path / "b", TINY_LOGISTIC, digits, QUIET)
    _check_outputs(a, tmp_path / "a")
    assert _numbers(a) == _numbers(b) and a["sweep_rows"] == b["sweep_rows"]
    assert len(a["sweep_rows"]) == 2 * 3  # penalties × λ
    assert {f"fig{i:02d}" for i in range(1, 11)} == {f[:5] for f in a["files"]}
    assert all(0 <= r["jaxreg"] <= 100 for r in a["rows"])
    assert list(a["sizes"]) == ["logistic 2 vs 3"]
    assert set(a["sizes"]["logistic 2 vs 3"]) == {"train", "holdout", "test"}
    # the λ chosen on hold-out is the best of the paper's λ among the sweep's rows (not a large λ)
    l1 = [r for r in a["sweep_rows"] if r["penalty"] == "l1" and r["lam"] in TINY_LOGISTIC.lambdas]
    chosen = next(r for r in a["rows"] if r["metric"] == "test accuracy, L1 λ chosen on hold-out")
    best = max(l1, key=lambda r: (r["holdout_acc"], -l1.index(r)))
    assert chosen["config"]["lam"] == best["lam"] and chosen["jaxreg"] == 100 * best["test_acc"]


def test_softmax_run_twice_identical(tmp_path, digits):
    a = paper_softmax.run(tmp_path / "a", TINY_SOFTMAX, digits, QUIET)
    b = paper_softmax.run(tmp_path / "b", TINY_SOFTMAX, digits, QUIET)
    _check_outputs(a, tmp_path / "a")
    assert _numbers(a, ("rows", "tuning_rows")) == _numbers(b, ("rows", "tuning_rows"))
    assert a["tuning_rows"] == b["tuning_rows"]
    # every (init, protocol) has its rows; both inits really differ
    protos = {(r["init"], r["protocol"]) for r in a["tuning_rows"]}
    assert protos == {(i, p) for i in ("zeros", "N(0,1)") for p in ("text", "rule", "code")}
    paper_rows = [r for r in a["rows"] if r["paper"] is not None and "(variant)" not in r["experiment"]]
    assert len(paper_rows) == 2 * 4 * 2  # inits × paper (penalty, λ) × (hold-out, test)
    assert "fig12_softmax_weights_digits.png" in a["files"] and list(a["sizes"]) == ["softmax"]


def test_extras_run(tmp_path, digits):
    out = seed_extras.run(tmp_path, TINY_EXTRAS, digits, QUIET)
    _check_outputs(out, tmp_path)
    assert sorted(out["files"]) == ["fig13_seed000_students.png", "fig14_seed004_attenuation.png"]
    assert [r["experiment"] for r in out["rows"]].count("seed 000 students") == 3
    err = next(r for r in out["rows"] if r["metric"].startswith("max |closed-form"))
    assert err["jaxreg"] < 1e-5  # closed-form ∂ℓ/∂s agrees with jax.grad


def test_script_command_line(tmp_path, digits, monkeypatch, capsys):
    monkeypatch.setattr(jaxreg.data, "load_mnist", lambda data_dir=None, verbose=True: digits)
    monkeypatch.setattr(paper_logistic, "smoke_config", lambda: TINY_LOGISTIC)
    assert common.main(paper_logistic, ["--smoke", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "logistic 2 vs 3" in printed and "test accuracy (batch GD)" in printed and "wrote 10 files" in printed
    with pytest.raises(SystemExit):
        common.main(paper_logistic, ["--help"])
    assert "python -m experiments.paper_logistic" in capsys.readouterr().out


def test_main_writes_table_and_manifest_and_records_skips(tmp_path):
    out = tmp_path / "out"
    assert reproduce.main(["--synthetic", "--out", str(out), "--no-progress", "--skip", NO_STEPS]) == 0
    assert sorted(os.listdir(out)) == ["manifest.json", "paper_table.json", "paper_table.md", "sweeps.json"]
    m = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in m["steps"]] == ["data", "logistic", "softmax", "extras", "meta", "baydin"]
    assert [s["status"] for s in m["steps"]] == ["ok"] + ["skipped"] * 5
    assert m["data"]["source"].startswith("synthetic") and m["smoke"] is False
    assert m["command"] == f"python -m experiments.reproduce --synthetic --out {out} --no-progress --skip {NO_STEPS}"
    assert json.loads((out / "paper_table.json").read_text()) == []


def test_every_step_is_called_with_the_common_shape(tmp_path, monkeypatch):
    calls = []

    def fake(name, fail=False):
        def run(out_dir, config, data, progress):
            calls.append((name, config, sorted(data), progress.enabled))
            if fail:
                raise RuntimeError("boom")
            return {"rows": [dict(experiment=name, metric="m", paper=None, jaxreg=1.0)], "files": [],
                    "config": {"seed": 7}, "timings": {}, "tuning_rows": [{"a": 1}]}
        return types.SimpleNamespace(__name__=f"fake.{name}", run=run, default_config=lambda: "full",
                                     smoke_config=lambda: "smoke")

    monkeypatch.setattr(reproduce, "STEPS", (("one", fake("one")), ("two", fake("two", fail=True))))
    out = tmp_path / "out"
    assert reproduce.main(["--synthetic", "--smoke", "--out", str(out), "--no-progress"]) == 1  # a step failed
    assert calls == [(n, "smoke", ["test_images", "test_labels", "train_images", "train_labels"], False)
                     for n in ("one", "two")]
    m = json.loads((out / "manifest.json").read_text())
    assert [(s["name"], s["status"]) for s in m["steps"]] == [("data", "ok"), ("one", "ok"), ("two", "failed")]
    assert "RuntimeError: boom" in m["steps"][2]["detail"] and m["configs"] == {"one": {"seed": 7}}
    assert [r["experiment"] for r in json.loads((out / "paper_table.json").read_text())] == ["one"]
    assert json.loads((out / "sweeps.json").read_text())["one"] == [{"a": 1}]


def test_unknown_skip_name_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        reproduce.main(["--synthetic", "--skip", "logistic,metaa"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown step(s) metaa" in err and "logistic, softmax, extras, meta" in err


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "results.txt"
    f.write_text("not a folder")
    for out in (f, f / "sub"):
        with pytest.raises(SystemExit) as e:
            reproduce.main(["--synthetic", "--out", str(out), "--skip", NO_STEPS])
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "results.txt' is a file" in err and "cannot create the folder" in err
    assert f.read_text() == "not a folder"


def test_smoke_without_out_never_writes_results(monkeypatch, tmp_path):
    fake_repo = tmp_path / "repo"
    monkeypatch.setattr(reproduce, "REPO", str(fake_repo))
    monkeypatch.setattr(reproduce.tempfile, "mkdtemp", lambda prefix="": str(tmp_path / "smoke"))
    assert reproduce.main(["--smoke", "--synthetic", "--no-progress", "--skip", NO_STEPS]) == 0
    assert (tmp_path / "smoke" / "manifest.json").exists()
    assert not (fake_repo / "results").exists()


def test_jaxreg_reproduce_runs_the_module_from_the_repository_root(tmp_path):
    # a fresh interpreter, the way a user runs it: no sys.path inserts anywhere
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "jaxreg.cli", "reproduce", "--synthetic", "--no-progress",
                        "--skip", NO_STEPS, "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "wrote 4 files" in r.stdout and (out / "manifest.json").exists()
