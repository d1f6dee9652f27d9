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


def test_permissions_of_the_replaced_file_are_kept_and_new_files_follow_the_umask(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("old")
    os.chmod(secret, 0o600)
    with atomic_open(secret, "w") as f:
        f.write("new")
    assert secret.read_text() == "new" and stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    old = os.umask(0o077)
    try:
        with atomic_open(tmp_path / "private", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "private").st_mode) == 0o600


def test_a_symlink_is_written_through(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "data.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with atomic_open(link, "w") as f:
        f.write("new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new" and sorted(os.listdir(tmp_path / "real")) == ["data.json"]


def test_data_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode))), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", os.path.basename(b))), replace(a, b))[1])
    with atomic_open(tmp_path / "x.bin", "wb") as f:
        f.write(b"payload")
    assert calls == [("fsync", False), ("replace", "x.bin"), ("fsync", True)]  # file, rename, folder


def test_clean_stale_removes_what_dead_processes_left(tmp_path):
    import subprocess
    import sys
    import time

    from jaxreg.atomic import clean_stale, owner_tag

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has exited
    host = owner_tag().rsplit(".", 1)[0]
    names = {"dead": f".f.bin.{host}.{dead}-abc1.partial", "live": f".f.bin.{owner_tag()}-abc2.partial",
             "far_old": ".f.bin.elsewhere.12-abc3.partial", "far_new": ".f.bin.elsewhere.13-abc4.partial",
             "plain": "f.bin"}
    for n in names.values():
        (tmp_path / n).write_bytes(b"x")
    old = time.time() - 3 * 24 * 3600
    os.utime(tmp_path / names["far_old"], (old, old))
    (tmp_path / f"jaxreg-npm-{host}.{dead}-xyz").mkdir()
    (tmp_path / f"jaxreg-npm-{owner_tag()}-xyz").mkdir()
    removed = {p.name for p in clean_stale(tmp_path)} | {p.name for p in clean_stale(tmp_path, prefix="jaxreg-npm-")}
    assert removed == {names["dead"], names["far_old"], f"jaxreg-npm-{host}.{dead}-xyz"}
    assert sorted(os.listdir(tmp_path)) == sorted([names["live"], names["far_new"], "f.bin",
                                                   f"jaxreg-npm-{owner_tag()}-xyz"])
