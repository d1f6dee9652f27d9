"""Host-side collectives of JAX's multi-process runtime that the lower layers need: gathering a
value from every process and copying a global array to the host. Single-process runs take the
short path (no collective)."""
from __future__ import annotations

import hashlib

import jax
import numpy as np

__all__ = ["allgather", "combined_digest", "to_host"]


def allgather(x) -> np.ndarray:
    """``(process_count, ...)``: every process's ``x`` (same shape everywhere), on every process."""
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x[None]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x))


def combined_digest(hexdigest: str) -> str:
    """One digest from every process's ``hexdigest`` (process order): the fingerprint of data
    that each process holds a part of."""
    if jax.process_count() == 1:
        return hexdigest
    raw = allgather(np.frombuffer(bytes.fromhex(hexdigest), np.uint8))
    return hashlib.sha256(raw.tobytes()).hexdigest()


def to_host(x):
    """A NumPy copy of the global array ``x`` on every process."""
    if x.is_fully_addressable:
        return np.asarray(x)
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
