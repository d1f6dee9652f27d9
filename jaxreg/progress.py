"""A dependency-free text progress bar for long sweeps, written to stderr.

    sweep: chunk 3/10 [===       ] 12.3s

``enabled=None`` (auto) shows it only when the stream is a terminal, so logs and CI output stay
clean; ``True``/``False`` force it on/off.
"""
from __future__ import annotations

import sys
import time


def format_bar(label: str, unit: str, done: int, total: int, elapsed: float, width: int = 10) -> str:
    """``"{label}: {unit} {done}/{total} [====      ] {elapsed:.1f}s"``."""
    filled = int(round(width * done / max(total, 1)))
    return f"{label}: {unit} {done}/{total} [{'=' * filled}{' ' * (width - filled)}] {elapsed:.1f}s"


class ProgressBar:
    """Call :meth:`update` after each finished step; the bar is redrawn in place (``\\r``) and
    ends with a newline at ``total``."""

    def __init__(self, total: int, label: str = "sweep", unit: str = "chunk", enabled=None,
                 stream=None, width: int = 10):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled, self.total, self.label, self.unit, self.width = bool(enabled), total, label, unit, width
        self.start = time.perf_counter()
        self.done = 0

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more steps done and redraw."""
        self.update(self.done + n)

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        line = format_bar(self.label, self.unit, done, self.total, time.perf_counter() - self.start,
                          self.width)
        self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
        self.stream.flush()
