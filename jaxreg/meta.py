"""Hypergradients: the hold-out loss after K steps of SGD, differentiated with respect to log η
(and log T of the annealing, log λ of the penalty), and gradient descent on those hyperparameters.

Seed 004's exercise asks whether the learning rate ε can be tuned by differentiating SGD's final
loss. Here the answer is a tool:

* :func:`make_val_loss` builds ``val_loss(log_hyper) -> (loss, ValAux)``: the mean hold-out data
  loss (no penalty) after exactly K updates of the :func:`jaxreg.train.make_trainer` trainer, from
  a fixed initialisation and a fixed mini-batch order (the key).
* :func:`hypergrad` differentiates it three ways: forward mode (one ``jax.jvp`` per
  hyperparameter, vmapped; memory independent of K), reverse mode (``jax.grad`` through the
  scans; with ``checkpoint=True`` each block of ≈√(epochs) epochs is rematerialised, so memory
  grows like √K instead of K) and central finite differences.
* :func:`meta_optimize` runs an optax optimiser on the log-hyperparameters from several starting
  points at once (``vmap``), guarded against the chaotic regime (see its docstring).
* :func:`hypergradient_sgd` is the online alternative (Baydin et al. 2018, SGD-HD) as an optax
  ``GradientTransformation``; :func:`run_optax` trains with any optax transformation using the
  trainer's batch order.
* Implicit differentiation for λ at the optimum lives in :mod:`jaxreg.implicit`.

The data (``params0``, ``data``, ``key``) are passed to the jitted programs as arguments, never
closed over, so the compiled code does not embed the training set as a constant.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import validation
from jaxreg.objective import Batch, Objective, Penalty
from jaxreg.train import Hyper, TrainConfig, TrainData, epoch_permutation, make_trainer

#: log-hyperparameter name -> field of :class:`jaxreg.train.Hyper`.
HYPER_FIELDS = {"log_lr": "learning_rate", "log_decay_time": "decay_time", "log_l2": "l2", "log_l1": "l1"}
MODES = ("forward", "reverse", "fd")


# --------------------------------------------------------------------------------- the function
class ValAux(NamedTuple):
    """diverged: the inner run produced a non-finite parameter (it was frozen before it);
    n_updates: updates actually applied (K unless diverged)."""

    diverged: jax.Array
    n_updates: jax.Array


def checkpoint_blocks(n_epochs: int) -> tuple[int, int]:
    """``(eval_every, n_epochs')`` for the √K checkpointing scheme: blocks of ≈√n_epochs epochs.

    A divisor of ``n_epochs`` within a factor 2 of √n_epochs is used when there is one;
    otherwise ``n_epochs`` is padded up to a multiple of ⌈√n_epochs⌉ (the padding epochs are
    frozen by ``max_steps``: at most √n_epochs wasted epochs).
    """
    root = math.sqrt(n_epochs)
    divisors = [b for b in range(1, n_epochs + 1) if n_epochs % b == 0 and root / 2 <= b <= 2 * root]
    if divisors:
        return min(divisors, key=lambda b: abs(b - root)), n_epochs
    block = math.ceil(root)
    return block, -(-n_epochs // block) * block


def horizon_config(config: TrainConfig, n_train: int, horizon: int, *, checkpoint=None) -> TrainConfig:
    """``config`` set up for exactly ``horizon`` updates: max_steps=K, n_epochs=⌈K/steps per
    epoch⌉, no history, no early stopping, no stopping rule; ``checkpoint`` (default
    ``config.remat``) picks remat with √-sized blocks, else a single block."""
    K = validation.check_scalar(horizon, "horizon", low=1, integer=True)
    spe = config.steps_per_epoch(n_train)
    if spe < 1:
        raise ValueError(f"batch_size ({config.batch_size}) must be <= the number of training examples ({n_train})")
    n_epochs = -(-K // spe)
    remat = config.remat if checkpoint is None else bool(checkpoint)
    eval_every, n_epochs = checkpoint_blocks(n_epochs) if remat else (n_epochs, n_epochs)
    return dataclasses.replace(config, n_epochs=n_epochs, eval_every=eval_every, max_steps=K,
                               record_history=False, early_stopping=None, stop_tol=None, remat=remat)


class ValLoss:
    """``val_loss(log_hyper) -> (loss, ValAux)``, with its pieces exposed for the jitted drivers.

    ``fn(log_hyper, params0, data, key)`` is the pure function and ``args = (params0, data,
    key)`` its data; calling the object closes over them (fine for ``jax.grad``/``jax.jvp`` on
    small data; the drivers here pass ``args`` as jit arguments instead).
    """

    def __init__(self, objective, config, data, params0, key, horizon, hyper_names, base, checkpoint):
        if not isinstance(data, TrainData):
            raise ValueError(f"data must be a jaxreg.train.TrainData, got {type(data).__name__}")
        if data.holdout is None:
            raise ValueError("data.holdout is required: the hypergradient differentiates the hold-out loss")
        hyper_names = (hyper_names,) if isinstance(hyper_names, str) else tuple(hyper_names)
        bad = [h for h in hyper_names if h not in HYPER_FIELDS]
        if not hyper_names or bad or len(set(hyper_names)) != len(hyper_names):
            raise ValueError(f"hyper_names must be distinct names from {tuple(HYPER_FIELDS)}, got {hyper_names!r}")
        self.objective, self.data, self.params0, self.key = objective, data, params0, key
        self.horizon, self.hyper_names, self.base, self.checkpoint = horizon, hyper_names, base, checkpoint
        self.user_config = config
        self.config = horizon_config(config, data.train.X.shape[0], horizon, checkpoint=checkpoint)
        self.dtype = jax.tree_util.tree_leaves(params0)[0].dtype
        trainer = make_trainer(objective, self.config)
        fields = [HYPER_FIELDS[h] for h in hyper_names]
        base_vals = {f: getattr(base, f) for f in Hyper._fields if f != "extra"}
        dtype = self.dtype

        def fn(log_hyper, params0, data, key):
            log_hyper = jnp.asarray(log_hyper, dtype)
            vals = {f: jnp.asarray(v, dtype) for f, v in base_vals.items()}
            for i, f in enumerate(fields):
                vals[f] = jnp.exp(log_hyper[i])
            res = trainer(Hyper(**vals), params0, data, key)
            loss = jnp.mean(objective.per_example_loss(res.params, data.holdout))
            return loss, ValAux(res.diverged, res.n_updates)

        self.fn = fn
        self.args = (params0, data, key)
        self._jit_cache = {}
        self.last_timing = {}

    @property
    def n_hyper(self) -> int:
        return len(self.hyper_names)

    def __call__(self, log_hyper):
        return self.fn(log_hyper, *self.args)

    def replace(self, **changes) -> "ValLoss":
        """A copy with some construction arguments changed (e.g. ``checkpoint=True``, ``horizon``)."""
        kw = dict(objective=self.objective, config=self.user_config, data=self.data, params0=self.params0,
                  key=self.key, horizon=self.horizon, hyper_names=self.hyper_names, base=self.base,
                  checkpoint=self.checkpoint)
        kw.update(changes)
        return ValLoss(**kw)

    def call(self, name, build: Callable, *args):
        """Run ``build(fn)(*args, self.args)`` compiled ahead of time (cached per ``name`` and
        argument shapes), blocking; records ``last_timing`` = {"compile_s" (0 when cached),
        "wall_s", "cpu_s"} of this call so drivers can report compute without compile time."""
        leaves, treedef = jax.tree_util.tree_flatten((args, self.args))
        sig = (name, treedef, tuple((np.shape(x), jnp.result_type(x)) for x in leaves))
        t0 = time.perf_counter()
        if sig not in self._jit_cache:
            self._jit_cache[sig] = jax.jit(build(self.fn)).lower(*args, self.args).compile()
        compile_s = time.perf_counter() - t0
        w, c = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(self._jit_cache[sig](*args, self.args))
        self.last_timing = {"compile_s": compile_s, "wall_s": time.perf_counter() - w,
                            "cpu_s": time.process_time() - c}
        return out

    def as_array(self, log_hyper, name: str = "log_hyper") -> jax.Array:
        """Validated ``(..., n_hyper)`` array of finite log-hyperparameters in this dtype."""
        arr = np.asarray(log_hyper, dtype=np.float64)
        if arr.ndim == 0:
            arr = arr[None]
        if arr.shape[-1] != self.n_hyper:
            raise ValueError(f"{name} must have last dimension {self.n_hyper} ({self.hyper_names}), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {arr.tolist()}")
        return jnp.asarray(arr, self.dtype)


def make_val_loss(objective: Objective, config: TrainConfig, data: TrainData, params0, key, *, horizon: int,
                  hyper_names: Sequence[str] = ("log_lr",), base: Hyper = Hyper(),
                  checkpoint: Optional[bool] = None) -> ValLoss:
    """The hold-out loss after ``horizon`` (K) updates of the jaxreg trainer, as a function of
    the log-hyperparameters ``hyper_names`` (a vector of that length; the other hyperparameters
    are taken from ``base``). Returns a :class:`ValLoss`: ``val_loss(v) -> (loss, ValAux)``.

    ``config`` gives the method (``"sgd"``, ``"minibatch"``, ``"full_batch"``), batch size,
    optimiser and schedule; its epochs, evaluation and stopping settings are replaced (see
    :func:`horizon_config`). ``checkpoint=True`` rematerialises blocks of ≈√(epochs) epochs in
    reverse mode. The dtype of ``params0`` sets the computation's precision.

    Raises ValueError naming ``horizon`` (K < 1), ``data.holdout`` (missing) or ``hyper_names``.
    """
    return ValLoss(objective, config, data, params0, key, horizon, hyper_names, base, checkpoint)


# --------------------------------------------------------------------------------- derivatives
class HyperGrad(NamedTuple):
    loss: jax.Array
    grad: jax.Array
    diverged: jax.Array


def default_fd_step(dtype) -> float:
    """Central-difference step in log space: 1e-2 in float32, 1e-5 in float64."""
    return 1e-2 if jnp.dtype(dtype) == jnp.float32 else 1e-5


def _value_and_hypergrad(f, v, mode: str, eps: float) -> HyperGrad:
    """f: log_hyper -> (loss, ValAux). Pure; jit/vmap it."""
    if mode == "reverse":
        (loss, aux), g = jax.value_and_grad(f, has_aux=True)(v)
        return HyperGrad(loss, g, aux.diverged)
    if mode == "forward":
        basis = jnp.eye(v.shape[0], dtype=v.dtype)
        loss, dl, aux = jax.vmap(lambda t: jax.jvp(f, (v,), (t,), has_aux=True))(basis)
        return HyperGrad(loss[0], dl, aux.diverged[0])
    if mode == "fd":
        d = v.shape[0]
        steps = eps * jnp.eye(d, dtype=v.dtype)
        points = jnp.concatenate([v[None], v + steps, v - steps])  # one vmapped trainer, 2d + 1 runs
        losses, aux = jax.vmap(f)(points)
        grad = (losses[1:d + 1] - losses[d + 1:]) / (2 * eps)
        return HyperGrad(losses[0], grad, jnp.any(aux.diverged))
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def hypergrad(val_loss: ValLoss, log_hyper, mode: str = "forward", *, eps: Optional[float] = None) -> HyperGrad:
    """``(loss, d loss / d log_hyper, diverged)`` at one point, jitted.

    mode: ``"forward"`` (one JVP per hyperparameter, vmapped), ``"reverse"`` (``jax.grad``;
    build the val_loss with ``checkpoint=True`` for √K memory) or ``"fd"`` (central differences
    with step ``eps`` in log space, default :func:`default_fd_step`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    v = val_loss.as_array(log_hyper, "log_hyper")
    eps = default_fd_step(val_loss.dtype) if eps is None else float(eps)
    return val_loss.call(("hypergrad", mode, eps), lambda fn: lambda v, args: _value_and_hypergrad(
        lambda u: fn(u, *args), v, mode, eps), v)


def grid_hypergrad(val_loss: ValLoss, log_hypers, mode: str = "forward", *, chunk_size: Optional[int] = None,
                   eps: Optional[float] = None) -> HyperGrad:
    """:func:`hypergrad` at every row of ``log_hypers`` (N, n_hyper), as one vmapped program
    (``lax.map`` over chunks of ``chunk_size`` rows when given)."""
    V = val_loss.as_array(log_hypers, "log_hypers").reshape(-1, val_loss.n_hyper)
    eps = default_fd_step(val_loss.dtype) if eps is None else float(eps)

    def build(fn):
        def run(V, args):
            one = lambda v: _value_and_hypergrad(lambda u: fn(u, *args), v, mode, eps)  # noqa: E731
            return jax.lax.map(one, V, batch_size=chunk_size or V.shape[0])
        return run

    return val_loss.call(("grid_hypergrad", mode, chunk_size, eps), build, V)


def grid_val_loss(val_loss: ValLoss, log_hypers, *, chunk_size: Optional[int] = None):
    """``(loss (N,), ValAux)`` at every row of ``log_hypers`` (N, n_hyper): one vmapped program,
    ``lax.map`` over chunks of ``chunk_size`` rows when given (bounded memory for big grids)."""
    V = val_loss.as_array(log_hypers, "log_hypers").reshape(-1, val_loss.n_hyper)

    def build(fn):
        def run(V, args):
            return jax.lax.map(lambda v: fn(v, *args), V, batch_size=chunk_size or V.shape[0])
        return run

    return val_loss.call(("grid", chunk_size), build, V)


# --------------------------------------------------------------------------------- meta-optimisation
class MetaTrace(NamedTuple):
    """Per outer step (leading axes: start, step): the point evaluated, its hold-out loss and
    hypergradient, and flags. ``diverged``: the inner run diverged; ``nonfinite``: loss or
    hypergradient was NaN/inf; ``exploded``: the hypergradient was huge (see
    :func:`meta_optimize`); ``bad``: any of these (the point was rejected and the outer loop
    stepped back); ``clipped``: the hypergradient was clipped to clip_norm; ``step_scale``: the
    outer step multiplier in force."""

    log_hyper: jax.Array
    loss: jax.Array
    grad: jax.Array
    grad_norm: jax.Array
    diverged: jax.Array
    nonfinite: jax.Array
    exploded: jax.Array
    bad: jax.Array
    clipped: jax.Array
    step_scale: jax.Array


class MetaResult(NamedTuple):
    """log_hyper / loss: the best accepted point per start (loss +inf and log_hyper NaN where
    ``found`` is False: no accepted point); trace: :class:`MetaTrace`; hyper_names; n_hypergrads:
    hypergradient evaluations per start; mode: how they were computed; timing: compile_s, wall_s,
    cpu_s of the call (see :meth:`ValLoss.call`)."""

    log_hyper: np.ndarray
    loss: np.ndarray
    found: np.ndarray
    trace: MetaTrace
    hyper_names: tuple
    n_hypergrads: int
    mode: str
    timing: dict


class _MetaState(NamedTuple):
    h: jax.Array
    opt_state: optax.OptState
    h_good: jax.Array
    have_good: jax.Array
    scale: jax.Array
    retreat_mult: jax.Array
    best_h: jax.Array
    best_loss: jax.Array


def default_retreat(hyper_names) -> np.ndarray:
    """Direction to move a starting point whose first evaluation is bad: smaller η and T (a
    faster-decaying, smaller step is more stable); λ unchanged."""
    return np.array([-1.0 if h in ("log_lr", "log_decay_time") else 0.0 for h in hyper_names])


def _meta_run(f, h0, tx, n_steps, mode, eps, clip_norm, max_grad_norm, explode_ratio, retreat):
    dtype = h0.dtype

    def step(s: _MetaState, _):
        loss, g, diverged = _value_and_hypergrad(f, s.h, mode, eps)
        finite_g = jnp.all(jnp.isfinite(g))
        nonfinite = ~jnp.isfinite(loss) | ~finite_g
        gnorm = jnp.where(finite_g, jnp.sqrt(jnp.sum(jnp.where(jnp.isfinite(g), g, 0.0) ** 2)), jnp.inf)
        exploded = ~nonfinite & ((gnorm > max_grad_norm) | (gnorm > explode_ratio * jnp.maximum(jnp.abs(loss), 1e-6)))
        bad = diverged | nonfinite | exploded
        clipped = ~bad & (gnorm > clip_norm)
        g_used = jnp.where(bad, 0.0, g * jnp.minimum(1.0, clip_norm / jnp.where(gnorm > 0, gnorm, 1.0)))
        updates, new_opt = tx.update(g_used.astype(dtype), s.opt_state, s.h)
        h_fwd = s.h + s.scale * updates
        h_back = jnp.where(s.have_good, s.h_good + 0.5 * (s.h - s.h_good), s.h + s.retreat_mult * retreat)
        better = ~bad & (loss < s.best_loss)
        new = _MetaState(
            h=jnp.where(bad, h_back, h_fwd).astype(dtype),
            opt_state=jax.tree_util.tree_map(lambda a, b: jnp.where(bad, a, b), s.opt_state, new_opt),
            h_good=jnp.where(bad, s.h_good, s.h), have_good=s.have_good | ~bad,
            scale=jnp.where(bad & s.have_good, 0.5 * s.scale, s.scale).astype(dtype),
            retreat_mult=jnp.where(bad & ~s.have_good, 2.0 * s.retreat_mult, s.retreat_mult).astype(dtype),
            best_h=jnp.where(better, s.h, s.best_h), best_loss=jnp.where(better, loss, s.best_loss))
        rec = MetaTrace(log_hyper=s.h, loss=loss, grad=g, grad_norm=gnorm, diverged=diverged, nonfinite=nonfinite,
                        exploded=exploded, bad=bad, clipped=clipped, step_scale=s.scale)
        return new, rec

    s0 = _MetaState(h=h0, opt_state=tx.init(h0), h_good=h0, have_good=jnp.asarray(False),
                    scale=jnp.asarray(1.0, dtype), retreat_mult=jnp.asarray(1.0, dtype), best_h=jnp.full_like(h0, jnp.nan),
                    best_loss=jnp.asarray(jnp.inf, dtype))
    s, trace = jax.lax.scan(step, s0, None, length=n_steps)
    return s.best_h, s.best_loss, s.have_good, trace


def meta_optimize(val_loss: ValLoss, log_hyper0, *, n_steps: int = 20,
                  optimizer: Optional[optax.GradientTransformation] = None, mode: str = "forward",
                  eps: Optional[float] = None, clip_norm: float = 1.0, max_grad_norm: float = 1e4,
                  explode_ratio: float = 100.0, retreat=None) -> MetaResult:
    """Gradient descent on the log-hyperparameters from each row of ``log_hyper0`` (S, n_hyper),
    all starts in parallel (``vmap``), ``n_steps`` hypergradient evaluations each, one jitted
    program. ``optimizer`` defaults to ``optax.adam(0.2)`` (steps of ≈0.2 in log space).

    Guarding the chaotic regime: a step is *bad* when the inner run diverged, the loss or
    hypergradient is not finite, or the hypergradient has *exploded*: ‖∇‖ > ``max_grad_norm`` or
    ‖∇‖ > ``explode_ratio`` · max(|loss|, 1e-6) (a relative change of the loss of 100 per unit of
    log-hyperparameter is chaos, not signal: past the edge of stability the unrolled derivative
    grows exponentially with K while the loss stays finite). A bad point is rejected: the next point is halfway back
    to the last accepted one, the outer step multiplier is halved and the optimiser state is kept;
    with no accepted point yet, the start moves by ``retreat`` (default
    :func:`default_retreat`), twice as far after each further failure. Accepted hypergradients are clipped to norm ``clip_norm``. Every
    step's flags are in the trace; the result is the best accepted point.

    Raises ValueError naming ``log_hyper0`` (non-finite / wrong shape), ``n_steps`` or ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n_steps = validation.check_scalar(n_steps, "n_steps", low=1, integer=True)
    clip_norm = validation.check_scalar(clip_norm, "clip_norm", low=0, low_inclusive=False)
    max_grad_norm = validation.check_scalar(max_grad_norm, "max_grad_norm", low=0, low_inclusive=False, allow_inf=True)
    explode_ratio = validation.check_scalar(explode_ratio, "explode_ratio", low=0, low_inclusive=False, allow_inf=True)
    H0 = val_loss.as_array(log_hyper0, "log_hyper0").reshape(-1, val_loss.n_hyper)
    tx = optax.adam(0.2) if optimizer is None else optimizer
    retreat = default_retreat(val_loss.hyper_names) if retreat is None else np.asarray(retreat, np.float64)
    retreat = val_loss.as_array(retreat, "retreat")
    eps = default_fd_step(val_loss.dtype) if eps is None else float(eps)

    def build(fn):
        def run(H0, retreat, args):
            f = lambda u: fn(u, *args)  # noqa: E731
            return jax.vmap(lambda h0: _meta_run(f, h0, tx, n_steps, mode, eps, clip_norm, max_grad_norm,
                                                 explode_ratio, retreat))(H0)
        return run

    key = ("meta", id(tx), n_steps, mode, eps, clip_norm, max_grad_norm, explode_ratio)
    best_h, best_loss, found, trace = val_loss.call(key, build, H0, retreat)
    val_loss._jit_cache.setdefault(("tx", id(tx)), tx)  # keep tx alive while its id is a cache key
    return MetaResult(np.asarray(best_h), np.asarray(best_loss), np.asarray(found),
                      jax.tree_util.tree_map(np.asarray, trace), val_loss.hyper_names, n_steps, mode,
                      dict(val_loss.last_timing))


# --------------------------------------------------------------------------------- online: SGD-HD
class HypergradientSGDState(NamedTuple):
    """learning_rate: the current η_t; prev_grad: ∇f(θ_{t−1}) (zeros before the first step);
    hypergrad: the last ∇f(θ_{t−1})·∇f(θ_{t−2}) (for logging)."""

    learning_rate: jax.Array
    prev_grad: optax.Updates
    hypergrad: jax.Array


def hypergradient_sgd(learning_rate: float, beta: float, *, min_learning_rate: float = 0.0
                      ) -> optax.GradientTransformation:
    """SGD with online hypergradient descent on η (SGD-HD of Baydin et al. 2018):

        η_t = η_{t−1} + β ∇f(θ_{t−1}) · ∇f(θ_{t−2}),     θ_t = θ_{t−1} − η_t ∇f(θ_{t−1}).

    A drop-in optax ``GradientTransformation`` (``updates`` in: gradients; out: −η_t g). η is
    kept ≥ ``min_learning_rate`` (0 by default: a negative rate would ascend) and is left
    unchanged by a non-finite hypergradient.
    """

    def init(params):
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        return HypergradientSGDState(jnp.asarray(learning_rate, dtype), jax.tree_util.tree_map(jnp.zeros_like, params),
                                     jnp.zeros((), dtype))

    def update(updates, state, params=None):
        del params
        h = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(updates),
                                              jax.tree_util.tree_leaves(state.prev_grad)))
        lr = state.learning_rate + beta * h
        lr = jnp.where(jnp.isfinite(lr), jnp.maximum(lr, min_learning_rate), state.learning_rate)
        lr = lr.astype(state.learning_rate.dtype)
        new_updates = jax.tree_util.tree_map(lambda g: (-lr * g).astype(g.dtype), updates)
        return new_updates, HypergradientSGDState(lr, updates, h.astype(lr.dtype))

    return optax.GradientTransformation(init, update)


def run_optax(objective: Objective, tx: optax.GradientTransformation, data: TrainData, params0, key, *,
              n_steps: int, batch_size: int, penalty: Penalty = Penalty(),
              record: Optional[Callable] = None):
    """``n_steps`` mini-batch updates with any optax transformation, in the trainer's batch
    order (:func:`jaxreg.train.epoch_permutation`, remainder dropped), jitted.

    Returns ``(params, records)``: ``records`` stacks ``record(opt_state)`` after each step
    (default: nothing). Lets :func:`hypergradient_sgd` run on the same batches as the trainer.
    """
    n = data.train.X.shape[0]
    n_steps = validation.check_scalar(n_steps, "n_steps", low=1, integer=True)
    batch_size = validation.check_scalar(batch_size, "batch_size", low=1, high=n, integer=True)
    spe = n // batch_size
    record = record or (lambda s: ())

    @jax.jit
    def go(params0, X, y, key, pen):
        def body(carry, t):
            params, opt_state = carry
            epoch, i = t // spe, t % spe
            perm = epoch_permutation(key, epoch, n)
            idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
            g = objective.grad(params, pen, Batch(X[idx], y[idx]))
            upd, opt_state = tx.update(g, opt_state, params)
            params = optax.apply_updates(params, upd)
            return (params, opt_state), record(opt_state)

        (params, _), recs = jax.lax.scan(body, (params0, tx.init(params0)), jnp.arange(n_steps))
        return params, recs

    return go(params0, data.train.X, data.train.y, key, penalty)


# --------------------------------------------------------------------------------- measurement
def compiled_temp_bytes(fn: Callable, *args) -> int:
    """Temporary (scratch) memory XLA allocates for ``jax.jit(fn)(*args)``, from the compiled
    program's ``memory_analysis()`` (no execution)."""
    stats = jax.jit(fn).lower(*args).compile().memory_analysis()
    return int(stats.temp_size_in_bytes)


def hypergrad_cost(val_loss: ValLoss, log_hyper, *, repeats: int = 5) -> dict:
    """Cost of a hypergradient relative to one training run (the loss alone), ratios of medians
    over ``repeats`` interleaved repetitions (compilation excluded): the forward-mode
    hypergradient (one JVP per hyperparameter) and the reverse-mode one with √K checkpointing.
    Both wall time and process CPU time are reported (CPU time is the steadier measure of
    compute on a shared machine), and the median of the per-round CPU ratios (``*_paired``: each
    hypergradient timed right after its run, robust to slow drifts in the machine's load)."""
    v = val_loss.as_array(log_hyper, "log_hyper")
    remat = val_loss if val_loss.config.remat else val_loss.replace(checkpoint=True)
    eps = default_fd_step(val_loss.dtype)
    jobs = {
        "run": lambda: val_loss.call("run", lambda fn: lambda v, args: fn(v, *args), v),
        "forward": lambda: val_loss.call(("hypergrad", "forward", eps), lambda fn: lambda v, args: _value_and_hypergrad(
            lambda u: fn(u, *args), v, "forward", eps), v),
        "reverse": lambda: remat.call(("hypergrad", "reverse", eps), lambda fn: lambda v, args: _value_and_hypergrad(
            lambda u: fn(u, *args), v, "reverse", eps), v),
    }
    owner = {"run": val_loss, "forward": val_loss, "reverse": remat}
    wall = {k: [] for k in jobs}
    cpu = {k: [] for k in jobs}
    for k, job in jobs.items():  # compile and warm up
        job()
    for _ in range(repeats):
        for k, job in jobs.items():
            job()
            wall[k].append(owner[k].last_timing["wall_s"])
            cpu[k].append(owner[k].last_timing["cpu_s"])
    mw = {k: float(np.median(x)) for k, x in wall.items()}
    mc = {k: float(np.median(x)) for k, x in cpu.items()}
    paired = {k: float(np.median(np.asarray(cpu[k]) / np.asarray(cpu["run"]))) for k in ("forward", "reverse")}
    return {"jvp_cost_ratio_paired": paired["forward"], "vjp_cost_ratio_paired": paired["reverse"],
            "cpu_s_samples": cpu, "run_wall_s": mw["run"], "forward_wall_s": mw["forward"], "reverse_wall_s": mw["reverse"],
            "run_cpu_s": mc["run"], "forward_cpu_s": mc["forward"], "reverse_cpu_s": mc["reverse"],
            "jvp_cost_ratio_wall": mw["forward"] / mw["run"], "vjp_cost_ratio_wall": mw["reverse"] / mw["run"],
            "jvp_cost_ratio": mc["forward"] / mc["run"], "vjp_cost_ratio": mc["reverse"] / mc["run"],
            "repeats": repeats, "n_hyper": val_loss.n_hyper}
