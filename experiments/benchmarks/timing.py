"""The benchmarks' one timing module: timed calls (compile time apart), hypergradient cost
ratios, XLA scratch memory, XLA's persistent compilation cache, a first call in a fresh process
(what a user pays: tracing, compilation or a compilation-cache hit, the run), the float32 matmul
roofline of given shapes, and scaling curves. Nothing here changes a result.

    timer = Timer()
    out = jaxreg.meta.grid_val_loss(vl, points, runner=timer)   # compiled ahead, then timed
    timer.last                                                 # {"compile_s", "wall_s", "cpu_s"}

A *runner* is ``runner(program, *args, **static)`` for a jitted ``program`` whose static
arguments are the keywords (the convention of :mod:`jaxreg.meta`).

    seconds = fresh_process_seconds("from mypkg import f; f()", "f()", env={...})
    gflops = matmul_gflops(n, d, k)            # what XLA's matmul reaches on X (n, d) @ W (d, k)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import compile_cache, meta
from jaxreg.grads import transpose_times

_RUNNER = """
import json, time
import jax
{setup}
t = time.perf_counter()
__out = {call}
jax.block_until_ready(__out)
print("PERF-JSON", json.dumps({{"seconds": time.perf_counter() - t}}))
"""


def fresh_process_seconds(setup: str, call: str, *, env: dict | None = None, timeout: float = 600.0,
                          cwd: str | None = None) -> float:
    """Wall seconds of ``call`` (an expression) evaluated once in a new Python process after
    ``setup`` (statements: imports, data loading; not timed; ``jax`` is imported before it),
    blocking on its result (any pytree; non-array leaves are passed through). ``env``
    entries are added to this process's environment (e.g. ``JAXREG_XLA_CACHE``). Raises
    RuntimeError with the child's stderr if it fails or prints no timing."""
    code = _RUNNER.format(setup=setup, call=call)
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **(env or {})}, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("PERF-JSON "):
            return float(json.loads(line[len("PERF-JSON "):])["seconds"])
    raise RuntimeError(f"fresh process failed (exit {proc.returncode}): {proc.stderr[-2000:]}")


def median_seconds(fn: Callable, repeats: int, warmup: int = 1) -> tuple[float, list]:
    """``(median, samples)`` wall seconds of ``fn()`` (blocking on its result) over ``repeats``
    calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return float(np.median(times)), times


def matmul_gflops(n: int, d: int, k: int, *, dtype=jnp.float32, repeats: int = 5) -> float:
    """GFLOP/s of ``X (n, d) @ W (d, k)`` on the default device (2·n·d·k flops, median time)."""
    X = jnp.ones((n, d), dtype)
    W = jnp.ones((d, k), dtype)
    mm = jax.jit(lambda X, W: X @ W)
    seconds, _ = median_seconds(lambda: mm(X, W), repeats)
    return 2.0 * n * d * k / seconds / 1e9


def gradient_contraction_seconds(X, models: int | None = None, repeats: int = 5) -> dict:
    """Median seconds of the binary logistic gradient's Xᵀr for X (n, d) and r = σ(Xw) − y, one
    model (``models`` None) or ``models`` of them vmapped, in three forms: ``"xt_r"``
    (``X.T @ r``), ``"r_x"`` (:func:`jaxreg.grads.transpose_times`) and ``"autodiff"``
    (``jax.grad`` of the mean loss's data term)."""
    X = jnp.asarray(X)
    n, d = X.shape
    y = (jnp.arange(n) % 2).astype(X.dtype)
    w = jnp.full((d,) if models is None else (models, d), 0.01, X.dtype)
    loss = lambda w, X: jnp.mean(jax.nn.softplus(X @ w) - y * (X @ w))  # noqa: E731
    forms = {"xt_r": lambda w, X: X.T @ (jax.nn.sigmoid(X @ w) - y) / n,
             "r_x": lambda w, X: transpose_times(X, jax.nn.sigmoid(X @ w) - y) / n,
             "autodiff": jax.grad(loss)}
    out = {}
    for name, f in forms.items():  # X an argument, as in the trainer (a constant X is pre-transposed by XLA)
        program = jax.jit(f if models is None else jax.vmap(f, in_axes=(0, None)))
        out[name] = median_seconds(lambda: program(w, X), repeats)[0]
    return out


def scaling_curve(sizes: Sequence[int], make: Callable[[int], Callable], repeats: int = 3) -> list:
    """``[(size, median seconds of make(size)())] for size in sizes``: ``make`` builds the
    (compiled, warmed-up on the first call) work for one size."""
    return [(int(s), median_seconds(make(int(s)), repeats)[0]) for s in sizes]


def knee(sizes, seconds_per_unit, improvement: float = 0.2):
    """The first size after which growing further saves less than ``improvement`` (a fraction)
    of the time per unit: where batching stops paying. None for fewer than two points."""
    s = np.asarray(seconds_per_unit, float)
    for i in range(1, len(s)):
        if s[i] > (1 - improvement) * s[i - 1]:
            return int(sizes[i - 1])
    return int(sizes[-1]) if len(s) > 1 else None


def scaling_note(scale: dict) -> str:
    """One sentence per curve of the scaling study, worded from the measurements: the knee of
    time per model-epoch against the grid size, and the fraction of the matmul roofline reached
    at the largest n and d."""
    m = scale["models"]
    per = [p["seconds"] / (p["models"] * p["epochs"]) for p in m]
    k = knee([p["models"] for p in m], per)
    frac = lambda p: p["roofline_s"] / p["seconds"]  # noqa: E731
    return (f"time per model-epoch falls from {per[0]:.2e} s (1 model) to {min(per):.2e} s and stops falling by 20% "
            f"after {k} models: the knee. Below it a step's fixed work (the loop, the elementwise softmax over n × 10 "
            f"scores per model, dispatch) and a narrow, inefficient matmul dominate, so batching models amortises them; "
            f"from it on the wide matmul XW (d × {10 * k} columns and more) sets the cost, at "
            f"{frac(m[-1]):.0%} of the float32 matmul roofline for {m[-1]['models']} models, so more models cost "
            f"proportionally more. At n = {scale['n'][-1]['n']} the engine reaches {frac(scale['n'][-1]):.0%} of the "
            f"roofline; at d = {scale['d'][-1]['d']} {frac(scale['d'][-1]):.0%}, at d = {scale['d'][0]['d']} "
            f"{frac(scale['d'][0]):.0%} (few features: the matmul is cheap and the elementwise work is the cost).")


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
    result, after one untimed warm-up call (so compilation is excluded): :func:`median_seconds`."""
    return median_seconds(fn, repeats, warmup=1)


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
