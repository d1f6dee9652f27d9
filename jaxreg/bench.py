"""Measuring compute: timed calls (compile time apart), hypergradient cost ratios, XLA scratch
memory, and XLA's persistent compilation cache. Nothing here changes a result.

    timer = Timer()
    out = jaxreg.meta.grid_val_loss(vl, points, runner=timer)   # compiled ahead, then timed
    timer.last                                                 # {"compile_s", "wall_s", "cpu_s"}

A *runner* is ``runner(program, *args, **static)`` for a jitted ``program`` whose static
arguments are the keywords (the convention of :mod:`jaxreg.meta`).
"""
from __future__ import annotations

import time

import jax
import numpy as np

from jaxreg import compile_cache, meta, perf


def _signature(program, args, static):
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return (program, tuple(sorted(static.items())), treedef,
            tuple((np.shape(x), str(jax.numpy.result_type(x))) for x in leaves))


class Timer:
    """A runner that compiles ``program`` ahead of time (``lower(...).compile()``, kept per
    program, static arguments and argument shapes) and times the call, blocking on its result.

    ``last``: ``{"compile_s" (0 when already compiled), "wall_s", "cpu_s"}`` of the latest call
    (wall: ``perf_counter``; cpu: this process's CPU time, the steadier measure of compute on a
    shared machine); ``calls``: every call's ``(program name, timing)``.
    """

    def __init__(self):
        self.compiled, self.calls, self.last = {}, [], {}

    def __call__(self, program, *args, **static):
        sig = _signature(program, args, static)
        t0 = time.perf_counter()
        if sig not in self.compiled:
            self.compiled[sig] = program.lower(*args, **static).compile()
        compile_s = time.perf_counter() - t0
        w, c = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(self.compiled[sig](*args))
        self.last = {"compile_s": compile_s, "wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c}
        self.calls.append((getattr(program, "__name__", str(program)), self.last))
        return out

    def of(self, name: str) -> dict:
        """The timing of the latest call of the program called ``name``."""
        for called, t in reversed(self.calls):
            if called == name:
                return t
        raise KeyError(f"no call of {name!r} was timed (timed: {sorted({c for c, _ in self.calls})})")

    def total(self, key: str = "cpu_s") -> float:
        """Sum of ``key`` over every call."""
        return float(sum(t[key] for _, t in self.calls))


def median_time(fn, repeats: int):
    """``(median, samples)``: wall seconds of ``fn()`` over ``repeats`` calls, blocking on the
    result, after one untimed warm-up call (so compilation is excluded): :func:`jaxreg.perf.median_seconds`."""
    return perf.median_seconds(fn, repeats, warmup=1)


def compiled_temp_bytes(program, *args, **static) -> int:
    """Temporary (scratch) memory XLA allocates for ``program(*args, **static)``, from the
    compiled program's ``memory_analysis()`` (nothing is run). ``program``: a jitted function,
    or a plain one (then jitted here)."""
    if not hasattr(program, "lower"):
        program = jax.jit(program)
    stats = program.lower(*args, **static).compile().memory_analysis()
    return int(stats.temp_size_in_bytes)


def hypergrad_cost(val_loss, log_hyper, *, repeats: int = 5, checkpoint="sqrt") -> dict:
    """Cost of a hypergradient relative to one training run (the loss alone), ratios of medians
    over ``repeats`` interleaved repetitions (compilation excluded): the forward-mode
    hypergradient (one JVP per hyperparameter) and the reverse-mode one with ``checkpoint``
    (``"sqrt"``: √K segments of updates; ``True``: v0.1's blocks of epochs; a ``val_loss`` built
    with a remat mode keeps its own). Wall and process CPU time, and the median of the per-round
    CPU ratios (``*_paired``: each hypergradient timed right after its run, robust to slow
    drifts in the machine's load)."""
    v = val_loss.as_array(log_hyper, "log_hyper")
    remat = val_loss if val_loss.config.remat else val_loss.replace(checkpoint=checkpoint)
    eps = meta.default_fd_step(val_loss.dtype)
    timer = Timer()
    jobs = {
        "run": lambda: timer(meta.loss_program, v, val_loss.args, fn=val_loss.fn),
        "forward": lambda: timer(meta.hypergrad_program, v, val_loss.args, fn=val_loss.fn, mode="forward", eps=eps),
        "reverse": lambda: timer(meta.hypergrad_program, v, remat.args, fn=remat.fn, mode="reverse", eps=eps),
    }
    wall = {k: [] for k in jobs}
    cpu = {k: [] for k in jobs}
    for job in jobs.values():  # compile and warm up
        job()
    for _ in range(repeats):
        for k, job in jobs.items():
            job()
            wall[k].append(timer.last["wall_s"])
            cpu[k].append(timer.last["cpu_s"])
    mw = {k: float(np.median(x)) for k, x in wall.items()}
    mc = {k: float(np.median(x)) for k, x in cpu.items()}
    paired = {k: float(np.median(np.asarray(cpu[k]) / np.asarray(cpu["run"]))) for k in ("forward", "reverse")}
    return {"jvp_cost_ratio_paired": paired["forward"], "vjp_cost_ratio_paired": paired["reverse"],
            "cpu_s_samples": cpu, "run_wall_s": mw["run"], "forward_wall_s": mw["forward"], "reverse_wall_s": mw["reverse"],
            "run_cpu_s": mc["run"], "forward_cpu_s": mc["forward"], "reverse_cpu_s": mc["reverse"],
            "jvp_cost_ratio_wall": mw["forward"] / mw["run"], "vjp_cost_ratio_wall": mw["reverse"] / mw["run"],
            "jvp_cost_ratio": mc["forward"] / mc["run"], "vjp_cost_ratio": mc["reverse"] / mc["run"],
            "repeats": repeats, "n_hyper": val_loss.n_hyper}


def enable_compile_cache(directory=None) -> str | None:
    """:func:`jaxreg.compile_cache.enable` (kept for the experiments that call it explicitly)."""
    return compile_cache.enable(directory)
