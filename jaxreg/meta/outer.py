"""Meta-optimisation: gradient descent on the log-hyperparameters from several starts at once,
guarded against the chaotic regime of the unrolled loss.

Per start ``h0`` (n_hyper,), ``n_steps`` outer steps; step t evaluates the hypergradient
``g_t = ∇L(h_t)`` and

    accepted (not bad):  h_{t+1} = h_t + s_t · u_t,     (u_t, state) = tx.update(clip(g_t), state)
    bad, some h accepted: h_{t+1} = h_good + (h_t − h_good)/2,   s_{t+1} = s_t / 2
    bad, none accepted:   h_{t+1} = h_t + r_t · retreat,          r_{t+1} = 2 r_t

with ``clip(g) = g · min(1, clip_norm/‖g‖)``; a step is *bad* when the inner run diverged, L or
g is not finite, or ‖g‖ > max_grad_norm or ‖g‖ > explode_ratio · max(|L|, 1e-6). The optimiser
state is kept on a bad step. All starts run in one ``vmap``-ed, jitted ``lax.scan``.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import tree, validation
from jaxreg.meta.hypergrad import check_mode, default_fd_step, direct, value_and_hypergrad

__all__ = ["MetaTrace", "MetaResult", "MetaState", "default_retreat", "meta_run", "meta_program",
           "meta_optimize"]


class MetaTrace(NamedTuple):
    """Per outer step (leading axes: start, step): the point evaluated, its hold-out loss and
    hypergradient, and flags. ``diverged``: the inner run diverged; ``nonfinite``: loss or
    hypergradient was NaN/inf; ``exploded``: the hypergradient was huge (module docstring);
    ``bad``: any of these (the point was rejected and the outer loop stepped back);
    ``clipped``: the hypergradient was clipped to clip_norm; ``step_scale``: s_t."""

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
    """log_hyper (S, n_hyper) / loss (S,): the best accepted point per start (loss +inf and
    log_hyper NaN where ``found`` (S,) is False: no accepted point); trace: :class:`MetaTrace`
    (S, n_steps, ...); hyper_names; n_hypergrads: hypergradient evaluations per start; mode."""

    log_hyper: np.ndarray
    loss: np.ndarray
    found: np.ndarray
    trace: MetaTrace
    hyper_names: tuple
    n_hypergrads: int
    mode: str


class MetaState(NamedTuple):
    h: jax.Array
    opt_state: optax.OptState
    h_good: jax.Array
    have_good: jax.Array
    scale: jax.Array
    retreat_mult: jax.Array
    best_h: jax.Array
    best_loss: jax.Array


def default_retreat(hyper_names, sizes=None) -> np.ndarray:
    """Direction to move a starting point whose first evaluation is bad: smaller η and T (a
    faster-decaying, smaller step is more stable); λ and other hyperparameters unchanged.
    ``sizes``: entries per name (a vector-valued extra; default 1 each)."""
    sizes = [1] * len(hyper_names) if sizes is None else sizes
    return np.concatenate([np.full(n, -1.0 if h in ("log_lr", "log_decay_time") else 0.0)
                           for h, n in zip(hyper_names, sizes)])


def meta_run(f, h0, tx, n_steps, mode, eps, clip_norm, max_grad_norm, explode_ratio, retreat):
    """One start: ``(best_h, best_loss, found, MetaTrace)`` of the guarded loop (pure)."""
    dtype = h0.dtype

    def step(s: MetaState, _):
        loss, g, diverged = value_and_hypergrad(f, s.h, mode, eps)
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
        new = MetaState(
            h=jnp.where(bad, h_back, h_fwd).astype(dtype),
            opt_state=tree.where(bad, s.opt_state, new_opt),
            h_good=jnp.where(bad, s.h_good, s.h), have_good=s.have_good | ~bad,
            scale=jnp.where(bad & s.have_good, 0.5 * s.scale, s.scale).astype(dtype),
            retreat_mult=jnp.where(bad & ~s.have_good, 2.0 * s.retreat_mult, s.retreat_mult).astype(dtype),
            best_h=jnp.where(better, s.h, s.best_h), best_loss=jnp.where(better, loss, s.best_loss))
        rec = MetaTrace(log_hyper=s.h, loss=loss, grad=g, grad_norm=gnorm, diverged=diverged, nonfinite=nonfinite,
                        exploded=exploded, bad=bad, clipped=clipped, step_scale=s.scale)
        return new, rec

    s0 = MetaState(h=h0, opt_state=tx.init(h0), h_good=h0, have_good=jnp.asarray(False),
                   scale=jnp.asarray(1.0, dtype), retreat_mult=jnp.asarray(1.0, dtype),
                   best_h=jnp.full_like(h0, jnp.nan), best_loss=jnp.asarray(jnp.inf, dtype))
    s, trace = jax.lax.scan(step, s0, None, length=n_steps)
    return s.best_h, s.best_loss, s.have_good, trace


@functools.partial(jax.jit, static_argnames=("fn", "tx", "n_steps", "mode", "eps", "clip_norm", "max_grad_norm",
                                             "explode_ratio"))
def meta_program(H0, retreat, args, *, fn, tx, n_steps, mode, eps, clip_norm, max_grad_norm, explode_ratio):
    """:func:`meta_run` from every row of ``H0`` (S, n_hyper), vmapped; ``fn`` closed over ``args``."""
    f = lambda u: fn(u, *args)  # noqa: E731
    return jax.vmap(lambda h0: meta_run(f, h0, tx, n_steps, mode, eps, clip_norm, max_grad_norm,
                                        explode_ratio, retreat))(H0)


def meta_optimize(val_loss, log_hyper0, *, n_steps: int = 20, optimizer: Optional[optax.GradientTransformation] = None,
                  mode: str = "forward", eps: Optional[float] = None, clip_norm: float = 1.0,
                  max_grad_norm: float = 1e4, explode_ratio: float = 100.0, retreat=None,
                  runner: Callable = direct) -> MetaResult:
    """Guarded gradient descent (module docstring) on ``val_loss``'s log-hyperparameters from
    each row of ``log_hyper0`` (S, n_hyper), ``n_steps`` hypergradient evaluations each, one
    jitted program. ``optimizer`` (the outer tx) defaults to ``optax.adam(0.2)`` (steps of ≈0.2
    in log space); ``retreat`` to :func:`default_retreat`. The result is the best accepted point.

    Raises ValueError naming ``log_hyper0`` (non-finite / wrong shape), ``n_steps``, ``mode``,
    ``clip_norm``, ``max_grad_norm``, ``explode_ratio`` or ``retreat``.
    """
    check_mode(mode)
    n_steps = validation.check_scalar(n_steps, "n_steps", low=1, integer=True)
    clip_norm = validation.check_scalar(clip_norm, "clip_norm", low=0, low_inclusive=False)
    max_grad_norm = validation.check_scalar(max_grad_norm, "max_grad_norm", low=0, low_inclusive=False, allow_inf=True)
    explode_ratio = validation.check_scalar(explode_ratio, "explode_ratio", low=0, low_inclusive=False, allow_inf=True)
    H0 = val_loss.as_array(log_hyper0, "log_hyper0").reshape(-1, val_loss.n_hyper)
    tx = optax.adam(0.2) if optimizer is None else optimizer
    if retreat is None:
        retreat = default_retreat(val_loss.hyper_names, val_loss.fn.sizes())
    retreat = val_loss.as_array(retreat, "retreat")
    eps = default_fd_step(val_loss.dtype) if eps is None else float(eps)
    best_h, best_loss, found, trace = runner(
        meta_program, H0, retreat, val_loss.args, fn=val_loss.fn, tx=tx, n_steps=n_steps, mode=mode, eps=eps,
        clip_norm=clip_norm, max_grad_norm=max_grad_norm, explode_ratio=explode_ratio)
    return MetaResult(np.asarray(best_h), np.asarray(best_loss), np.asarray(found),
                      jax.tree_util.tree_map(np.asarray, trace), val_loss.hyper_names, n_steps, mode)
