"""Figures: arrays in, a :class:`matplotlib.figure.Figure` out (no pyplot global state), saved
atomically as small PNGs by :func:`save_figure` (:func:`save_figures` for several).

* :mod:`jaxreg.plots.paper`: curves, weight images, metric-vs-λ plots, the paper's figures.
* :mod:`jaxreg.plots.training`: training histories as curve panels (per set, up to the stop).
* :mod:`jaxreg.plots.cv`: cross-validation: the CV curve (mean ± SE vs λ, best and 1-SE λ marked), an η × λ heatmap.

The studies' own figures are composed from these in their folders under ``experiments/``.
"""
from jaxreg.plots.paper import (DIVERGING, DPI, SET_COLORS, as_image, curve_panels, curves,  # noqa: F401
                                metric_vs_lambda, save_figure, save_figures, sigmoid_fit,
                                weight_image_grid, weight_images, weights_over_digits)
from jaxreg.plots.training import history_panel, set_series, stop_panel, sweep_panels  # noqa: F401
from jaxreg.plots.cv import cv_curve, cv_figures, heatmap  # noqa: F401

__all__ = ["DIVERGING", "DPI", "SET_COLORS", "as_image", "curve_panels", "curves", "metric_vs_lambda", "save_figure",
           "save_figures", "sigmoid_fit", "weight_image_grid", "weight_images", "weights_over_digits",
           "history_panel", "set_series", "stop_panel", "sweep_panels", "cv_curve", "cv_figures", "heatmap"]
