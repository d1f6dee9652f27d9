"""Hypergradients: differentiate the jaxreg trainer with respect to its hyperparameters.

Seed 004's exercise asks whether the learning rate can be tuned by differentiating SGD's final
loss. Here the answer is a tool, in five modules:

* :mod:`~jaxreg.meta.unrolled`: :func:`make_val_loss`, the hold-out loss after K updates as a
  pure, hashable function of the log-hyperparameters (:class:`UnrolledLoss`) plus its data
  (:class:`ValLoss`); any optimizer, schedule and ``Hyper.extra`` value of the trainer.
* :mod:`~jaxreg.meta.hypergrad`: :func:`hypergrad`, :func:`grid_hypergrad`,
  :func:`grid_val_loss` — forward mode (vmapped JVPs), reverse mode (``jax.grad``, √K
  checkpointing) and central differences, as jitted programs.
* :mod:`~jaxreg.meta.outer`: :func:`meta_optimize`, guarded gradient descent on the
  log-hyperparameters from several starts at once.
* :mod:`~jaxreg.meta.online`: SGD-HD, SGDN-HD and Adam-HD (:func:`sgd_hd`, :func:`sgdn_hd`,
  :func:`adam_hd`, Baydin et al. 2018) and :func:`hd_family` (the method traced) as optax
  transformations for the trainer; v0.1's :func:`hypergradient_sgd` and :func:`sgd_hd_runs`.
* :mod:`~jaxreg.meta.implicit`: :func:`implicit_l2_hypergrad`, d L_val / d log λ at an optimum;
  :mod:`~jaxreg.meta.implicit_path`: :func:`l2_path`, converged L2 paths (one λ or one per
  feature group) that ``jax.grad`` differentiates by the implicit function theorem, every λ
  at once; :mod:`~jaxreg.meta.implicit_study`: that checked against unrolled runs, and λ
  meta-learned against a grid.
* :mod:`~jaxreg.meta.schedules`: learnable schedules (:class:`Piecewise` rates in
  ``Hyper.extra``); :mod:`~jaxreg.meta.learned`: a learned schedule against grids and SGD-HD;
  :mod:`~jaxreg.meta.baydin`: Baydin et al. 2018's logistic regression, six methods at once.
* :mod:`~jaxreg.meta.compare`: grid search against meta-optimisation, horizon bias;
  :mod:`~jaxreg.meta.records`: their JSON records;
  :mod:`~jaxreg.meta.report`: the written report of those comparisons.

Timing and memory measurement live in :mod:`jaxreg.bench` (pass a ``bench.Timer`` as
``runner=``).
"""
from jaxreg.meta import baydin, implicit_path, implicit_study, learned, records, report, schedules  # noqa: F401
from jaxreg.meta.compare import (Comparison, GridSearch, HorizonBias, accepted_losses, best_finite,  # noqa: F401
                                 compare, grad_evals, grid_and_meta, grid_search, horizon_bias, log_grid, log_mesh,
                                 steps_to_within)
from jaxreg.meta.hypergrad import (MODES, HyperGrad, compare_modes, default_fd_step, direct,  # noqa: F401
                                   grid_hypergrad, grid_hypergrad_program, grid_loss_program, grid_val_loss,
                                   hypergrad, hypergrad_program, loss_program, value_and_hypergrad)
from jaxreg.meta.implicit import ImplicitResult, implicit_l2, implicit_l2_hypergrad  # noqa: F401
from jaxreg.meta.implicit_path import l2_path, path_hypergrad  # noqa: F401
from jaxreg.meta.schedules import Piecewise  # noqa: F401
from jaxreg.meta.online import (HD_METHODS, HypergradientSGDState, HypergradientState, OnlineRuns,  # noqa: F401
                                adam_hd, family_direction, hd_family, hypergradient, hypergradient_sgd, sgd_hd,
                                sgd_hd_runs, sgdn_hd, trace_learning_rate)
from jaxreg.meta.outer import MetaResult, MetaTrace, default_retreat, meta_optimize, meta_program  # noqa: F401
from jaxreg.meta.unrolled import (HYPER_FIELDS, UnrolledLoss, ValAux, ValLoss, checkpoint_blocks,  # noqa: F401
                                  horizon_config, make_val_loss)
