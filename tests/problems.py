"""Tiny synthetic classification problems for the tests (a helper module, not a test file)."""
import jax.numpy as jnp
import numpy as np

from jaxreg.config import TrainData
from jaxreg.objective import Batch


def softmax_problem(n=90, n_hold=40, d=6, seed=1, classes=3, n_test=0) -> TrainData:
    """Gaussian features, labels argmax(XB + Gumbel noise) (0/1 for ``classes=2``); train, hold-out
    and (``n_test`` > 0) test sets, float64 features, int32 labels."""
    r = np.random.default_rng(seed)
    m = n + n_hold + n_test
    X = r.normal(size=(m, d))
    s = X @ r.normal(size=(d, max(classes, 2))) + r.gumbel(size=(m, max(classes, 2)))
    y = np.argmax(s, 1) if classes > 2 else (s[:, 0] > s[:, 1]).astype(np.int32)
    mk = lambda sl: Batch(jnp.asarray(X[sl]), jnp.asarray(y[sl], jnp.int32))  # noqa: E731
    return TrainData(mk(slice(0, n)), mk(slice(n, n + n_hold)), mk(slice(n + n_hold, m)) if n_test else None)
