"""Seed 000's random projection: N(0,1) matrix from a key, standardised with the training rows."""
import jax
import numpy as np

from jaxreg.data import project, random_projection


def test_projection_from_key_and_training_statistics():
    rng = np.random.default_rng(0)
    X, Xt = rng.random((50, 8)), rng.random((7, 8))
    P = random_projection(jax.random.PRNGKey(3), 8, 4)
    assert P.shape == (8, 4) and np.array_equal(P, random_projection(jax.random.PRNGKey(3), 8, 4))
    assert not np.array_equal(P, random_projection(jax.random.PRNGKey(4), 8, 4))
    Z, Zt = project(P, X, Xt)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-6)
    raw = X @ P  # the other set is standardised with the *training* statistics, written out
    np.testing.assert_allclose(Zt, (Xt @ P - raw.mean(axis=0)) / raw.std(axis=0), rtol=1e-6)
