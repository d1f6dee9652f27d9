"""Hypergradients: differentiate the jaxreg trainer with respect to its hyperparameters.

Can the learning rate (and λ, and a whole schedule) be tuned by differentiating the hold-out
loss through SGD itself? Here the answer is a tool:

* :func:`make_val_loss` (``unrolled``): the hold-out loss after K updates as a pure, hashable
  function of the log-hyperparameters (:class:`UnrolledLoss`) plus its data (:class:`ValLoss`);
  any optimizer, schedule and ``Hyper.extra`` value of the trainer.
* :func:`hypergrad`, :func:`grid_hypergrad`, :func:`grid_val_loss` (``hypergrad``): forward mode
  (vmapped JVPs), reverse mode (``jax.grad``, √K checkpointing) and central differences, as
  jitted programs; a ``runner=`` argument lets a caller compile ahead and time them.
* :func:`meta_optimize` (``outer``): guarded gradient descent on the log-hyperparameters from
  several starts at once.
* :func:`sgd_hd`, :func:`sgdn_hd`, :func:`adam_hd` (``online``): SGD-HD, SGDN-HD and Adam-HD
  (Baydin et al. 2018) and :func:`hd_family` (the method traced) as optax transformations for
  the trainer (``sgd_hd(..., min_learning_rate=0.0)`` keeps η ≥ 0; the older
  :func:`hypergradient_sgd` warns) and :func:`sgd_hd_runs`.
* :func:`implicit_l2_hypergrad` (``implicit``): d L_val / d log λ at an optimum; :func:`l2_path`
  (``implicit``): converged L2 paths (one λ or one per feature group) that ``jax.grad``
  differentiates by the implicit function theorem, every λ at once.
* :class:`Piecewise` (``schedules``): learnable per-epoch rates in ``Hyper.extra``.

Shapes and formulas are in each function's docstring.
"""
from jaxreg.meta.hypergrad import (MODES, HyperGrad, compare_modes, default_fd_step, direct, grid_hypergrad,
                                   grid_hypergrad_program, grid_loss_program, grid_val_loss, hypergrad,
                                   hypergrad_program, loss_program, value_and_hypergrad)
from jaxreg.meta.implicit import ImplicitResult, implicit_l2, implicit_l2_hypergrad
from jaxreg.meta.implicit import float64, holdout_loss, l2_path, path_hypergrad
from jaxreg.meta.online import (HD_METHODS, HypergradientSGDState, HypergradientState, OnlineRuns, adam_hd,
                                family_direction, hd_family, hypergradient, hypergradient_sgd, sgd_hd, sgd_hd_runs,
                                sgdn_hd, trace_learning_rate)
from jaxreg.meta.outer import MetaResult, MetaTrace, default_retreat, meta_optimize, meta_program
from jaxreg.meta.schedules import Piecewise
from jaxreg.meta.unrolled import (HYPER_FIELDS, UnrolledLoss, ValAux, ValLoss, checkpoint_blocks, horizon_config,
                                  make_val_loss)

__all__ = [
    "MODES", "HyperGrad", "compare_modes", "default_fd_step", "direct", "grid_hypergrad", "grid_hypergrad_program",
    "grid_loss_program", "grid_val_loss", "hypergrad", "hypergrad_program", "loss_program", "value_and_hypergrad",
    "ImplicitResult", "implicit_l2", "implicit_l2_hypergrad", "float64", "holdout_loss", "l2_path",
    "path_hypergrad", "HD_METHODS", "HypergradientSGDState", "HypergradientState", "OnlineRuns", "adam_hd",
    "family_direction", "hd_family", "hypergradient", "hypergradient_sgd", "sgd_hd", "sgd_hd_runs", "sgdn_hd",
    "trace_learning_rate", "MetaResult", "MetaTrace", "default_retreat", "meta_optimize", "meta_program",
    "Piecewise", "HYPER_FIELDS", "UnrolledLoss", "ValAux", "ValLoss", "checkpoint_blocks", "horizon_config",
    "make_val_loss",
]
