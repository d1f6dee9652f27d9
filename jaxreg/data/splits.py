"""The paper's MNIST splits, pure numpy.

Each function takes the dict returned by :func:`load_mnist` (``train_images``
(N, 28, 28) uint8, ``train_labels`` (N,), ``test_images`` (M, 28, 28),
``test_labels`` (M,)) and returns a :class:`Split`.  Every ``X_*`` is float32
of shape ``(n, 785)``: pixels / 255 flattened in row-major order after a
leading bias column of ones (``(n, 784)`` with ``bias_feature=False``).
``info`` records the indices (into the train or test arrays) and counts.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = ["Split", "logistic_text_split", "logistic_code_split", "softmax_split"]


class Split(NamedTuple):
    """Features ``X_*`` (n, 785) float32 and labels ``y_*`` (n,) of one split."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_holdout: np.ndarray
    y_holdout: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any]

    @property
    def sizes(self) -> dict[str, int]:
        """``{"train": n, "holdout": n, "test": n}``: the number of examples of each set."""
        return {"train": len(self.y_train), "holdout": len(self.y_holdout), "test": len(self.y_test)}


def _arrays(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    try:
        arrs = [np.asarray(data[k]) for k in
                ("train_images", "train_labels", "test_images", "test_labels")]
    except KeyError as e:
        raise ValueError(f"data: missing key {e}; expected the dict from load_mnist") from None
    xtr, ytr, xte, yte = arrs
    if xtr.shape[0] != ytr.shape[0] or xte.shape[0] != yte.shape[0] or ytr.ndim != 1:
        raise ValueError(f"data: images/labels disagree: train {xtr.shape} vs {ytr.shape}, "
                         f"test {xte.shape} vs {yte.shape}")
    return xtr, ytr, xte, yte


def _features(images: np.ndarray, indices: np.ndarray, bias: bool) -> np.ndarray:
    """``images[indices]`` flattened, / 255, as float32, bias column first."""
    flat = images[indices].reshape(len(indices), -1)
    out = np.empty((len(indices), flat.shape[1] + int(bias)), np.float32)
    if bias:
        out[:, 0] = 1.0
    np.divide(flat, np.float32(255.0), out=out[:, int(bias):], dtype=np.float32)
    return out


def _check_digits(digits: Sequence[int]) -> tuple[int, int]:
    try:
        a, b = (int(d) for d in digits)
    except (TypeError, ValueError):
        raise ValueError(f"digits must be two digits, got {digits!r}") from None
    if not (0 <= a <= 9 and 0 <= b <= 9) or a == b:
        raise ValueError(f"digits must be two different digits in 0..9, got {digits!r}")
    return a, b


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def _check_count(name: str, value: int, available: int | None = None) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if available is not None and value > available:
        raise ValueError(f"{name}={value} is larger than the {available} images available")
    return int(value)


def _binary(images_tr, labels_tr, images_te, labels_te, hold, train, test, digits, bias,
            info) -> Split:
    def y(labels, ix):
        return (labels[ix] == digits[1]).astype(np.float32)

    info.update(digits=digits, holdout_indices=hold, train_indices=train, test_indices=test,
                n_holdout=len(hold), n_train=len(train), n_test=len(test))
    for name in ("holdout", "train", "test"):
        if info[f"n_{name}"] == 0:
            raise ValueError(f"digits {digits}: the {name} set would be empty")
    return Split(_features(images_tr, train, bias), y(labels_tr, train),
                 _features(images_tr, hold, bias), y(labels_tr, hold),
                 _features(images_te, test, bias), y(labels_te, test), info)


def logistic_text_split(data: dict, digits: Sequence[int] = (2, 3), n_train_pool: int = 20000,
                        holdout_fraction: float = 0.1, n_test_pool: int = 2000, *,
                        bias_feature: bool = True) -> Split:
    """Binary split as the paper's text describes it.

    Train pool: the first ``n_train_pool`` training images; of its images of
    the two digits (``count`` of them), the first ``int(holdout_fraction *
    count)`` are the hold-out set, the rest the training set.  Test: the
    images of the two digits among the LAST ``n_test_pool`` test images.
    Labels float32: 0.0 for ``digits[0]``, 1.0 for ``digits[1]``.
    """
    xtr, ytr, xte, yte = _arrays(data)
    digits = _check_digits(digits)
    frac = _check_fraction("holdout_fraction", holdout_fraction)
    n_train_pool = _check_count("n_train_pool", n_train_pool, len(ytr))
    n_test_pool = _check_count("n_test_pool", n_test_pool, len(yte))
    pool = np.flatnonzero(np.isin(ytr[:n_train_pool], digits))
    n_hold = int(frac * len(pool))
    start = len(yte) - n_test_pool
    test = start + np.flatnonzero(np.isin(yte[start:], digits))
    info = {"variant": "text", "n_pool_selected": len(pool), "test_pool_start": start}
    return _binary(xtr, ytr, xte, yte, pool[:n_hold], pool[n_hold:], test, digits,
                   bias_feature, info)


def logistic_code_split(data: dict, digits: Sequence[int] = (2, 3), n_train_max: int = 20000,
                        holdout_fraction: float = 0.1, n_test_max: int = 2000, *,
                        bias_feature: bool = True) -> Split:
    """Binary split as the paper's code builds it (off-by-one slicing kept).

    Train: the images of the two digits from the whole training set in
    order, at most ``n_train_max`` (``count`` of them); hold-out =
    ``[0 : h]`` with ``h = int(count * holdout_fraction)``; train =
    ``[h + 1 : count - 1]`` -- the code skips the image at position ``h``
    and the last one, and we reproduce that.  Test: the first ``n_test_max``
    test images of the two digits (``counter`` of them), then ``[0 :
    counter - 1]``, again dropping the last one.  Labels as in
    :func:`logistic_text_split`.
    """
    xtr, ytr, xte, yte = _arrays(data)
    digits = _check_digits(digits)
    frac = _check_fraction("holdout_fraction", holdout_fraction)
    n_train_max = _check_count("n_train_max", n_train_max)
    n_test_max = _check_count("n_test_max", n_test_max)
    sel = np.flatnonzero(np.isin(ytr, digits))[:n_train_max]
    count = len(sel)
    h = int(count * frac)
    tsel = np.flatnonzero(np.isin(yte, digits))[:n_test_max]
    counter = len(tsel)
    info = {"variant": "code", "n_pool_selected": count, "n_test_selected": counter}
    return _binary(xtr, ytr, xte, yte, sel[0:h], sel[h + 1:count - 1], tsel[0:counter - 1],
                   digits, bias_feature, info)


def softmax_split(data: dict, n_train_pool: int = 20000, n_holdout: int = 2000,
                  n_test: int = 2000, *, bias_feature: bool = True) -> Split:
    """Ten-class split: of the first ``n_train_pool`` training images the
    first ``n_holdout`` are the hold-out set and the rest the training set;
    the test set is the LAST ``n_test`` test images.  Labels int32 0..9.
    """
    xtr, ytr, xte, yte = _arrays(data)
    n_train_pool = _check_count("n_train_pool", n_train_pool, len(ytr))
    n_holdout = _check_count("n_holdout", n_holdout)
    if n_holdout >= n_train_pool:
        raise ValueError(f"n_holdout={n_holdout} must be smaller than "
                         f"n_train_pool={n_train_pool}")
    n_test = _check_count("n_test", n_test, len(yte))
    hold = np.arange(n_holdout)
    train = np.arange(n_holdout, n_train_pool)
    test = np.arange(len(yte) - n_test, len(yte))
    info = {"variant": "softmax", "holdout_indices": hold, "train_indices": train,
            "test_indices": test, "n_holdout": len(hold), "n_train": len(train),
            "n_test": len(test)}
    return Split(_features(xtr, train, bias_feature), ytr[train].astype(np.int32),
                 _features(xtr, hold, bias_feature), ytr[hold].astype(np.int32),
                 _features(xte, test, bias_feature), yte[test].astype(np.int32), info)
