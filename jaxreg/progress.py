"""Progress on stderr, dependency-free: a bar for long sweeps and a log of named steps.

    sweep: models 300/1000 [===       ] 12.3s, 24.4 models/s, 28.7s left   (ProgressBar)
    [reproduce]    12.3s  softmax tuning ... done in 4.1s                   (StepLog)

``ProgressBar(enabled=None)`` (auto) shows it only when the stream is a terminal, so logs and CI
output stay clean; ``True``/``False`` force it on/off.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Optional

__all__ = ["format_bar", "ProgressBar", "StepLog", "QUIET"]


def format_bar(label: str, unit: str, done: int, total: int, elapsed: float, width: int = 10,
               rate: Optional[float] = None) -> str:
    """``"{label}: {unit} {done}/{total} [====      ] {elapsed:.1f}s"``, then, given the
    ``rate`` (units per second), ``", {rate:.3g} {unit}/s, {left:.1f}s left"`` with ``left =
    (total - done) / rate`` (no time left once done)."""
    filled = int(round(width * done / max(total, 1)))
    line = f"{label}: {unit} {done}/{total} [{'=' * filled}{' ' * (width - filled)}] {elapsed:.1f}s"
    if rate is not None and rate > 0:
        line += f", {rate:.3g} {unit}/s" + (f", {(total - done) / rate:.1f}s left" if done < total else "")
    return line


class ProgressBar:
    """Call :meth:`advance` after each finished step (or :meth:`skip` for steps that were already
    done, e.g. chunks read from a checkpoint: they count as done but not in the rate); the bar is
    redrawn in place (``\\r``) and ends with a newline at ``total``. The rate counts the steps run
    here since the first one (which includes compiling), so the time left is not inflated."""

    def __init__(self, total: int, label: str = "sweep", unit: str = "chunk", enabled=None,
                 stream=None, width: int = 10):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled, self.total, self.label, self.unit, self.width = bool(enabled), total, label, unit, width
        self.start = time.perf_counter()
        self.done = self.skipped = 0
        self.first = None  # (time, steps run) at the first step run here

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more steps done and redraw."""
        self.update(self.done + n)

    def skip(self, n: int = 1) -> None:
        """Count ``n`` steps done elsewhere (not in the rate) and redraw."""
        self.skipped += n
        self.update(self.done + n)

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.perf_counter()
        ran = done - self.skipped
        if ran > 0 and self.first is None:
            self.first = (now, ran)
        t1, n1 = self.first or (now, 0)
        # the rate after the first step (which includes compiling), the first step's until then
        rate = (ran - n1) / (now - t1) if ran > n1 and now > t1 else (ran / (now - self.start) if ran else None)
        line = format_bar(self.label, self.unit, done, self.total, now - self.start, self.width, rate=rate)
        self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
        self.stream.flush()


class StepLog:
    """Named steps and their wall times, one line each on stderr (nothing when ``enabled`` is
    False). Every line starts with ``prefix`` and the seconds since the log was made.

    ``with log.step("tuning", timings): ...`` logs the start and the end of the step and, given a
    dict, records ``timings["tuning"]`` = its wall time in seconds (rounded to 0.01 s).
    """

    def __init__(self, enabled: bool = True, prefix: str = "[reproduce]", stream=None):
        self.enabled, self.prefix, self.stream = bool(enabled), prefix, stream  # None: sys.stderr
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        if self.enabled:
            print(f"{self.prefix} {time.perf_counter() - self.t0:7.1f}s  {msg}", file=self.stream or sys.stderr,
                  flush=True)

    @contextlib.contextmanager
    def step(self, name: str, timings: Optional[dict] = None):
        self.log(f"{name} ...")
        t = time.perf_counter()
        yield
        dt = time.perf_counter() - t
        if timings is not None:
            timings[name] = round(dt, 2)
        self.log(f"{name} done in {dt:.1f}s")


QUIET = StepLog(enabled=False)  # for library calls and tests that want no step lines
