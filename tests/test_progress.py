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


def test_bar_counts_models_with_rate_and_time_left(monkeypatch):
    from jaxreg import progress
    from jaxreg.progress import ProgressBar, format_bar

    assert format_bar("sweep", "models", 300, 1000, 12.34, rate=25.0) == \
        "sweep: models 300/1000 [===       ] 12.3s, 25 models/s, 28.0s left"
    assert format_bar("sweep", "models", 1000, 1000, 40.0, rate=25.0).endswith("] 40.0s, 25 models/s")
    clock = iter([0.0, 10.0, 12.0, 14.0, 15.0])  # made; chunk read back; first chunk trained; two more
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = ProgressBar(400, unit="models", enabled=True, stream=stream)
    bar.skip(100)        # read back from a checkpoint: done, but not in the rate
    bar.advance(100)     # the first trained chunk (with the compile): 100 models over the 12 s so far
    bar.advance(100)     # then the rate after the first trained chunk: 100 models in 2 s
    bar.advance(100)     # 200 models in 3 s
    lines = stream.getvalue().split("\r")[1:]
    assert lines[0] == "sweep: models 100/400 [==        ] 10.0s"
    assert lines[1] == "sweep: models 200/400 [=====     ] 12.0s, 8.33 models/s, 24.0s left"
    assert lines[2] == "sweep: models 300/400 [========  ] 14.0s, 50 models/s, 2.0s left"
    assert lines[3] == "sweep: models 400/400 [==========] 15.0s, 66.7 models/s\n"
