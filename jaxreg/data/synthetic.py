"""A synthetic stand-in for MNIST (same keys, dtypes and image shape as ``load_mnist``), for
tests, CI and machines without the real files; :func:`load_digits` picks one or the other."""
from __future__ import annotations

import numpy as np

from jaxreg.paths import cache_dir

__all__ = ["synthetic_mnist", "load_digits"]


def synthetic_mnist(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> dict:
    """A fake MNIST dict (same keys, dtypes and image shape as ``load_mnist``) for tests and CI.

    Each digit k is a fixed random blob pattern plus noise, so the classes are learnable but not
    trivially separable. Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    protos = []
    for _ in range(10):
        img = np.zeros((28, 28))
        for _ in range(4):
            cy, cx = rng.uniform(6, 22, 2)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 5) ** 2))
        protos.append(img / img.max())
    protos = np.stack(protos)
    common = protos.mean(axis=0)  # shared by every class: the classes overlap

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        strength = rng.uniform(0.15, 0.6, (n, 1, 1))  # some images barely show their class
        imgs = strength * protos[labels] + 0.5 * common + 0.6 * rng.random((n, 28, 28))
        imgs = np.clip(imgs * (rng.random((n, 28, 28)) < 0.7), 0, 1)
        return (imgs * 255).astype(np.uint8), labels

    tr_x, tr_y = make(n_train)
    te_x, te_y = make(n_test)
    return {"train_images": tr_x, "train_labels": tr_y, "test_images": te_x, "test_labels": te_y}


def load_digits(data_dir=None, *, synthetic: bool = False, fallback: bool = False, verbose: bool = False,
                log=None) -> tuple[dict, dict]:
    """``(data, source)``: MNIST (:func:`jaxreg.data.load_mnist`, fetched and verified if needed),
    or :func:`synthetic_mnist` ``(6000, 1000)`` when ``synthetic``, or when MNIST cannot be had
    and ``fallback`` (then ``log(message)`` says why). ``source`` describes what was loaded."""
    if synthetic:
        return synthetic_mnist(6000, 1000), {"source": "synthetic (--synthetic)"}
    from jaxreg.data.tfds_mnist import load_mnist  # TFDS is imported only when MNIST is loaded

    try:
        return load_mnist(data_dir, verbose=verbose), {"source": "MNIST (jaxreg.data.load_mnist)",
                                                       "data_dir": data_dir, "cache": str(cache_dir())}
    except Exception as e:  # MnistUnavailableError, a corrupt file ...
        if not fallback:
            raise
        if log is not None:
            log(f"MNIST unavailable ({type(e).__name__}: {e}); using synthetic digits")
        return synthetic_mnist(6000, 1000), {"source": "synthetic (MNIST unavailable)", "error": str(e)}
