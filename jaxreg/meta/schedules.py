"""Learnable learning-rate schedules: schedule factories (``TrainConfig.schedule``) that read a
vector of rates from ``Hyper.extra``, so the rates are traced values that :func:`make_val_loss`
differentiates as the vector hyperparameter ``log_<name>``.

    cfg = TrainConfig(method="minibatch", batch_size=128, schedule=Piecewise("rates"))
    hyper = Hyper(extra={"rates": np.full(10, 0.1)})        # one rate per epoch
    vl = make_val_loss(obj, cfg, data, horizon=K, hyper_names=("log_rates",), base=hyper)

A factory is a frozen dataclass (hashable by value), so equal schedules share one compiled
trainer.
"""
from __future__ import annotations

import dataclasses
from typing import Union

import jax.numpy as jnp

__all__ = ["Piecewise"]


@dataclasses.dataclass(frozen=True)
class Piecewise:
    """η(t) = rates[min(⌊t / L⌋, n − 1)] for update count t, rates = ``hyper.extra[name]`` (n,),
    L = ``every`` updates (an int) or the updates of one epoch (``"epoch"``): a piecewise-constant
    schedule, one rate per epoch (or per L updates), the last rate held after the n-th piece."""

    name: str = "rates"
    every: Union[int, str] = "epoch"

    def __post_init__(self):
        if not (self.every == "epoch" or (isinstance(self.every, int) and not isinstance(self.every, bool)
                                          and self.every >= 1)):
            raise ValueError(f"every must be 'epoch' or an int >= 1, got {self.every!r}")

    def __call__(self, hyper, steps_per_epoch: int):
        if self.name not in hyper.extra:
            raise ValueError(f"the schedule reads hyper.extra[{self.name!r}]; hyper.extra has {sorted(hyper.extra)}")
        rates = jnp.atleast_1d(hyper.extra[self.name])
        unit = steps_per_epoch if self.every == "epoch" else self.every

        def schedule(count):
            return rates[jnp.clip(jnp.floor_divide(count, unit), 0, rates.shape[0] - 1)]

        return schedule

    def pieces(self, n_updates: int, steps_per_epoch: int) -> int:
        """The number of rates a run of ``n_updates`` updates uses."""
        unit = steps_per_epoch if self.every == "epoch" else self.every
        return -(-int(n_updates) // unit)
