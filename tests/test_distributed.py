"""Multi-process sweeps on JAX's own runtime, on this machine: ``python -m jaxreg.launch`` starts
N processes on 127.0.0.1 (a free port; 2 forced CPU devices each; gloo collectives), each runs
SCRIPT and saves what its sweeps returned. Every process must hold the full result, bitwise equal
to the single-process run (one process on 4 devices, and this interpreter on 1); per-host rows
must give the replicated run's result (to float64 rounding: the sums over rows are split). Every launch is bounded by a timeout, runs in its own session (killed as a group if the
launcher itself hangs) and its processes are checked to be gone."""
import os
import re
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxreg import distributed, launch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import sys
    from jaxreg import distributed
    info = distributed.initialize(timeout_s=60)
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    import jaxreg.engine as E
    from jaxreg.objective import Objective
    from jaxreg.sweeps import sweep
    from jaxreg import TrainConfig, prepare_data
    out, parts = sys.argv[1], sys.argv[2].split(",")
    P, i = info.process_count, info.process_index
    if "die" in parts and i == 1:
        import os; os._exit(7)  # a peer that dies while the others go on into the sweep
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 3)); y = (X[:, 0] + rng.normal(size=24) > 0).astype(float)
    Xh, yh = X[:8] + 0.5, y[:8]
    obj = Objective("logistic")
    mini = TrainConfig(method="minibatch", batch_size=6, n_epochs=2)
    grid = {"penalty": ["l1", "l2"], "lam": [0.1, 0.01, 0.001], "seed": [0, 1]}  # 12 -> chunks of 8
    saved = {}
    def keep(name, r):
        for j, leaf in enumerate(jax.tree_util.tree_leaves((r.flat, r.final))):
            saved[f"{name}/{j}"] = leaf
    data = prepare_data(obj, mini, X, y, Xh, yh)
    keep("replicated", sweep(obj, data, mini, grid, init_scale=0.1, chunk_size=8))
    for name, cfg in (("full", TrainConfig(n_epochs=3)), ("mini", mini)):
        if "local" in parts:  # each process passes only its own rows: 24/P training, 8/P hold-out
            n, m = 24 // P, 8 // P
            local = distributed.process_local_data(obj, cfg, X[i*n:(i+1)*n], y[i*n:(i+1)*n],
                                                   Xh[i*m:(i+1)*m], yh[i*m:(i+1)*m])
            assert local.train.X.shape == (24, 3) and (P == 1 or not local.train.X.is_fully_addressable)
            keep(f"local_{name}", sweep(obj, local, cfg, grid, init_scale=0.1))
        if "rows" in parts:  # every row in every process
            keep(f"rows_{name}", sweep(obj, prepare_data(obj, cfg, X, y, Xh, yh), cfg, grid, init_scale=0.1))
    if "resume" in parts:  # process 0 writes the chunks, every process reads them back
        first = sweep(obj, data, mini, grid, init_scale=0.1, chunk_size=8, checkpoint_dir=out + "/ck")
        calls, to_host = [], E.to_host
        E.to_host = lambda x: (calls.append(1), to_host(x))[1]
        again = sweep(obj, data, mini, grid, init_scale=0.1, chunk_size=8, checkpoint_dir=out + "/ck")
        E.to_host = to_host
        assert not calls, "a finished chunk was trained again"
        keep("resumed", again)
    np.savez(f"{out}/p{i}.npz", devices=len(info.devices), processes=P, **saved)
    print("SCRIPT-OK", i, P, len(info.devices), flush=True)
""")


def run_launcher(tmp_path, n, devices, parts, timeout=240, extra=()):
    """``(returncode, output, pids)`` of ``python -m jaxreg.launch`` running SCRIPT; the launcher
    and its processes are killed as one group if it outlasts ``timeout``."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"out-{n}x{devices}"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "jaxreg.launch", "--processes", str(n), "--cpu-devices", str(devices),
           "--timeout", str(timeout - 30), *extra, str(script), str(out), ",".join(parts)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True, cwd=tmp_path)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the launcher did not finish within {timeout} s:\n{output[-3000:]}")
    pids = [int(p) for p in re.findall(r"process \d+: pid (\d+)", output)]
    for pid in pids:  # the launcher stopped and reaped every process it started
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    return proc.returncode, output, out


def load(out, n):
    files = [np.load(out / f"p{i}.npz") for i in range(n)]
    return [{k: f[k] for k in f.files} for f in files]


def assert_same(a, b, prefix, atol=0.0):
    keys = sorted(k for k in a if k.startswith(prefix + "/"))
    assert keys and keys == sorted(k for k in b if k.startswith(prefix + "/"))
    for k in keys:
        if atol == 0.0 or a[k].dtype.kind in "biu":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=atol, err_msg=k)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: one process with 4 CPU devices (the same mesh size as 2 x 2)."""
    tmp = tmp_path_factory.mktemp("single")
    code, output, out = run_launcher(tmp, 1, 4, ["local", "rows"])
    assert code == 0, output[-3000:]
    return load(out, 1)[0]


def test_two_processes_equal_the_single_process_run(tmp_path, single):
    code, output, out = run_launcher(tmp_path, 2, 2, ["local", "resume"])
    assert code == 0, output[-3000:]
    assert output.count("SCRIPT-OK") == 2
    p0, p1 = load(out, 2)
    assert int(p0["devices"]) == 4 and int(p0["processes"]) == 2
    # every process holds the whole result, bitwise equal to the single process on 4 devices
    for name in ("replicated", "resumed"):
        assert_same(p0, p1, name)
        assert_same(p0, single, name if name == "replicated" else "replicated")
    assert_same({"resumed/" + k.split("/")[1]: v for k, v in p0.items() if k.startswith("replicated/")}, p0, "resumed")
    # per-host rows equal the replicated rows: every process agrees bitwise; against the run
    # on all rows, the sums over examples are added in another order (two partial sums, one per
    # process), so the last bits may differ: float64 within 1e-12
    for cfg in ("full", "mini"):
        assert_same(p0, p1, f"local_{cfg}")
        rows = {f"local_{cfg}/" + k.split("/")[1]: v for k, v in single.items() if k.startswith(f"rows_{cfg}/")}
        assert_same(p0, rows, f"local_{cfg}", atol=1e-12)
        assert_same(single, rows, f"local_{cfg}", atol=1e-12)  # one process: its rows are all rows


def test_four_processes_equal_the_single_process_run(tmp_path, single):
    code, output, out = run_launcher(tmp_path, 4, 2, [])
    assert code == 0, output[-3000:]
    results = load(out, 4)
    assert int(results[0]["devices"]) == 8
    for r in results[1:]:
        assert_same(results[0], r, "replicated")
    # 8 devices here, 4 in the reference: each device runs another share of the models, and a
    # member's arithmetic is its own (no reduction across models): the same bits
    assert_same(results[0], single, "replicated")


def test_one_process_in_process_equals_the_launched_runs(single):
    """The in-test run (one device, this interpreter) against the 4-device one: the same bits."""
    from jaxreg.objective import Objective
    from jaxreg.sweeps import sweep
    from jaxreg.config import TrainConfig
    from jaxreg.prepare import prepare_data

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 3))
    y = (X[:, 0] + rng.normal(size=24) > 0).astype(float)
    obj, cfg = Objective("logistic"), TrainConfig(method="minibatch", batch_size=6, n_epochs=2)
    r = sweep(obj, prepare_data(obj, cfg, X, y, X[:8] + 0.5, y[:8]), cfg,
              {"penalty": ["l1", "l2"], "lam": [0.1, 0.01, 0.001], "seed": [0, 1]}, init_scale=0.1, chunk_size=8)
    here = {f"replicated/{j}": np.asarray(v) for j, v in enumerate(jax.tree_util.tree_leaves((r.flat, r.final)))}
    assert_same(here, single, "replicated")


def test_a_dead_peer_stops_the_run_with_a_clear_message(tmp_path):
    code, output, _ = run_launcher(tmp_path, 2, 2, ["die"], timeout=120)
    assert code == 7, output[-3000:]
    assert "process 1 exited with code 7; stopping the other processes" in output
    assert "SCRIPT-OK" not in output


def test_launcher_timeout_and_usage(tmp_path, capsys):
    sleeper = tmp_path / "sleep.py"
    sleeper.write_text("import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.run([sys.executable, "-m", "jaxreg.launch", "-n", "2", "--timeout", "3", "--grace", "1",
                           str(sleeper)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 124, proc.stderr
    assert "timed out after 3 s; stopping every process (still running: [0, 1])" in proc.stderr
    assert "[0] up" in proc.stdout and "[1] up" in proc.stdout
    for pid in map(int, re.findall(r"pid (\d+)", proc.stderr)):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for argv, match in (([], "processes"), (["-n", "2"], "script"), (["-n", "0", "x.py"], "processes"),
                        (["-n", "1", "--cpu-devices", "0", "x.py"], "cpu-devices")):
        with pytest.raises(SystemExit) as e:
            launch.main(argv)
        assert e.value.code == 2
        assert match in capsys.readouterr().err
    assert 1024 <= launch.free_port() < 65536


def test_initialize_alone_is_one_process_and_meshes_check_devices():
    info = distributed.initialize()  # no launcher, no cluster: a no-op
    assert info.process_count == 1 and info.process_index == 0
    mesh = distributed.data_mesh()
    assert mesh.axis_names == ("grid", "data") and mesh.devices.shape == (len(jax.devices()), 1)
    with pytest.raises(ValueError, match="num_processes and process_id"):
        distributed.initialize("127.0.0.1:1")
    assert distributed.combined_digest("ab" * 32) == "ab" * 32
