"""The lecture notes' random-projection pipeline: features x (d,) -> z = standardise(xᵀP) (k,), with P a
d × k matrix of N(0, 1) draws and the standardisation fitted on the training rows only."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["random_projection", "project"]


def random_projection(key, n_features: int, dim: int, dtype=jnp.float32) -> np.ndarray:
    """P: ``(n_features, dim)`` N(0, 1) draws from ``key`` (a host array)."""
    return np.asarray(jax.random.normal(key, (n_features, dim), dtype))


def project(P, X_train, *X_other):
    """``(Z_train, *Z_other)``: each X @ P, standardised with the mean and standard deviation of
    ``X_train @ P`` per output column (the lecture's code divides by the variance; we divide by
    the standard deviation). Shapes ``(n, d) -> (n, k)``."""
    Z = X_train @ P
    mu, sd = Z.mean(axis=0), Z.std(axis=0)
    return ((Z - mu) / sd, *((X @ P - mu) / sd for X in X_other))
