"""Figures: arrays in, a :class:`matplotlib.figure.Figure` out (no pyplot global state), saved
atomically as small PNGs by :func:`save_figure` (:func:`save_figures` for several).

* :mod:`jaxreg.plots.paper`: curves, weight images, metric-vs-λ plots, the paper's figures.
* :mod:`jaxreg.plots.training`: training histories as curve panels (per set, up to the stop).
* :mod:`jaxreg.plots.reproduction`: the paper's Figs 1-12 and seed 004's figure, composed from the above.
* :mod:`jaxreg.plots.perf`: the scaling study of the peer benchmark.
* :mod:`jaxreg.plots.meta`: the meta-learning study's figures (landscape, trajectories, horizon bias, joint, online rates).
* :mod:`jaxreg.plots.baydin`: Baydin et al. 2018's six-method figure and the learned-schedule comparison.
* :mod:`jaxreg.plots.cv`: cross-validation: the CV curve (mean ± SE vs λ, best and 1-SE λ marked), an η × λ heatmap.
"""
from jaxreg.plots.paper import (DIVERGING, DPI, SET_COLORS, as_image, curve_panels, curves,  # noqa: F401
                                metric_vs_lambda, save_figure, save_figures, sigmoid_fit,
                                weight_image_grid, weight_images, weights_over_digits)
from jaxreg.plots.training import history_panel, set_series, stop_panel, sweep_panels  # noqa: F401
from jaxreg.plots.meta import (meta_figures, meta_horizon_bias, meta_joint, meta_landscape, meta_online_rates,  # noqa: F401
                               meta_trajectories)
from jaxreg.plots.reproduction import attenuation_figure, logistic_figures, softmax_figures  # noqa: F401
from jaxreg.plots.baydin import baydin_figure, schedule_figure  # noqa: F401,E402
from jaxreg.plots.cv import cv_curve, cv_figures, heatmap  # noqa: F401,E402
from jaxreg.plots.perf import scaling_figure  # noqa: F401,E402
