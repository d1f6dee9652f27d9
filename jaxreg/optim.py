"""Learning-rate schedules and optimisers: optax objects built inside the trainer from traced
hyperparameters.

Because the learning rate is an argument (not a constant baked into a compiled function), the
same compiled trainer serves a whole grid of learning rates under ``vmap`` and can be
differentiated with respect to them (no ``optax.inject_hyperparams`` needed).

* A **schedule** is ``count -> η``. ``TrainConfig.schedule`` names one (``"constant"``,
  ``"inverse_time"``) or is a factory ``(hyper, steps_per_epoch) -> schedule`` reading any traced
  field of :class:`~jaxreg.config.Hyper` (e.g. a vector of per-epoch rates in ``hyper.extra``).
* An **optimizer** is an optax ``GradientTransformation``. ``TrainConfig.optimizer`` names one of
  the aliases (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``) or is a factory
  ``schedule -> GradientTransformation`` such as ``optax.adamw``, ``optax.lion`` or
  :func:`jaxreg.meta.sgd_hd`; further traced hyperparameters of the factory come from
  ``hyper.extra`` as keyword arguments (``factory(schedule, **hyper.extra)``).
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping, Protocol

import jax.numpy as jnp
import optax

__all__ = ["OPTIMIZERS", "SCHEDULES", "inverse_time_decay", "constant", "make_schedule", "schedule_for",
           "make_optimizer", "check_optimizer", "check_schedule", "Schedule", "ScheduleFactory",
           "OptimizerFactory"]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("constant", "inverse_time")


def inverse_time_decay(init_value, decay_time, steps_per_unit: int = 1):
    """η(t) = η0 / (1 + t / T), the annealing of Zhu and Guo's paper (§3.2), as an optax schedule.

    ``t = floor(count / steps_per_unit)`` counts whole units (epochs, in the paper) so the rate
    is constant within an epoch of ``steps_per_unit`` updates. ``init_value`` (η0) and
    ``decay_time`` (T) may be traced values. optax has no inverse-time decay; this is it.
    """

    def schedule(count):
        t = jnp.floor_divide(count, steps_per_unit)
        return init_value / (1.0 + t / decay_time)

    return schedule


def constant(learning_rate):
    """``count -> η`` (an array of the count's shape), η possibly traced."""
    return lambda count: learning_rate * jnp.ones_like(count, dtype=jnp.result_type(learning_rate, float))


def make_schedule(name: str, learning_rate, decay_time=None, steps_per_unit: int = 1):
    """A ``count -> η`` callable: ``"constant"`` or ``"inverse_time"`` (needs ``decay_time``)."""
    if name == "constant":
        return constant(learning_rate)
    if name == "inverse_time":
        return inverse_time_decay(learning_rate, decay_time, steps_per_unit)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")


def schedule_for(schedule, hyper, steps_per_epoch: int):
    """The schedule of ``TrainConfig.schedule`` (a name or a factory) for traced ``hyper``."""
    if callable(schedule):
        return schedule(hyper, steps_per_epoch)
    return make_schedule(schedule, hyper.learning_rate, hyper.decay_time, steps_per_epoch)


def make_optimizer(optimizer, schedule, momentum: float = 0.9,
                   extra: Mapping | None = None) -> optax.GradientTransformation:
    """An optax ``GradientTransformation`` from a name or a factory.

    Names: plain SGD, heavy-ball or Nesterov momentum (``momentum``, or ``extra["momentum"]`` when
    swept as a traced value), Adam. A factory is called as ``optimizer(schedule, **extra)``.
    """
    extra = dict(extra or {})
    if isinstance(optimizer, str):
        beta = extra.get("momentum", momentum)
        if optimizer == "sgd":
            return optax.sgd(schedule)
        if optimizer == "momentum":
            return optax.sgd(schedule, momentum=beta)
        if optimizer == "nesterov":
            return optax.sgd(schedule, momentum=beta, nesterov=True)
        if optimizer == "adam":
            return optax.adam(schedule)
        raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a factory, got {optimizer!r}")
    tx = optimizer(schedule, **extra)
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise ValueError(f"optimizer factory must return an optax GradientTransformation, got {type(tx).__name__}")
    return tx


def check_optimizer(optimizer, extra_names=None) -> None:
    """ValueError naming ``optimizer`` unless it is an alias or a factory accepting
    ``(schedule, **{name: ...})`` for every traced extra hyperparameter in ``extra_names``
    (None: only that it takes a schedule; the extras are known once the hyperparameters are)."""
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a factory schedule -> "
                             f"optax.GradientTransformation, got {optimizer!r}")
        return
    if not callable(optimizer):
        raise ValueError(f"optimizer must be a name in {OPTIMIZERS} or a callable factory, got {optimizer!r}")
    try:
        sig = inspect.signature(optimizer)
        if extra_names is None:
            sig.bind_partial(None)
        else:
            sig.bind(None, **{k: None for k in extra_names})
    except TypeError as e:
        args = ", ".join(["schedule"] + [f"{k}=..." for k in extra_names or ()])
        raise ValueError(f"optimizer factory {getattr(optimizer, '__name__', optimizer)!r} cannot be called as "
                         f"factory({args}) with the traced extras of hyper.extra: {e}") from None
    except ValueError:  # builtins without a signature: accepted, checked when called
        pass


def check_schedule(schedule) -> None:
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES} or a factory (hyper, steps_per_epoch) -> "
                             f"schedule, got {schedule!r}")
    elif not callable(schedule):
        raise ValueError(f"schedule must be a name in {SCHEDULES} or a callable factory, got {schedule!r}")


class Schedule(Protocol):
    """``count -> η``: the learning rate at update ``count`` (an int32 scalar, traced)."""

    def __call__(self, count: Any) -> Any: ...


class ScheduleFactory(Protocol):
    """``(hyper, steps_per_epoch) -> Schedule``: a schedule built from the traced
    :class:`~jaxreg.config.Hyper` of one model (``TrainConfig.schedule``)."""

    def __call__(self, hyper: Any, steps_per_epoch: int) -> Schedule: ...


class OptimizerFactory(Protocol):
    """``(schedule, **extra) -> optax.GradientTransformation`` (``TrainConfig.optimizer``), e.g.
    ``optax.adamw``; ``extra`` are the traced ``Hyper.extra`` values, passed by keyword."""

    def __call__(self, schedule: Schedule, **extra: Any) -> optax.GradientTransformation: ...



