"""The paper's splits on synthetic data whose pixels encode each image's index."""
import numpy as np
import pytest

from jaxreg.data.splits import Split, logistic_code_split, logistic_text_split, softmax_split

N_TRAIN, N_TEST = 400, 120


def _images(n):
    """Image i has pixel (0, 0) = i // 256, (0, 1) = i % 256, (27, 27) = 255."""
    im = np.zeros((n, 28, 28), np.uint8)
    im[:, 0, 0] = np.arange(n) // 256
    im[:, 0, 1] = np.arange(n) % 256
    im[:, 27, 27] = 255
    return im


def _index_of(X, bias=True):
    """Recover the source indices from features (pixels / 255, bias column first)."""
    px = np.rint(X[:, int(bias):] * 255).astype(np.int64)
    return px[:, 0] * 256 + px[:, 1]


@pytest.fixture
def data():
    return {"train_images": _images(N_TRAIN), "train_labels": (np.arange(N_TRAIN) % 10).astype(np.uint8),
            "test_images": _images(N_TEST), "test_labels": ((np.arange(N_TEST) * 7) % 10).astype(np.uint8)}


def _check_features(split, bias=True):
    for X in (split.X_train, split.X_holdout, split.X_test):
        assert X.dtype == np.float32 and X.shape[1] == 784 + int(bias)
        if bias:
            np.testing.assert_array_equal(X[:, 0], 1.0)
        assert X.min() >= 0.0 and X.max() == 1.0  # pixel (27, 27) = 255 -> 1.0
    assert isinstance(split, Split)


def test_logistic_text_split(data):
    s = logistic_text_split(data, digits=(2, 3), n_train_pool=200, holdout_fraction=0.1, n_test_pool=50)
    _check_features(s)
    pool = [i for i in range(200) if i % 10 in (2, 3)]  # 40 images
    assert _index_of(s.X_holdout).tolist() == pool[:4]
    assert _index_of(s.X_train).tolist() == pool[4:]
    test = [i for i in range(N_TEST - 50, N_TEST) if (i * 7) % 10 in (2, 3)]
    assert _index_of(s.X_test).tolist() == test
    assert s.info["test_indices"].tolist() == test and s.info["n_test"] == len(test)
    assert s.info["n_holdout"] == 4 and s.info["n_train"] == 36
    # label 1 for the second digit, 0 for the first
    assert s.y_train.dtype == np.float32
    np.testing.assert_array_equal(s.y_train, [float(i % 10 == 3) for i in pool[4:]])
    np.testing.assert_array_equal(s.y_test, [float((i * 7) % 10 == 3) for i in test])
    # scaling: pixel (0, 1) of image i is i % 256, divided by 255
    np.testing.assert_allclose(s.X_train[:, 2], (np.array(pool[4:]) % 256) / 255, rtol=1e-6)


def test_logistic_text_split_swapped_digits(data):
    s = logistic_text_split(data, digits=(7, 1), n_train_pool=100, n_test_pool=100)
    assert set(np.unique(s.y_train)) == {0.0, 1.0}
    idx = _index_of(s.X_train)
    np.testing.assert_array_equal(s.y_train, (idx % 10 == 1).astype(np.float32))


def test_logistic_code_split_off_by_one(data):
    s = logistic_code_split(data, digits=(2, 3), n_train_max=50, holdout_fraction=0.1, n_test_max=10)
    _check_features(s)
    sel = [i for i in range(N_TRAIN) if i % 10 in (2, 3)][:50]
    h = int(50 * 0.1)
    assert _index_of(s.X_holdout).tolist() == sel[:h]
    assert _index_of(s.X_train).tolist() == sel[h + 1:49]  # skips sel[h] and the last one
    tsel = [i for i in range(N_TEST) if (i * 7) % 10 in (2, 3)][:10]
    assert _index_of(s.X_test).tolist() == tsel[:9]
    assert (s.info["n_holdout"], s.info["n_train"], s.info["n_test"]) == (5, 43, 9)
    # uncapped: all 80 images of the two digits
    s = logistic_code_split(data, digits=(2, 3))
    assert s.info["n_pool_selected"] == 80 and s.info["n_train"] == 80 - 8 - 2


def test_softmax_split(data):
    s = softmax_split(data, n_train_pool=300, n_holdout=30, n_test=40)
    _check_features(s)
    assert _index_of(s.X_holdout).tolist() == list(range(30))
    assert _index_of(s.X_train).tolist() == list(range(30, 300))
    assert _index_of(s.X_test).tolist() == list(range(N_TEST - 40, N_TEST))
    assert s.y_train.dtype == np.int32
    np.testing.assert_array_equal(s.y_train, np.arange(30, 300) % 10)
    np.testing.assert_array_equal(s.y_test, (np.arange(N_TEST - 40, N_TEST) * 7) % 10)
    assert s.sizes == {"train": 270, "holdout": 30, "test": 40}


def test_no_bias_feature(data):
    s = softmax_split(data, n_train_pool=100, n_holdout=10, n_test=10, bias_feature=False)
    _check_features(s, bias=False)
    assert _index_of(s.X_train, bias=False).tolist() == list(range(10, 100))


@pytest.mark.parametrize("call, arg", [
    (lambda d: logistic_text_split(d, digits=(3, 3)), "digits"),
    (lambda d: logistic_text_split(d, digits=(2, 10)), "digits"),
    (lambda d: logistic_text_split(d, digits=(2,)), "digits"),
    (lambda d: logistic_code_split(d, digits=(-1, 2)), "digits"),
    (lambda d: logistic_text_split(d, holdout_fraction=0.0, n_train_pool=100, n_test_pool=10), "holdout_fraction"),
    (lambda d: logistic_code_split(d, holdout_fraction=1.5), "holdout_fraction"),
    (lambda d: logistic_text_split(d, n_train_pool=N_TRAIN + 1, n_test_pool=10), "n_train_pool"),
    (lambda d: logistic_text_split(d, n_train_pool=100), "n_test_pool"),  # default 2000 > 120
    (lambda d: logistic_code_split(d, n_train_max=0), "n_train_max"),
    (lambda d: softmax_split(d), "n_train_pool"),  # default 20000 > 400
    (lambda d: softmax_split(d, n_train_pool=100, n_holdout=100, n_test=10), "n_holdout"),
    (lambda d: softmax_split(d, n_train_pool=100, n_holdout=10, n_test=N_TEST + 1), "n_test"),
])
def test_validation(data, call, arg):
    with pytest.raises(ValueError, match=arg):
        call(data)


def test_bad_data_dict(data):
    with pytest.raises(ValueError, match="test_labels"):
        softmax_split({k: v for k, v in data.items() if k != "test_labels"})
    bad = dict(data, train_labels=data["train_labels"][:-1])
    with pytest.raises(ValueError, match="disagree"):
        softmax_split(bad, n_train_pool=100, n_holdout=10, n_test=10)
