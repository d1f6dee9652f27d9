"""Shared test configuration.

The whole suite runs with 64-bit floats enabled so that gradient checks can be tight
(closed form vs autodiff to ~1e-10, finite differences to ~1e-6). Tests that check float32
behaviour create float32 arrays explicitly (``jnp.asarray(..., jnp.float32)``).

This must run before any JAX array is created, hence at import time of the root conftest.
The persistent XLA compilation cache stays off for the whole suite (``JAXREG_XLA_CACHE=0``):
the experiments switch it on for real runs, and a test process that compiles hundreds of
programs must not depend on (or write to) the user's cache; the test of the switch itself sets
the variable it needs.
"""
import os

import jax

os.environ["JAXREG_XLA_CACHE"] = "0"

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


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. Without this, the whole suite (800+
    tests, thousands of compiled programs in one process) segfaulted inside XLA:CPU's compiler at
    the same test in two runs, while that module passed alone; with it the suite runs through.
    The cause inside XLA is not pinned down (the process's memory-map count stayed near 2,100, far
    from vm.max_map_count, and peak RSS near 1.6 GiB)."""
    yield
    jax.clear_caches()
