"""Cross-validation in one program (sweep(..., folds=) and jaxreg.cv): a fold's model equals
training on the fold's rows alone, held-out rows never reach a mini-batch, mean ± SE and both
selection rules by hand, refit, the tidy table, bad input."""
import csv
import io

import numpy as np
import pytest

from jaxreg import Objective, engine
from jaxreg import folds as F
from jaxreg.cv import cross_validate, select, summarise
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import train

OBJ = Objective("logistic")
FULL = TrainConfig("full_batch", 15)
GRID = {"lam": [1e-1, 1e-3], "l1_ratio": [0.0, 1.0], "learning_rate": [0.5]}


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 4))
    y = (X @ np.array([1.5, -1.0, 0.5, 0.0]) + rng.normal(size=90) > 0).astype(np.float64)
    return X, y


@pytest.fixture(scope="module")
def cvr(problem):
    X, y = problem
    misses = engine._program.cache_info().misses
    out = cross_validate(OBJ, prepare_data(OBJ, FULL, X, y), FULL, GRID, folds=3, fold_key=1, refit=True)
    return out, engine._program.cache_info().misses - misses


def test_every_fold_and_point_is_one_program_and_equals_training_on_the_fold_alone(problem, cvr):
    X, y = problem
    res, compiled = cvr
    # one program for the 12 models of the CV sweep, one for the refit's single model
    assert compiled == 2 and res.sweep.chunk_sizes == {None: (12, 1)}
    assert res.sweep.axes == ("lam", "l1_ratio", "learning_rate", "fold") and res.shape == (2, 2, 1)
    foldid = res.sweep.foldid
    for i, c in enumerate(res.sweep.configs):
        if c["lam"] != 1e-1:
            continue
        tr = foldid != c["fold"]
        alone = train(OBJ, prepare_data(OBJ, FULL, X[tr], y[tr], X[~tr], y[~tr]),
                      Hyper(learning_rate=0.5, l2=(1 - c["l1_ratio"]) * 0.1, l1=c["l1_ratio"] * 0.1), FULL)
        np.testing.assert_allclose(res.sweep.flat.params["W"][i], alone.params["W"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.sweep.final["holdout_loss"][i], alone.history.holdout_loss[-1], atol=1e-12)
        np.testing.assert_allclose(res.sweep.final["holdout_acc"][i], alone.history.holdout_acc[-1], atol=1e-6)


def test_mean_se_and_records_by_hand(cvr):
    res, _ = cvr
    acc = res.sweep.final["holdout_acc"].reshape(2, 2, 1, 3)
    np.testing.assert_allclose(res.mean(), acc.mean(-1), rtol=1e-14)
    np.testing.assert_allclose(res.se(), acc.std(-1, ddof=1) / np.sqrt(3), rtol=1e-14)
    rows = res.to_records()
    assert len(rows) == 4 and rows[1]["lam"] == 0.1 and rows[1]["l1_ratio"] == 1.0 and rows[1]["n_folds"] == 3
    assert rows[1]["holdout_acc_mean"] == pytest.approx(acc[0, 1, 0].mean(), rel=1e-14)
    assert np.isnan(rows[0]["test_acc_mean"])  # no test set given
    table = list(csv.DictReader(io.StringIO(open(res.to_csv(res_path := _tmp_csv())).read())))
    assert len(table) == 4 and float(table[1]["holdout_acc_mean"]) == pytest.approx(rows[1]["holdout_acc_mean"])
    assert table[0]["test_acc_mean"] == "nan"
    per_fold = res.sweep.to_records()
    assert len(per_fold) == 12 and {r["fold"] for r in per_fold} == {0, 1, 2}
    res_path.unlink()


def _tmp_csv():
    import pathlib
    import tempfile

    return pathlib.Path(tempfile.mkdtemp()) / "cv.csv"


def test_dataframe_or_the_install_hint(cvr):
    """A DataFrame of the CV summary where pandas is installed; else an ImportError saying so."""
    try:
        import pandas as pd
    except ImportError:
        with pytest.raises(ImportError, match="needs pandas"):
            cvr[0].to_dataframe(["holdout_acc"])
        return
    df = cvr[0].to_dataframe(["holdout_acc"])
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["lam", "l1_ratio", "learning_rate", "n_folds",
                                                                "holdout_acc_mean", "holdout_acc_se"]


def test_refit_is_the_selected_point_trained_on_all_rows(problem, cvr):
    X, y = problem
    res, _ = cvr
    sel = res.select()
    assert res.selection == sel and res.refit.shape == (1, 1, 1)
    a = sel.config["l1_ratio"]
    alone = train(OBJ, prepare_data(OBJ, FULL, X, y),
                  Hyper(learning_rate=0.5, l2=(1 - a) * sel.config["lam"], l1=a * sel.config["lam"]), FULL)
    np.testing.assert_allclose(res.refit.flat.params["W"][0], alone.params["W"], rtol=0, atol=1e-13)


def test_select_rules_by_hand():
    mean, se = np.array([0.80, 0.84, 0.85, 0.83]), np.full(4, 0.01)
    strength = np.array([1.0, 0.1, 0.01, 0.001])
    assert select(mean, se, greater_is_better=True) == 2
    assert select(mean, se, greater_is_better=True, rule="1se", strength=strength) == 1
    # only the best point's group counts; invalid points are never chosen
    assert select(mean, se, greater_is_better=True, rule="1se", strength=strength, group=[0, 0, 1, 1]) == 2
    assert select(mean, se, greater_is_better=True, valid=[True, True, False, True]) == 1
    loss = np.array([0.50, 0.41, 0.40, 0.45])
    assert select(loss, se, greater_is_better=False, rule="1se", strength=strength) == 1
    m, s = summarise(np.array([[1.0, 2.0, 3.0]]))
    assert m[0] == 2.0 and s[0] == pytest.approx(1.0 / np.sqrt(3))
    with pytest.raises(ValueError, match="rule must be one of"):
        select(mean, se, greater_is_better=True, rule="2se")


def test_minibatch_folds_draw_only_their_own_training_rows(problem):
    """Changing the held-out rows' features leaves a fold's model bitwise unchanged (they never
    enter a batch); every fold runs epochs × (smallest training fold // batch size) updates."""
    X, y = problem
    cfg = TrainConfig("minibatch", 3, batch_size=8)
    foldid = F.kfold(90, 3, key=0, y=y)
    runs = []
    for Xs in (X, np.where((foldid == 0)[:, None], 100.0, X)):
        runs.append(sweep(OBJ, prepare_data(OBJ, cfg, Xs, y), cfg, {"learning_rate": [0.3]}, folds=foldid))
    a, b = runs
    np.testing.assert_array_equal(a.flat.params["W"][0], b.flat.params["W"][0])  # fold 0 never sees its rows
    assert not np.array_equal(a.flat.params["W"][1], b.flat.params["W"][1])  # fold 1 trains on them
    m_min = F.smallest_training_rows(foldid, 3)
    np.testing.assert_array_equal(a.flat.n_updates, 3 * (m_min // 8))


@pytest.mark.parametrize("kwargs,match", [
    (dict(grid={"lam": [0.1], "l1_ratio": [1.5]}), r"grid\['l1_ratio'\]\[0\] must be <= 1"),
    (dict(grid={"lam": [0.1]}), "'lam' goes with 'penalty'"),
    (dict(grid={"fold": [0, 1]}), "fold axis comes from"),
    (dict(grid={"lam": [0.1], "l1_ratio": [0.5], "penalty": ["l1"]}), "exclusive"),
    (dict(folds=1), "2 <= K"),
    (dict(folds=91), "2 <= K"),
    (dict(metric="train_acc"), "hold-out metric"),
    (dict(rule="2se"), "rule must be one of"),
    (dict(holdout=True), "data.holdout must be None"),
    (dict(config=TrainConfig("full_batch", 4, early_stopping="patience"), refit=True), "refit=True trains on all"),
])
def test_bad_input_is_named_before_compiling(problem, kwargs, match):
    X, y = problem
    data = prepare_data(OBJ, FULL, X, y, *((X, y) if kwargs.pop("holdout", False) else ()))
    grid = kwargs.pop("grid", {"learning_rate": [0.1]})
    misses = engine._program.cache_info().misses
    with pytest.raises(ValueError, match=match):
        cross_validate(OBJ, data, kwargs.pop("config", FULL), grid, **{"folds": 3, **kwargs})
    assert engine._program.cache_info().misses == misses


def test_cv_figures_from_a_result(cvr):
    from jaxreg import plots

    res, _ = cvr
    figs = plots.cv_figures(res, lam_axis="lam", row_axis="learning_rate")
    assert set(figs) == {"cv_curve", "heatmap"}
    assert len(figs["cv_curve"].axes[0].containers) == 2  # one curve per l1_ratio
    assert figs["heatmap"].axes[0].images[0].get_array().shape == (1, 2)  # η (1 value) × λ (2)
    with pytest.raises(ValueError, match="lam_axis must be an axis"):
        plots.cv_figures(res, lam_axis="l2")
