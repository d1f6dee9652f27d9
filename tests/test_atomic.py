"""jaxreg.atomic: a completed write replaces the target; an interrupted one leaves nothing."""
import os
import stat

import pytest

from jaxreg.atomic import atomic_open


def test_completed_write_replaces_target_and_is_readable(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_open(target, "w", encoding="utf-8") as f:
        f.write("new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert os.listdir(target.parent) == ["out.txt"]


def test_interrupted_write_keeps_old_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_open(target, "wb") as f:
            f.write(b"half-written")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_bad_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a") as f:
            f.write("never reached")


def test_json_and_text_writers_leave_no_temp(tmp_path):
    import json

    import numpy as np

    from jaxreg.atomic import write_json, write_text

    write_json(tmp_path / "x.json", {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": (1, 2)})
    write_text(tmp_path / "y.md", "hello")
    assert sorted(os.listdir(tmp_path)) == ["x.json", "y.md"]
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [1, 2]}
    assert (tmp_path / "y.md").read_text() == "hello"
