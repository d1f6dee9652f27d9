"""Learning-rate schedules and optimisers, as optax objects built from traced hyperparameters.

Because the learning rate is an argument (not a constant baked into a compiled function), the
same compiled trainer serves a whole grid of learning rates under ``vmap`` and can be
differentiated with respect to them (optax issue 577).
"""
from __future__ import annotations

import jax.numpy as jnp
import optax

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("constant", "inverse_time")


def inverse_time_decay(init_value, decay_time, steps_per_unit: int = 1):
    """η(t) = η0 / (1 + t / T), the paper's annealing (seed 003 §3.2), as an optax schedule.

    ``t = floor(count / steps_per_unit)`` counts whole units (epochs, in the paper) so the rate
    is constant within an epoch of ``steps_per_unit`` updates. ``init_value`` (η0) and
    ``decay_time`` (T) may be traced values. optax has no inverse-time decay; this is it.
    """

    def schedule(count):
        t = jnp.floor_divide(count, steps_per_unit)
        return init_value / (1.0 + t / decay_time)

    return schedule


def make_schedule(name: str, learning_rate, decay_time=None, steps_per_unit: int = 1):
    """A ``count -> η`` callable: ``"constant"`` or ``"inverse_time"`` (needs ``decay_time``)."""
    if name == "constant":
        return lambda count: learning_rate * jnp.ones_like(count, dtype=jnp.result_type(learning_rate, float))
    if name == "inverse_time":
        return inverse_time_decay(learning_rate, decay_time, steps_per_unit)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")


def make_optimizer(name: str, schedule, momentum: float = 0.9) -> optax.GradientTransformation:
    """An optax ``GradientTransformation``: plain SGD, heavy-ball/Nesterov momentum, or Adam."""
    if name == "sgd":
        return optax.sgd(schedule)
    if name == "momentum":
        return optax.sgd(schedule, momentum=momentum)
    if name == "nesterov":
        return optax.sgd(schedule, momentum=momentum, nesterov=True)
    if name == "adam":
        return optax.adam(schedule)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
