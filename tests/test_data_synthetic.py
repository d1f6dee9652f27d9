"""jaxreg.data.synthetic_mnist: the fake MNIST of the tests and of CI without the real files."""
import numpy as np

from jaxreg.data import synthetic_mnist


def test_synthetic_mnist_shapes_and_determinism():
    a, b = synthetic_mnist(200, 50, seed=1), synthetic_mnist(200, 50, seed=1)
    assert a["train_images"].shape == (200, 28, 28) and a["train_images"].dtype == np.uint8
    assert a["test_labels"].shape == (50,) and set(np.unique(a["train_labels"])) <= set(range(10))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train_images"], synthetic_mnist(200, 50, seed=2)["train_images"])


def test_load_digits_mnist_synthetic_and_fallback(monkeypatch):
    import pytest

    import jaxreg.data.tfds_mnist
    from jaxreg.data import MnistUnavailableError, load_digits

    fake = {"train_images": np.zeros((2, 28, 28), np.uint8)}
    monkeypatch.setattr(jaxreg.data.tfds_mnist, "load_mnist", lambda data_dir=None, verbose=True: fake)
    data, source = load_digits("/some/dir")
    assert data is fake and source["source"].startswith("MNIST") and source["data_dir"] == "/some/dir"
    data, source = load_digits(synthetic=True)
    assert data["train_images"].shape == (6000, 28, 28) and source == {"source": "synthetic (--synthetic)"}

    def unavailable(data_dir=None, verbose=True):
        raise MnistUnavailableError("no source worked")

    monkeypatch.setattr(jaxreg.data.tfds_mnist, "load_mnist", unavailable)
    with pytest.raises(MnistUnavailableError):
        load_digits()
    said = []
    data, source = load_digits(fallback=True, log=said.append)
    assert data["test_labels"].shape == (1000,) and source["source"] == "synthetic (MNIST unavailable)"
    assert source["error"] == "no source worked" and "no source worked" in said[0]
