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
