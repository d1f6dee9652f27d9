"""Shared test configuration.

The whole suite runs with 64-bit floats enabled so that gradient checks can be tight
(closed form vs autodiff to ~1e-10, finite differences to ~1e-6). Tests that check float32
behaviour create float32 arrays explicitly (``jnp.asarray(..., jnp.float32)``).

This must run before any JAX array is created, hence at import time of the root conftest.
"""
import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
    """Asserts that float64 is enabled (request it in tests that rely on double precision)."""
    assert jax.config.jax_enable_x64, "tests/conftest.py should have enabled jax_enable_x64"
    return True


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test (deterministic, independent of test order)."""
    return np.random.default_rng(0)
