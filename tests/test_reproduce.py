"""experiments/: determinism of the experiment scripts on synthetic digits, the table builder, the
manifest, and reproduce.py's plumbing (no MNIST, no network)."""
import json
import os

import numpy as np
import pytest

from experiments import common, paper_logistic, paper_softmax, reproduce


@pytest.fixture(scope="module")
def digits():
    return common.synthetic_mnist(n_train=1500, n_test=600, seed=3)


def test_synthetic_mnist_shapes_and_determinism():
    a, b = common.synthetic_mnist(200, 50, seed=1), common.synthetic_mnist(200, 50, seed=1)
    assert a["train_images"].shape == (200, 28, 28) and a["train_images"].dtype == np.uint8
    assert a["test_labels"].shape == (50,) and set(np.unique(a["train_labels"])) <= set(range(10))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train_images"], common.synthetic_mnist(200, 50, seed=2)["train_images"])


TINY_LOGISTIC = paper_logistic.LogisticConfig(
    pairs=((2, 3),), n_iterations=40, record_every=10, lambdas=(0.01, 0.001), large_lambdas=(0.3,),
    n_train_pool=1500, n_test_pool=600, code_split=False)


def _numbers(out, keys=("rows",)):
    return [(r.get("experiment"), r.get("metric"), r.get("jaxreg")) for k in keys for r in out[k]]


def test_logistic_run_twice_identical(tmp_path, digits):
    a = paper_logistic.run(tmp_path / "a", data=digits, config=TINY_LOGISTIC)
    b = paper_logistic.run(tmp_path / "b", data=digits, config=TINY_LOGISTIC, figures=False)
    assert _numbers(a) == _numbers(b)
    assert a["sweep_rows"] == b["sweep_rows"]
    assert len(a["sweep_rows"]) == 2 * 3  # penalties × λ
    assert sorted(a["files"]) == sorted(os.listdir(tmp_path / "a"))
    assert {f"fig{i:02d}" for i in range(1, 11)} == {f[:5] for f in a["files"]}
    assert all(0 <= r["jaxreg"] <= 100 for r in a["rows"])


def test_softmax_run_twice_identical(tmp_path, digits):
    cfg = paper_softmax.SoftmaxConfig(tuning_epochs=4, rule_epochs=3, code_epochs=2, final_epochs=(3,),
                                      n_train_pool=1000, n_holdout=200, n_test=300)
    a = paper_softmax.run(tmp_path / "a", data=digits, config=cfg)
    b = paper_softmax.run(tmp_path / "b", data=digits, config=cfg, figures=False)
    assert _numbers(a, ("rows", "tuning_rows")) == _numbers(b, ("rows", "tuning_rows"))
    assert a["tuning_rows"] == b["tuning_rows"]
    # every (init, protocol) has its rows; both inits really differ
    protos = {(r["init"], r["protocol"]) for r in a["tuning_rows"]}
    assert protos == {(i, p) for i in ("zeros", "N(0,1)") for p in ("text", "rule", "code")}
    paper_rows = [r for r in a["rows"] if r["paper"] is not None and "(variant)" not in r["experiment"]]
    assert len(paper_rows) == 2 * 4 * 2  # inits × paper (penalty, λ) × (hold-out, test)
    assert "fig12_softmax_weights_digits.png" in a["files"]


def test_table_rows_diffs_and_sections():
    rows = reproduce.table_rows([
        dict(experiment="softmax", metric="test", paper=93.55, jaxreg=93.5, config={"a": 1}),
        dict(experiment="softmax (variant)", metric="test", paper=93.55, jaxreg=91.0, config={}, why="because"),
        dict(experiment="extra", metric="m", paper=None, jaxreg=12.0),
        dict(experiment="students", metric="hours", paper=2.768, jaxreg=2.70, unit="h"),
    ])
    assert rows[0]["diff"] == pytest.approx(-0.05) and rows[0]["section"] == "main"
    assert rows[1]["diff"] == pytest.approx(-2.55) and rows[1]["section"] == "variant"
    assert rows[2]["diff"] is None and rows[2]["section"] == "extra"
    assert rows[3]["diff"] == pytest.approx(-0.068)
    for r in rows:
        assert {"experiment", "metric", "paper", "jaxreg", "diff", "config"} <= set(r)
    md = reproduce.table_markdown(rows, smoke=False)
    assert "| softmax | test | 93.55% | 93.50% | -0.05 |" in md
    assert "**-2.55**" in md and "**why:** because" in md  # > 1 point: flagged and explained
    assert "SMOKE" not in md and "SMOKE" in reproduce.table_markdown(rows, smoke=True)
    json.dumps(rows)  # JSON-ready


def test_manifest_fields(tmp_path):
    m = reproduce.manifest(smoke=True, out_dir=tmp_path, data_source={"source": "synthetic"},
                           steps=[{"name": "data", "status": "ok", "wall_s": 0.1}],
                           configs={"logistic": {"seed": 0}}, files=["b.png", "a.png", "a.png"], wall=1.23)
    for k in ("versions", "git", "seeds", "configs", "steps", "smoke", "total_wall_s", "files", "platform"):
        assert k in m
    for p in ("python", "jax", "jaxlib", "optax", "numpy", "tensorflow-datasets", "matplotlib"):
        assert p in m["versions"]
    assert m["versions"]["jax"] is not None
    assert set(m["git"]) == {"commit", "dirty"}
    assert m["seeds"] == {"logistic": 0} and m["files"] == ["a.png", "b.png"]
    json.dumps(common.to_jsonable(m))


def test_main_writes_table_and_manifest_and_records_skips(tmp_path, monkeypatch):
    out = tmp_path / "out"
    rc = reproduce.main(["--synthetic", "--out", str(out), "--no-progress", "--skip", "logistic,softmax,extras,meta"])
    assert rc == 0
    assert sorted(os.listdir(out)) == ["manifest.json", "paper_table.json", "paper_table.md", "sweeps.json"]
    m = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in m["steps"]] == ["data", "logistic", "softmax", "extras", "meta_lr"]
    assert all(s["status"] in ("ok", "skipped") for s in m["steps"])
    assert m["data"]["source"].startswith("synthetic") and m["smoke"] is False
    assert json.loads((out / "paper_table.json").read_text()) == []


def test_missing_meta_lr_is_a_skipped_step(monkeypatch, tmp_path):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "experiments.meta_lr":
            raise ModuleNotFoundError("No module named 'experiments.meta_lr'", name="experiments.meta_lr")
        return real(name, *a, **k)

    monkeypatch.setattr(reproduce.importlib, "import_module", fake)
    assert reproduce.run_meta(tmp_path, smoke=True, synthetic=True) is None
    out = tmp_path / "out"
    assert reproduce.main(["--synthetic", "--out", str(out), "--no-progress", "--skip", "logistic,softmax,extras"]) == 0
    steps = json.loads((out / "manifest.json").read_text())["steps"]
    assert steps[-1]["name"] == "meta_lr" and steps[-1]["status"] == "skipped"


def test_smoke_without_out_never_writes_results(monkeypatch, tmp_path):
    fake_repo = tmp_path / "repo"
    monkeypatch.setattr(reproduce, "REPO", str(fake_repo))
    monkeypatch.setattr(reproduce.tempfile, "mkdtemp", lambda prefix="": str(tmp_path / "smoke"))
    assert reproduce.main(["--smoke", "--synthetic", "--no-progress", "--skip", "logistic,softmax,extras,meta"]) == 0
    assert (tmp_path / "smoke" / "manifest.json").exists()
    assert not (fake_repo / "results").exists()


def test_atomic_writers_leave_no_temp(tmp_path):
    common.write_json(tmp_path / "x.json", {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan")})
    common.write_text(tmp_path / "y.md", "hello")
    assert sorted(os.listdir(tmp_path)) == ["x.json", "y.md"]
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None}
