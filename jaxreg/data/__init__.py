"""jaxreg's data layer: MNIST IDX files, their fetching, TFDS loading, splits.

Public API::

    read_idx(path, expected_md5=None) -> np.ndarray      # (n, 28, 28) or (n,) uint8
    write_idx(path, array) -> Path
    ensure_mnist(data_dir=None, *, verbose=True) -> Path  # dir with the 4 IDX files
    load_mnist(data_dir=None, *, verbose=True) -> dict    # train/test images+labels
    load_tfds_dataset(name, *, verbose=True) -> dict      # TFDS's mnist/fashion_mnist
    logistic_text_split / logistic_code_split / softmax_split -> Split
    synthetic_mnist(n_train, n_test, seed) -> dict        # a fake MNIST for tests and CI
    load_digits(data_dir, *, synthetic, fallback) -> (dict, source)  # MNIST, or the fake one

``tensorflow_datasets`` is imported only when the TFDS functions are used.
"""

from jaxreg.data.fetch import ensure_mnist, MnistUnavailableError
from jaxreg.paths import cache_dir
from jaxreg.data.idx import MNIST_FILES, MNIST_MD5, CorruptFileError, read_idx, write_idx
from jaxreg.data.projection import project, random_projection
from jaxreg.data.splits import Split, logistic_code_split, logistic_text_split, softmax_split
from jaxreg.data.synthetic import load_digits, synthetic_mnist

__all__ = [
    "CorruptFileError", "MNIST_FILES", "MNIST_MD5", "MnistUnavailableError", "Split", "project", "random_projection",
    "cache_dir", "ensure_mnist", "load_digits", "load_mnist", "load_tfds_dataset", "logistic_code_split",
    "logistic_text_split", "read_idx", "softmax_split", "synthetic_mnist",
    "write_idx",
]


def __getattr__(name):
    """Lazy ``load_mnist`` / ``load_tfds_dataset``: importing TFDS takes ~1 s."""
    if name in ("load_mnist", "load_tfds_dataset"):
        from jaxreg.data import tfds_mnist

        return getattr(tfds_mnist, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
