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
