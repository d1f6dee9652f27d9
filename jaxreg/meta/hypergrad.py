"""Hypergradients of an unrolled hold-out loss: forward mode, reverse mode, finite differences.

For ``f(v) = (L(v), aux)`` (an :class:`~jaxreg.meta.unrolled.UnrolledLoss` closed over its data)
and ``v`` of shape ``(m,)``:

* ``"forward"``: ∂L/∂v_i = JVP of f along the basis vector e_i, the m JVPs vmapped (one pass of
  the trainer with m tangents; memory independent of K);
* ``"reverse"``: ``jax.grad`` through the scans (memory O(K), or O(√K) for a ValLoss built with
  ``checkpoint=True``);
* ``"fd"``: central differences (L(v + ε e_i) − L(v − ε e_i)) / 2ε, the 2m + 1 runs vmapped.

The drivers are module-level jitted programs taking the hashable ``fn`` as a *static* argument
(jax's own compile cache) and its data ``args = (params0, data, key)`` as arguments. Every public
function takes ``runner``: ``runner(program, *args, **static)`` runs a program (default: calls
it); :class:`experiments.benchmarks.timing.Timer` is a runner that compiles ahead of time and times the call.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MODES", "HyperGrad", "default_fd_step", "check_mode", "value_and_hypergrad", "direct",
           "loss_program", "hypergrad_program", "grid_hypergrad_program", "grid_loss_program", "hypergrad",
           "grid_hypergrad", "grid_val_loss", "compare_modes"]

MODES = ("forward", "reverse", "fd")


class HyperGrad(NamedTuple):
    """loss: L(v) (); grad: dL/dv (m,); diverged: the inner run (any run, for fd) diverged."""

    loss: jax.Array
    grad: jax.Array
    diverged: jax.Array


def default_fd_step(dtype) -> float:
    """Central-difference step in log space: 1e-2 in float32, 1e-5 in float64."""
    return 1e-2 if jnp.dtype(dtype) == jnp.float32 else 1e-5


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def value_and_hypergrad(f: Callable, v, mode: str, eps: float) -> HyperGrad:
    """``HyperGrad`` of ``f: v (m,) -> (loss, ValAux)`` at ``v`` (module docstring). Pure: jit
    or vmap it."""
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


def direct(program, *args, **static):
    """The default runner: ``program(*args, **static)``."""
    return program(*args, **static)


@functools.partial(jax.jit, static_argnames=("fn",))
def loss_program(v, args, *, fn):
    """``fn(v, *args)``: one training run and its hold-out loss."""
    return fn(v, *args)


@functools.partial(jax.jit, static_argnames=("fn", "mode", "eps"))
def hypergrad_program(v, args, *, fn, mode, eps):
    """:func:`value_and_hypergrad` of ``fn`` closed over ``args``, at ``v`` (m,)."""
    return value_and_hypergrad(lambda u: fn(u, *args), v, mode, eps)


@functools.partial(jax.jit, static_argnames=("fn", "mode", "eps", "chunk_size"))
def grid_hypergrad_program(V, args, *, fn, mode, eps, chunk_size):
    """:func:`hypergrad_program` at every row of ``V`` (N, m), ``lax.map`` in chunks."""
    one = lambda v: value_and_hypergrad(lambda u: fn(u, *args), v, mode, eps)  # noqa: E731
    return jax.lax.map(one, V, batch_size=chunk_size or V.shape[0])


@functools.partial(jax.jit, static_argnames=("fn", "chunk_size"))
def grid_loss_program(V, args, *, fn, chunk_size):
    """``fn`` at every row of ``V`` (N, m), ``lax.map`` in chunks of ``chunk_size`` rows."""
    return jax.lax.map(lambda v: fn(v, *args), V, batch_size=chunk_size or V.shape[0])


def _eps(val_loss, eps) -> float:
    return default_fd_step(val_loss.dtype) if eps is None else float(eps)


def hypergrad(val_loss, log_hyper, mode: str = "forward", *, eps: Optional[float] = None,
              runner: Callable = direct) -> HyperGrad:
    """``(loss, d loss / d log_hyper, diverged)`` at one point ``log_hyper`` (n_hyper,).

    mode: ``"forward"``, ``"reverse"`` (build the val_loss with ``checkpoint=True`` for √K
    memory) or ``"fd"`` (step ``eps`` in log space, default :func:`default_fd_step`).
    """
    check_mode(mode)
    v = val_loss.as_array(log_hyper, "log_hyper")
    return runner(hypergrad_program, v, val_loss.args, fn=val_loss.fn, mode=mode, eps=_eps(val_loss, eps))


def grid_hypergrad(val_loss, log_hypers, mode: str = "forward", *, chunk_size: Optional[int] = None,
                   eps: Optional[float] = None, runner: Callable = direct) -> HyperGrad:
    """:func:`hypergrad` at every row of ``log_hypers`` (N, n_hyper) in one program (leaves
    with a leading (N,) axis); ``lax.map`` over chunks of ``chunk_size`` rows when given."""
    check_mode(mode)
    V = val_loss.as_array(log_hypers, "log_hypers").reshape(-1, val_loss.n_hyper)
    return runner(grid_hypergrad_program, V, val_loss.args, fn=val_loss.fn, mode=mode, eps=_eps(val_loss, eps),
                  chunk_size=chunk_size)


def grid_val_loss(val_loss, log_hypers, *, chunk_size: Optional[int] = None, runner: Callable = direct):
    """``(loss (N,), ValAux)`` at every row of ``log_hypers`` (N, n_hyper): one program,
    ``lax.map`` over chunks of ``chunk_size`` rows when given (bounded memory for big grids)."""
    V = val_loss.as_array(log_hypers, "log_hypers").reshape(-1, val_loss.n_hyper)
    return runner(grid_loss_program, V, val_loss.args, fn=val_loss.fn, chunk_size=chunk_size)


def compare_modes(val_loss, log_hyper, *, reverse_val_loss=None, runner: Callable = direct) -> dict:
    """The hypergradient at ``log_hyper`` three ways and their agreement: ``{"grad": {mode:
    (n_hyper,) list}, "rel_err_reverse_vs_forward", "rel_err_fd_vs_forward", "max_rel_err"}``,
    relative errors ‖a − b‖₂ / ‖b‖₂ in float64. Reverse mode runs on ``reverse_val_loss``
    (default ``val_loss.replace(checkpoint=True)``: √K checkpointing)."""
    rev_vl = val_loss.replace(checkpoint=True) if reverse_val_loss is None else reverse_val_loss
    g = {"forward": hypergrad(val_loss, log_hyper, "forward", runner=runner).grad,
         "reverse": hypergrad(rev_vl, log_hyper, "reverse", runner=runner).grad,
         "fd": hypergrad(val_loss, log_hyper, "fd", runner=runner).grad}
    g = {k: np.asarray(v, np.float64) for k, v in g.items()}
    rel = lambda a, b: float(np.linalg.norm(a - b) / np.linalg.norm(b))  # noqa: E731
    out = {"grad": {k: v.tolist() for k, v in g.items()},
           "rel_err_reverse_vs_forward": rel(g["reverse"], g["forward"]),
           "rel_err_fd_vs_forward": rel(g["fd"], g["forward"])}
    out["max_rel_err"] = max(out["rel_err_reverse_vs_forward"], out["rel_err_fd_vs_forward"])
    return out
