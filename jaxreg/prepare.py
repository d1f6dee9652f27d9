"""Inputs of a training run, validated at the public boundary (plain Python/NumPy, before jit).

* :func:`prepare_data`: raw arrays -> a :class:`~jaxreg.config.TrainData` (:func:`prepare_split`
  from a :class:`jaxreg.data.Split`);
* :func:`check_data`: a ``TrainData`` built by hand is checked against the objective and config;
* :func:`check_hyper`, :func:`check_params`, :func:`as_key`: hyperparameters, initial weights,
  random keys.

Every check raises ``ValueError`` naming the argument; the jitted cores assume valid input.
"""
from __future__ import annotations

from numbers import Integral

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import optim, validation, weights
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.multihost import to_host
from jaxreg.objective import Batch, Objective

__all__ = ["SETS", "prepare_data", "prepare_split", "check_data", "check_hyper", "check_params", "as_key"]

SETS = ("train", "holdout", "test")


def prepare_data(objective: Objective, config: TrainConfig, X_train, y_train, X_holdout=None,
                 y_holdout=None, X_test=None, y_test=None, dtype=None, *, sample_weight=None,
                 class_weight=None, holdout_weight=None, test_weight=None) -> TrainData:
    """Validate raw arrays for ``objective`` and ``config``; return a :class:`TrainData`.

    sample_weight, class_weight: per-example weights of the training set (:mod:`jaxreg.weights`:
    ``class_weight`` None, ``"balanced"`` or ``{label: weight}`` for classifiers); holdout_weight,
    test_weight: weights of the evaluation sets (weighted loss and accuracy). Without any, the
    batches carry ``weight=None`` and everything computes exactly as unweighted.

    ``dtype``: float32 or float64 (default: that of ``X_train``; integers and half precision
    become float32, float64 becomes float32 unless ``jax_enable_x64``).

    Raises ``ValueError`` naming the argument: shapes, ragged rows, complex or non-numeric
    values, labels, NaN/inf, negative or all-zero weights, a batch larger than the training set,
    a hold-out set missing where early stopping needs one, another dtype.
    """
    X, y = validation.check_batch(X_train, y_train, objective, ("X_train", "y_train"))
    # a given dtype must be a precision JAX computes in; else X's, float64 -> float32 without x64
    dtype = validation.check_float_dtype(dtype) if dtype is not None else jax.dtypes.canonicalize_dtype(X.dtype)
    # real-valued targets compute in the model's precision; labels keep their integer/0-1 dtype
    y_dtype = dtype if objective.record.target == "real" else None
    if class_weight is not None and not objective.is_classifier:
        raise ValueError(f"class_weight applies to classifiers, not loss={objective.loss_name!r}")
    n_classes = objective.n_classes if objective.is_multiclass else 2
    w = weights.example_weights(np.asarray(y, np.int64) if objective.is_classifier else np.zeros(len(y), int),
                                n_classes, sample_weight, class_weight)
    sets = [_batch(X, y, w, dtype, y_dtype)]
    for name, Xs, ys, ws in (("holdout", X_holdout, y_holdout, holdout_weight), ("test", X_test, y_test, test_weight)):
        if (Xs is None) != (ys is None):
            raise ValueError(f"X_{name} and y_{name} must be given together")
        if Xs is None:
            if ws is not None:
                raise ValueError(f"{name}_weight needs X_{name} and y_{name}")
            sets.append(None)
            continue
        Xs, ys = validation.check_batch(Xs, ys, objective, (f"X_{name}", f"y_{name}"))
        validation.check_n_features(Xs, X.shape[1], f"X_{name}")
        ws = None if ws is None else weights.check_sample_weight(ws, len(ys), f"{name}_weight")
        sets.append(_batch(Xs, ys, ws, dtype, y_dtype))
    data = TrainData(*sets)
    _check_config_fits(config, data, "X_holdout, y_holdout")
    return data


def _batch(X, y, w, dtype, y_dtype) -> Batch:
    return Batch(jnp.asarray(X, dtype), jnp.asarray(y, y_dtype), None if w is None else jnp.asarray(w, dtype))


def prepare_split(objective: Objective, config: TrainConfig, split, dtype=None) -> TrainData:
    """:func:`prepare_data` of a :class:`jaxreg.data.Split` (its train, hold-out and test sets)."""
    return prepare_data(objective, config, split.X_train, split.y_train, split.X_holdout, split.y_holdout,
                        split.X_test, split.y_test, dtype=dtype)


def _check_config_fits(config: TrainConfig, data: TrainData, holdout_name: str) -> None:
    n = data.train.X.shape[0]
    if config.needs_holdout and data.holdout is None:
        raise ValueError(f"early_stopping={config.early_stopping!r} needs a hold-out set ({holdout_name})")
    if config.method == "minibatch" and config.batch_size > n:
        raise ValueError(f"batch_size ({config.batch_size}) must be <= the number of training examples ({n})")
    if config.epoch_rows is not None:
        if config.epoch_rows > n:
            raise ValueError(f"epoch_rows ({config.epoch_rows}) must be <= the number of training examples ({n})")
        if config.method == "minibatch" and config.batch_size > config.epoch_rows:
            raise ValueError(f"batch_size ({config.batch_size}) must be <= epoch_rows ({config.epoch_rows})")


def check_data(objective: Objective, config: TrainConfig, data, name: str = "data") -> TrainData:
    """Check a :class:`TrainData` (e.g. built by hand) against ``objective`` and ``config``:
    structure, shapes, feature counts, floating features, labels the objective accepts, a
    hold-out set where the config needs one, the batch size."""
    if not isinstance(data, TrainData):
        raise ValueError(f"{name} must be a TrainData (see prepare_data), got {type(data).__name__}")
    if data.train is None:
        raise ValueError(f"{name}.train is required")
    d = None
    for s, batch in zip(SETS, data):
        if batch is None:
            continue
        where = f"{name}.{s}"
        if not isinstance(batch, Batch):
            raise ValueError(f"{where} must be a Batch(X, y), got {type(batch).__name__}")
        X, y, w = batch
        if np.ndim(X) != 2 or X.shape[0] == 0:
            raise ValueError(f"{where}.X must be a non-empty 2-D array (n, d), got shape {np.shape(X)}")
        if not jnp.issubdtype(X.dtype, jnp.floating):
            raise ValueError(f"{where}.X must be floating point, got dtype {X.dtype}")
        if np.shape(y) != (X.shape[0],):
            raise ValueError(f"{where}.y must have shape ({X.shape[0]},), got {np.shape(y)}")
        if w is not None:
            weights.check_sample_weight(w, X.shape[0], f"{where}.weight")
        d = X.shape[1] if d is None else d
        if X.shape[1] != d:
            raise ValueError(f"{where}.X has {X.shape[1]} features, expected {d} (as in {name}.train.X)")
        _check_targets(objective, y, f"{where}.y")
    _check_config_fits(config, data, f"{name}.holdout")
    return data


def _target_stats(y):
    """(min, max, every value 0 or 1?) of ``y``, also for a global array split over processes
    (a reduction every process computes alike)."""
    if isinstance(y, jax.Array) and not y.is_fully_addressable:
        stats = jax.jit(lambda v: (jnp.min(v), jnp.max(v), jnp.all((v == 0) | (v == 1))))(y)
        return tuple(to_host(a).item() for a in stats)
    v = np.asarray(y)
    return v.min().item(), v.max().item(), bool(np.all((v == 0) | (v == 1)))


def _check_targets(objective: Objective, y, where: str) -> None:
    """Targets of the kind the objective's loss reads: real numbers, 0/1, or integer labels in
    [0, C) (data prepared for another objective is refused, e.g. labels 0..9 for C = 3)."""
    kind, dtype = objective.record.target, np.dtype(y.dtype)
    if kind == "real":
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{where} must be real-valued (floating) for loss={objective.loss_name!r}, got dtype {dtype}")
        return
    if kind == "class" and not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(f"{where} must hold integer class labels for loss={objective.loss_name!r}, got dtype {dtype}")
    lo, hi, binary = _target_stats(y)
    if kind == "class" and (lo < 0 or hi >= objective.n_classes):
        raise ValueError(f"{where} labels must lie in [0, {objective.n_classes}) for this objective, "
                         f"got range [{lo}, {hi}]")
    if kind == "binary" and not binary:
        raise ValueError(f"{where} must be 0/1 for loss={objective.loss_name!r}, got values in [{lo}, {hi}]")


def check_hyper(hyper: Hyper, config: TrainConfig | None = None, dtype=None) -> Hyper:
    """Scalars with η > 0, T > 0, λ₂ >= 0, λ₁ >= 0 and finite ``extra`` values (ValueError
    naming the field); with ``config``, its optimizer factory must accept the extras; with
    ``dtype``, every value must stay finite in that precision (1e100 overflows float32)."""
    if not isinstance(hyper, Hyper):
        raise ValueError(f"hyper must be a jaxreg Hyper, got {type(hyper).__name__}")
    extra = {}
    for k, v in dict(hyper.extra or {}).items():
        try:
            extra[k] = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"hyper.extra[{k!r}] must be a real number or array, got {v!r}") from None
        if not np.all(np.isfinite(extra[k])):
            raise ValueError(f"hyper.extra[{k!r}] must be finite, got {v!r}")
    if config is not None and not isinstance(config.optimizer, str):
        optim.check_optimizer(config.optimizer, tuple(sorted(extra)))
    out = Hyper(
        learning_rate=validation.check_scalar(hyper.learning_rate, "learning_rate", low=0, low_inclusive=False),
        decay_time=validation.check_scalar(hyper.decay_time, "decay_time", low=0, low_inclusive=False),
        l2=validation.check_scalar(hyper.l2, "l2", low=0),
        l1=validation.check_scalar(hyper.l1, "l1", low=0), extra=extra)
    if dtype is not None:
        big = float(np.finfo(dtype).max)
        for name, v in [*zip(Hyper._fields[:4], out[:4]), *((f"extra[{k!r}]", v) for k, v in extra.items())]:
            if np.any(np.abs(np.asarray(v, np.float64)) > big):
                raise ValueError(f"{name} = {v!r} overflows the model's precision {np.dtype(dtype).name} "
                                 f"(largest {big:.3g})")
    return out


def check_params(objective: Objective, params, n_features: int, dtype, name: str = "init_params",
                 lead: tuple = ()) -> dict:
    """``params`` as a dict with the keys and shapes of ``objective.init_params(n_features)``
    (with leading axes ``lead``, e.g. one start per model), cast to ``dtype``."""
    shapes = objective.param_shapes(n_features)
    if not isinstance(params, dict) or set(params) != set(shapes):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"{name} must be a dict with keys {sorted(shapes)}, got {got}")
    out = {}
    for k, shape in shapes.items():
        v = np.asarray(params[k])
        if v.shape != lead + shape:
            raise ValueError(f"{name}[{k!r}] must have shape {lead + shape}, got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}[{k!r}] must be finite")
        out[k] = jnp.asarray(v, dtype)
    return out


def as_key(key, name: str = "key"):
    """A ``jax.random`` key from ``key``: None -> PRNGKey(0), an int seed -> PRNGKey(seed), a
    key (raw uint32[2] or typed) as is. ValueError naming ``name`` otherwise."""
    if key is None:
        return jax.random.PRNGKey(0)
    if isinstance(key, Integral) and not isinstance(key, bool):
        if not 0 <= int(key) < 2**63:
            raise ValueError(f"{name} as an int seed must be in [0, 2**63), got {key}")
        return jax.random.PRNGKey(int(key))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
        return key
    arr = np.asarray(key) if isinstance(key, (jax.Array, np.ndarray)) else None
    if arr is None or arr.shape != (2,) or arr.dtype != np.uint32:
        raise ValueError(f"{name} must be a jax.random key (e.g. jax.random.PRNGKey(0)) or an int seed, got {key!r}")
    return key
