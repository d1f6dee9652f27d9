"""Folds (jaxreg.folds) and user weights (jaxreg.weights): stratification counted by hand, fold-id
checks, bad input named before anything compiles, the in-program fold merge."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import Batch
from jaxreg import folds as F
from jaxreg import weights as Wt
from jaxreg.config import TrainData


def test_kfold_sizes_and_stratification_by_hand():
    y = np.array([0] * 23 + [1] * 7 + [2] * 11)
    foldid = F.kfold(len(y), 4, key=3, y=y)
    assert foldid.dtype == np.int32 and set(foldid) == {0, 1, 2, 3}
    sizes = np.bincount(foldid)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 41
    for c, n_c in ((0, 23), (1, 7), (2, 11)):
        per_fold = np.bincount(foldid[y == c], minlength=4)
        assert set(per_fold) <= {n_c // 4, -(-n_c // 4)}, (c, per_fold)
    # same key, same folds; another key, other folds; shuffle=False deals rows in order
    np.testing.assert_array_equal(F.kfold(41, 4, key=3, y=y), foldid)
    assert not np.array_equal(F.kfold(41, 4, key=4, y=y), foldid)
    np.testing.assert_array_equal(F.kfold(6, 3, shuffle=False), [0, 1, 2, 0, 1, 2])


def test_check_folds_relabels_user_ids_and_masks():
    foldid, K = F.check_folds(np.array(["b", "a", "b", "c", "a", "c"]), 6)
    np.testing.assert_array_equal(foldid, [1, 0, 1, 2, 0, 2])
    assert K == 3
    masks = F.train_masks(foldid, K)
    np.testing.assert_array_equal(masks[0], [True, False, True, True, False, True])
    assert F.smallest_training_rows(foldid, K) == 4
    assert F.smallest_training_rows(foldid, K, weight=np.array([0, 1, 1, 1, 1, 1.0])) == 3


@pytest.mark.parametrize("folds,match", [
    (1, "2 <= K <= n_samples"), (7, "2 <= K <= n_samples"), (2.0, "int number of folds"),
    (np.zeros(6, int), "2 <= K"), (np.arange(5), r"shape \(6,\)"), (np.linspace(0, 1, 6), "integers or strings"),
])
def test_check_folds_rejects_bad_counts_and_ids(folds, match):
    with pytest.raises(ValueError, match=match):
        F.check_folds(folds, 6)


def test_check_folds_rejects_a_class_left_out_of_a_training_fold_and_empty_holdouts():
    y = np.array([0, 0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"training fold 0 .* class\(es\) \[0\]"):
        F.check_folds(np.array([0, 0, 0, 0, 1, 1]), 6, y=y, classifier=True)
    with pytest.raises(ValueError, match="held-out fold"):
        F.check_folds(np.array([0, 0, 0, 1, 1, 1]), 6, weight=np.array([1, 1, 1, 0, 0, 0.0]))
    foldid, K = F.check_folds(2, 6, y=y, classifier=True)  # stratified: one class-1 row per fold
    assert K == 2 and sorted(foldid[4:]) == [0, 1]


def test_merge_fold_weights_train_and_holdout_rows():
    X, y = jnp.arange(8.0).reshape(4, 2), jnp.array([0.0, 1.0, 1.0, 0.0])
    data = TrainData(Batch(X, y, jnp.array([1.0, 2.0, 3.0, 4.0])))
    merged = F.merge_fold(data, np.array([True, False, True, False]))
    np.testing.assert_array_equal(merged.train.weight, [1, 0, 3, 0])
    np.testing.assert_array_equal(merged.holdout.weight, [0, 2, 0, 4])
    assert merged.train.X is X and merged.test is None
    merged = F.merge_fold(TrainData(Batch(X, y)), np.array([True, False, True, False]))
    np.testing.assert_array_equal(merged.train.weight, [1, 0, 1, 0])


def test_class_weights_balanced_and_dict_by_hand():
    y = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(Wt.class_weight_vector("balanced", y, 2), [4 / 6, 4 / 2])
    s = np.array([1.0, 1.0, 2.0, 4.0])  # weighted counts 4 and 4: balanced weights 1, 1
    np.testing.assert_allclose(Wt.class_weight_vector("balanced", y, 2, s), [1.0, 1.0])
    np.testing.assert_allclose(Wt.class_weight_vector({"b": 3.0}, y, 2, labels=["a", "b"]), [1.0, 3.0])
    np.testing.assert_allclose(Wt.example_weights(y, 2, s, {1: 0.5}), [1, 1, 2, 2])
    assert Wt.example_weights(y, 2) is None


@pytest.mark.parametrize("call,match", [
    (lambda: Wt.check_sample_weight([1.0, -1.0, 2.0], 3), "non-negative"),
    (lambda: Wt.check_sample_weight([0.0, 0.0, 0.0], 3), "all zero"),
    (lambda: Wt.check_sample_weight([1.0, np.nan, 2.0], 3), "finite"),
    (lambda: Wt.check_sample_weight([1.0, 2.0], 3), r"shape \(3,\)"),
    (lambda: Wt.check_sample_weight(["a", "b", "c"], 3), "real numbers"),
    (lambda: Wt.class_weight_vector("balance", np.array([0, 1]), 2), "'balanced'"),
    (lambda: Wt.class_weight_vector({5: 1.0}, np.array([0, 1]), 2), "unknown keys"),
    (lambda: Wt.class_weight_vector({0: -1.0}, np.array([0, 1]), 2), "non-negative"),
    (lambda: Wt.class_weight_vector("balanced", np.array([0, 0]), 2), "classes \\[1\\] have none"),
    (lambda: Wt.example_weights(np.array([0, 1]), 2, [1.0, 0.0], {0: 0.0}), "zero weight"),
])
def test_weight_input_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
