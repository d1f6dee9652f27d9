"""Training curves from jaxreg's results, as panels for :func:`jaxreg.plots.curve_panels`.

A :class:`~jaxreg.trainer.History` (one model's, or a stacked one with a leading model axis, as
:mod:`jaxreg.engine` and :mod:`jaxreg.sweeps` return) in, plain mappings and arrays out.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

__all__ = ["SETS", "METRICS", "set_series", "history_panel", "stop_panel", "sweep_panels"]

# (legend label, History field prefix), in the order the curves are drawn
SETS = (("train", "train"), ("hold-out", "holdout"), ("test", "test"))
METRICS = ("loss", "acc")


def set_series(history, metric: str, model: Optional[int] = None, upto: Optional[int] = None) -> dict:
    """``{"train": ..., "hold-out": ..., "test": ...}``: ``metric`` (``"loss"`` or ``"acc"``) of
    each set at each record, of model ``model`` of a stacked history (None: an unstacked one),
    the first ``upto`` records (None: all)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    out = {}
    for label, name in SETS:
        v = np.asarray(getattr(history, f"{name}_{metric}"))
        out[label] = (v if model is None else v[model])[:upto]
    return out


def history_panel(history, metric: str, model: Optional[int] = None, *, upto: Optional[int] = None,
                  x_scale=1, **panel) -> dict:
    """A panel of one model's curves (:func:`set_series`) over its record epochs (times
    ``x_scale``, e.g. updates per epoch), with any further panel keys (``title`` ...)."""
    epochs = np.asarray(history.epoch)
    return dict(series=set_series(history, metric, model, upto),
                x=(epochs if model is None else epochs[model]) * x_scale, **panel)


def stop_panel(result, model: int, metric: str = "acc", **panel) -> dict:
    """A panel of model ``model`` of a stacked :class:`~jaxreg.trainer.TrainResult`: its curves
    up to the record where it stopped, a dotted line at the stop epoch if a rule stopped it
    (none if it ran to the end), and any further panel keys (``title``, ``legend_loc`` ...)."""
    stop = int(np.asarray(result.stop_epoch)[model])
    upto = max(1, int(np.searchsorted(np.asarray(result.history.epoch)[model], stop, side="right")))
    stopped = bool(np.asarray(result.stopped)[model])
    return history_panel(result.history, metric, model, upto=upto, vline=stop if stopped else None, **panel)


def sweep_panels(sweep, metric: str = "acc", title: Optional[Callable[[dict], str]] = None,
                 where: Optional[dict] = None, **panel) -> list:
    """:func:`stop_panel` of each model of a :class:`~jaxreg.sweeps.SweepResult` whose axis values
    match ``where`` (see ``SweepResult.where``; default all), in grid order; ``title`` makes
    each panel's title from the model's ``{axis: value}``."""
    models = np.flatnonzero(sweep.where(**(where or {})))
    return [stop_panel(sweep.flat, i, metric, title=title(sweep.configs[i]) if title else "", **panel)
            for i in models]
