"""Checkpointed scans: reverse-mode memory of a long ``lax.scan`` bounded by √K or log K.

Reverse mode through ``lax.scan(body, carry, xs)`` of K iterations stores every iteration's
residuals: memory O(K). Two ways to trade recomputation for memory, both exact (the same
arithmetic is re-run, so values and derivatives are unchanged):

* :func:`segment_scan` (``"sqrt"``): the K iterations in segments of L; each segment is one
  ``jax.checkpoint``-ed scan, so the backward pass stores the carry at each segment boundary
  (K/L carries) and re-runs one segment at a time (L iterations' residuals). With L ≈ √K the
  memory is O(√K) carries + residuals, for one extra forward pass.
* :func:`nested_scan` (``"log"``, recursive checkpointing in the spirit of binomial /
  treeverse schedules): the K iterations split into ``branch`` chunks, each a checkpointed
  :func:`nested_scan` of its own chunk, down to chunks of at most ``branch`` iterations.
  Memory O(branch · log_branch K) carries, recomputation ⌈log_branch K⌉ forward passes.

Inside a segment each iteration may itself be checkpointed with a policy (``step_policy``)
that keeps only the small dot products and recomputes the rest (e.g. the gathered mini-batch,
(B, d) per step) in the backward pass: :func:`step_checkpoint`.

:func:`plan` picks the segment length for a trainer of ``n_updates`` updates in epochs of
``steps_per_epoch`` (the scan levels of :mod:`jaxreg.trainer`).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

__all__ = ["MODES", "check_mode", "segment_scan", "nested_scan", "step_checkpoint", "Plan", "nearest_divisor",
           "plan", "scan"]

#: ``TrainConfig.remat`` values: False (none), True / "block" (each record's block of epochs),
#: "sqrt" (segments of ≈√K updates), "log" (recursive, O(log K) memory).
MODES = (False, True, "block", "sqrt", "log")


def check_mode(remat) -> None:
    if not any(remat is m if isinstance(m, bool) else (isinstance(remat, str) and remat == m) for m in MODES):
        raise ValueError(f"remat must be one of {MODES}, got {remat!r}")


def _length(xs) -> int:
    return jax.tree_util.tree_leaves(xs)[0].shape[0]


def _split(xs, n_chunks: int, size: int):
    """(the first n_chunks·size iterations as (n_chunks, size, ...), the remainder)."""
    head = jax.tree_util.tree_map(lambda x: x[:n_chunks * size].reshape((n_chunks, size) + x.shape[1:]), xs)
    tail = jax.tree_util.tree_map(lambda x: x[n_chunks * size:], xs)
    return head, tail


def _join(ys_head, ys_tail):
    if ys_head is None:
        return ys_tail
    flat = jax.tree_util.tree_map(lambda y: y.reshape((-1,) + y.shape[2:]), ys_head)
    if ys_tail is None:
        return flat
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), flat, ys_tail)


def _chunked(run: Callable, carry, xs, size: int):
    """``run(carry, xs_chunk)`` (checkpointed) over consecutive chunks of ``size`` iterations,
    the last, shorter chunk (if any) in one more call; ys concatenated in order."""
    n = _length(xs)
    n_chunks, rest = divmod(n, size)
    head, tail = _split(xs, n_chunks, size)
    ys_head = ys_tail = None
    if n_chunks:
        carry, ys_head = jax.lax.scan(run, carry, head)
    if rest:
        carry, ys_tail = run(carry, tail)
    return carry, _join(ys_head, ys_tail)


def segment_scan(body: Callable, carry, xs, segment: int):
    """``lax.scan(body, carry, xs)`` with every ``segment`` consecutive iterations one
    ``jax.checkpoint``-ed scan (module docstring): the same values, O(K/segment + segment)
    reverse-mode memory. ``segment >= K``: one checkpointed scan."""
    run = jax.checkpoint(lambda c, x: jax.lax.scan(body, c, x), prevent_cse=False)
    return _chunked(run, carry, xs, max(1, int(segment)))


def nested_scan(body: Callable, carry, xs, branch: int = 2):
    """``lax.scan(body, carry, xs)`` checkpointed recursively (module docstring): ``branch``
    chunks per level, each a checkpointed nested scan, down to at most ``branch`` iterations."""
    branch = max(2, int(branch))
    n = _length(xs)
    if n <= branch:
        return jax.lax.scan(body, carry, xs)
    size = -(-n // branch)
    run = jax.checkpoint(lambda c, x: nested_scan(body, c, x, branch), prevent_cse=False)
    return _chunked(run, carry, xs, size)


def step_checkpoint(body: Callable, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable):
    """``body`` checkpointed with ``policy``: its backward pass keeps only what the policy saves
    (by default the dot products' outputs, e.g. the (B, C) scores) and recomputes the rest (the
    gathered mini-batch). The values are unchanged."""
    return jax.checkpoint(body, policy=policy, prevent_cse=False)


class Plan(NamedTuple):
    """Where the trainer checkpoints (``mode`` of :data:`MODES`): ``step_segment`` updates per
    checkpointed segment inside an epoch (None: the epoch's scan is not segmented);
    ``epoch_segment`` epochs per checkpointed segment inside a block (None: not segmented);
    ``branch``: the branching factor of ``"log"``; ``block``: checkpoint each record's block;
    ``per_update``: :func:`step_checkpoint` every update (``"sqrt"`` and ``"log"``)."""

    mode: object
    step_segment: Optional[int] = None
    epoch_segment: Optional[int] = None
    branch: int = 2
    block: bool = False
    per_update: bool = False


def nearest_divisor(n: int, target: float) -> int:
    """The divisor of ``n`` closest to ``target`` in log scale (ties: the smaller)."""
    divs = [d for d in range(1, n + 1) if n % d == 0]
    return min(divs, key=lambda d: (abs(math.log(d / target)), d))


def plan(mode, n_updates: int, steps_per_epoch: int, segment: Optional[int] = None) -> Plan:
    """The checkpoint placement for ``mode`` in a run of ``n_updates`` updates, epochs of
    ``steps_per_epoch`` updates.

    ``"sqrt"``: segments of L = ``segment`` (default ⌈√n_updates⌉) updates. When L fits in an
    epoch the epoch's scan is segmented, with L moved to the divisor of ``steps_per_epoch``
    nearest to it when that is within a factor 2 (no short remainder segment); otherwise
    groups of ≈ L / steps_per_epoch epochs are the segments. ``"log"``: ``segment`` is the
    branching factor (default 2) of every scan level. ``True`` / ``"block"``: each block.
    """
    if mode is False or mode is None:
        return Plan(False)
    if mode is True or mode == "block":
        return Plan("block", block=True)
    if mode == "log":
        return Plan("log", branch=2 if segment is None else max(2, int(segment)), per_update=True)
    L = max(1, int(segment) if segment is not None else math.ceil(math.sqrt(max(n_updates, 1))))
    if L <= steps_per_epoch:
        d = nearest_divisor(steps_per_epoch, L)
        return Plan("sqrt", step_segment=d if 0.5 <= d / L <= 2 else L, per_update=True)
    return Plan("sqrt", epoch_segment=max(1, round(L / steps_per_epoch)), per_update=True)


def scan(body: Callable, carry, xs, *, segment: Optional[int] = None, branch: Optional[int] = None,
         checkpoint_body: bool = False):
    """``lax.scan`` (neither given), :func:`segment_scan` (``segment``) or :func:`nested_scan`
    (``branch``), each iteration :func:`step_checkpoint`-ed when ``checkpoint_body``: the one
    call the trainer's scan levels make."""
    if checkpoint_body:
        body = step_checkpoint(body)
    if branch is not None:
        return nested_scan(body, carry, xs, branch)
    if segment is not None:
        return segment_scan(body, carry, xs, segment)
    return jax.lax.scan(body, carry, xs)
