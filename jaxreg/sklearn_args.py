"""The estimators' argument checks and padding rule (plain Python, no scikit-learn needed):
penalty names and their L1 share α, positive numbers, the dtypes, and the bucket sizes small
problems are padded to so repeated fits reuse compiled programs. Used by :mod:`jaxreg.sklearn`."""
from __future__ import annotations

from numbers import Integral, Real

__all__ = ["PENALTIES", "DTYPES", "bucket", "l1_share", "positive"]


PENALTIES = ("l2", "l1", "elasticnet", None)
DTYPES = ("float64", "float32")


def bucket(k: int, limit: int, low: int) -> int:
    """k rounded up to a power of two (at least ``low``) when k < limit, else k itself: small
    problems, where compiling dominates, share a few compiled shapes."""
    return k if k >= limit else max(low, 1 << (k - 1).bit_length())


def l1_share(penalty, l1_ratio) -> float:
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    if penalty == "elasticnet":
        if isinstance(l1_ratio, bool) or not isinstance(l1_ratio, Real) or not 0 <= l1_ratio <= 1:
            raise ValueError(f"l1_ratio must be a number in [0, 1] with penalty='elasticnet', got {l1_ratio!r}")
        return float(l1_ratio)
    return 1.0 if penalty == "l1" else 0.0


def positive(value, name, integer=False):
    kind = Integral if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}")
    return value
