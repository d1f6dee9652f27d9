"""What a training run is made of: traced hyperparameters (:class:`Hyper`), data
(:class:`TrainData`) and the static choices (:class:`TrainConfig`).

``Hyper`` holds arrays (vmapped over a grid, differentiated by :mod:`jaxreg.meta`);
``TrainConfig`` is hashable and static: one compiled program per distinct config. Everything in
``TrainConfig`` is checked when it is built (``ValueError`` naming the field).
"""
from __future__ import annotations

import dataclasses
from numbers import Real
from typing import Any, Callable, Mapping, NamedTuple, Optional, Union

import jax

from jaxreg import optim, remat, stopping, validation
from jaxreg.objective import Batch, Penalty

__all__ = ["METHODS", "EARLY_STOPPING", "Hyper", "TrainData", "TrainConfig", "extra_names", "as_hyper_arrays"]

METHODS = ("full_batch", "minibatch", "sgd")
EARLY_STOPPING = (None,) + stopping.NAMED


class Hyper(NamedTuple):
    """Continuous hyperparameters: traced, so they can be vmapped and differentiated.

    learning_rate: η0; decay_time: T of η(t) = η0/(1 + t/T) (ignored by the constant schedule);
    l2, l1: λ₂ and λ₁ of the penalty (λ₂/2)‖W‖² + λ₁‖W‖₁; extra: further traced values by name,
    passed to an optimizer factory as keyword arguments (e.g. ``{"beta": 1e-3}`` for
    ``sgd_hd``, ``{"momentum": 0.9}`` for the momentum aliases) and readable by a
    schedule factory (e.g. a vector of per-epoch rates).
    """

    learning_rate: Any = 0.1
    decay_time: Any = 1.0
    l2: Any = 0.0
    l1: Any = 0.0
    extra: Mapping[str, Any] = {}

    @property
    def penalty(self) -> Penalty:
        return Penalty(l2=self.l2, l1=self.l1)


class TrainData(NamedTuple):
    """Training set and optional hold-out and test sets, each a :class:`Batch` ``(X, y)``."""

    train: Batch
    holdout: Optional[Batch] = None
    test: Optional[Batch] = None


def _int_field(cfg, name: str, low: int = 1, optional: bool = False):
    value = getattr(cfg, name)
    if optional and value is None:
        return
    if isinstance(value, (bool,)) or not isinstance(value, Real) or not float(value).is_integer():
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = validation.check_scalar(value, name, low=low, integer=True)
    object.__setattr__(cfg, name, value)  # normalised: 8.0 -> 8, so equal configs hash equally


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Discrete (static) training choices; one compiled program per distinct config.

    method: ``"full_batch"`` (one update per epoch), ``"minibatch"`` (``batch_size`` examples per
      update, reshuffled each epoch from the key, remainder dropped as in the paper's code) or
      ``"sgd"`` (one example per update, reshuffled each epoch).
    n_epochs: epochs to run; eval_every: epochs between evaluations (must divide n_epochs).
    optimizer: an alias ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"`` (``momentum`` is the
      momentum of the aliases), or a factory ``schedule -> optax.GradientTransformation`` (e.g.
      ``optax.adamw``); see :mod:`jaxreg.optim`.
    schedule: ``"constant"``, ``"inverse_time"`` (η0/(1 + epoch/T), per epoch as in the paper) or a
      factory ``(hyper, steps_per_epoch) -> (count -> η)``.
    early_stopping: ``None``, a :class:`~jaxreg.stopping.StopRule`, or a name:
      ``"first_accuracy_drop"`` (stop when hold-out accuracy drops, return the weights from two
      evaluations earlier; Zhu and Guo §6.1, from the 4th evaluation on); ``"accuracy_patience"``
      (stop after ``patience`` consecutive evaluations below the last non-decreasing hold-out
      accuracy, return the best-hold-out-accuracy weights; Zhu and Guo §3.2); the older names
      ``"logistic_paper"`` and ``"softmax_paper"`` select the same two rules; ``"patience"`` (stop
      when the hold-out loss has not improved by ``min_delta`` for ``patience`` evaluations;
      return the best-hold-out-loss weights).
    stop_tol: the lecture notes' SGD stopping rule (:func:`jaxreg.stopping.param_change`): every
      ``check_every`` updates, stop when ‖θ − θ_{check_every updates ago}‖ < stop_tol.
    max_steps: freeze after this many updates (the horizon K of :mod:`jaxreg.meta`).
    record_history: evaluate metrics at each record (False skips the extra forward passes).
    grad: ``"closed_form"`` (the derived gradients of grads.py) or ``"autodiff"`` (jax.grad).
    diverge_ratio: R of the exploding-loss rule (:mod:`jaxreg.trainer`): with ``record_history``,
      a model whose mean training loss at an evaluation is not finite or exceeds
      ``R · max(L(θ₀), 1e-6)`` is flagged ``diverged`` and frozen; None turns the rule off (a
      non-finite parameter is always flagged).
    remat: checkpointing for reverse mode (:mod:`jaxreg.remat`; values unchanged): ``False``;
      ``True`` or ``"block"``: each record's block of epochs (memory O(records + eval_every ·
      steps per epoch)); ``"sqrt"``: segments of ``remat_segment`` (default ≈√K) updates, at step
      granularity (memory O(√K), one extra forward pass); ``"log"``: recursive checkpointing of
      every scan with branching factor ``remat_segment`` (default 2; memory O(log K), ≈log K
      extra forward passes).
    remat_segment: updates per checkpointed segment (``"sqrt"``) or the branching factor
      (``"log"``); None: the defaults above.
    step_trace: optional ``(params, opt_state) -> pytree`` recorded after every update (e.g. the
      learning rate an online hypergradient optimizer has adapted); ``TrainResult.trace`` stacks
      it over the updates.
    epoch_rows: with per-example weights (``Batch.weight``), mini-batch and SGD epochs draw
      their batches from the positive-weight rows only (a fold's own training rows) and run
      ``epoch_rows // batch_size`` updates; None: ``n // batch_size`` over all n rows. Set from
      the data by :func:`jaxreg.trainer.train`, :func:`jaxreg.sweeps.sweep` (the smallest training
      fold) and :mod:`jaxreg.cv`; unweighted training ignores it.
    """

    method: str = "full_batch"
    n_epochs: int = 100
    batch_size: Optional[int] = None
    optimizer: Union[str, optim.OptimizerFactory] = "sgd"
    momentum: float = 0.9
    schedule: Union[str, optim.ScheduleFactory] = "constant"
    eval_every: int = 1
    early_stopping: Union[None, str, stopping.StopRule] = None
    patience: int = 5
    min_delta: float = 0.0
    stop_tol: Optional[float] = None
    check_every: int = 20
    max_steps: Optional[int] = None
    record_history: bool = True
    grad: str = "closed_form"
    remat: Union[bool, str] = False
    remat_segment: Optional[int] = None
    step_trace: Optional[Callable] = None
    diverge_ratio: Optional[float] = 1e6
    epoch_rows: Optional[int] = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.grad not in ("closed_form", "autodiff"):
            raise ValueError(f"grad must be one of ('closed_form', 'autodiff'), got {self.grad!r}")
        optim.check_optimizer(self.optimizer)
        optim.check_schedule(self.schedule)
        es = self.early_stopping
        if not (es is None or isinstance(es, stopping.StopRule) or (isinstance(es, str) and es in stopping.NAMED)):
            raise ValueError(f"early_stopping must be None, one of {stopping.NAMED} or a StopRule, got {es!r}")
        if isinstance(es, stopping.StopRule):
            if es.at not in stopping.AT:
                raise ValueError(f"early_stopping.at must be one of {stopping.AT}, got {es.at!r}")
            if es.at == "step" and self.stop_tol is not None:
                raise ValueError("give one per-update rule: early_stopping (at='step') or stop_tol, not both")
        for name in ("n_epochs", "eval_every", "patience", "check_every"):
            _int_field(self, name)
        _int_field(self, "max_steps", optional=True)
        _int_field(self, "epoch_rows", optional=True)
        if self.n_epochs % self.eval_every:
            raise ValueError(f"eval_every ({self.eval_every}) must divide n_epochs ({self.n_epochs})")
        if self.method == "minibatch" and self.batch_size is None:
            raise ValueError("batch_size is required for method='minibatch'")
        _int_field(self, "batch_size", optional=True)
        m = validation.check_scalar(self.momentum, "momentum", low=0.0)
        if not m < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        object.__setattr__(self, "momentum", m)
        object.__setattr__(self, "min_delta", validation.check_scalar(self.min_delta, "min_delta", low=0))
        if self.stop_tol is not None:
            object.__setattr__(self, "stop_tol", validation.check_scalar(self.stop_tol, "stop_tol", low=0,
                                                                         low_inclusive=False))
        if self.diverge_ratio is not None:
            object.__setattr__(self, "diverge_ratio", validation.check_scalar(
                self.diverge_ratio, "diverge_ratio", low=1.0, low_inclusive=False))
        if not isinstance(self.record_history, bool):
            raise ValueError(f"record_history must be True or False, got {self.record_history!r}")
        remat.check_mode(self.remat)
        _int_field(self, "remat_segment", optional=True)
        if self.step_trace is not None and not callable(self.step_trace):
            raise ValueError(f"step_trace must be None or a callable (params, opt_state) -> pytree, "
                             f"got {self.step_trace!r}")

    @property
    def n_records(self) -> int:
        return self.n_epochs // self.eval_every

    def steps_per_epoch(self, n_train: int) -> int:
        """Updates per epoch over ``n_train`` rows (full batch 1, SGD n, mini-batch n // size)."""
        if self.method == "full_batch":
            return 1
        if self.method == "sgd":
            return n_train
        return n_train // self.batch_size

    @property
    def eval_rule(self) -> Optional[stopping.StopRule]:
        """The per-evaluation stopping rule (from ``early_stopping``), or None."""
        es = self.early_stopping
        if isinstance(es, str):
            return stopping.named_rule(es, self.patience, self.min_delta)
        return es if es is not None and es.at == "eval" else None

    @property
    def step_rule(self) -> Optional[stopping.StopRule]:
        """The per-update stopping rule (``stop_tol``, or an ``at="step"`` early_stopping), or None."""
        if self.stop_tol is not None:
            return stopping.param_change(self.stop_tol, self.check_every)
        es = self.early_stopping
        return es if isinstance(es, stopping.StopRule) and es.at == "step" else None

    @property
    def needs_holdout(self) -> bool:
        """Whether training reads the hold-out set (a rule that evaluates on it)."""
        return any(r is not None and r.needs_holdout for r in (self.eval_rule, self.step_rule))


def extra_names(hyper: Hyper) -> tuple:
    return tuple(sorted(hyper.extra)) if hyper.extra else ()


def as_hyper_arrays(hyper: Hyper, dtype) -> Hyper:
    """Every leaf of ``hyper`` as a ``dtype`` array (the precision of the model)."""
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), hyper._replace(extra=dict(hyper.extra)))

