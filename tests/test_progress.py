"""jaxreg.progress.StepLog: one line per step start and end, timings recorded, silence when off."""
import io
import re

import pytest

from jaxreg.progress import QUIET, StepLog


def test_step_log_lines_and_timings():
    stream = io.StringIO()
    log = StepLog(prefix="[x]", stream=stream)
    timings = {}
    with log.step("tuning", timings):
        log.log("inside")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\[x\] +\d+\.\ds  tuning \.\.\.", lines[0])
    assert lines[1].endswith("  inside")
    assert re.fullmatch(r"\[x\] +\d+\.\ds  tuning done in \d+\.\ds", lines[2])
    assert list(timings) == ["tuning"] and timings["tuning"] >= 0 and round(timings["tuning"], 2) == timings["tuning"]


def test_step_log_disabled_writes_nothing_but_still_times(capsys):
    timings = {}
    with QUIET.step("a", timings):
        QUIET.log("hidden")
    with StepLog(enabled=False).step("b"):
        pass
    assert capsys.readouterr().err == "" and set(timings) == {"a"}


def test_step_log_defaults_to_stderr_at_call_time(capsys):
    StepLog(prefix="[p]").log("hello")
    assert capsys.readouterr().err.strip().endswith("hello")


def test_step_is_not_timed_when_it_raises():
    timings = {}
    with pytest.raises(RuntimeError):
        with StepLog(enabled=False).step("bad", timings):
            raise RuntimeError("boom")
    assert timings == {}
