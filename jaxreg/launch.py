"""Run one script as N cooperating JAX processes on this machine (127.0.0.1).

    python -m jaxreg.launch --processes 2 --cpu-devices 2 my_sweep.py [ARGS ...]
    python -m jaxreg.launch --processes 4 --timeout 600 -m my_package.my_module [ARGS ...]

Each process gets ``JAXREG_COORDINATOR_ADDRESS`` (127.0.0.1 and a free port),
``JAXREG_NUM_PROCESSES``, ``JAXREG_PROCESS_ID`` and, with ``--cpu-devices K``,
``JAXREG_CPU_DEVICES=K`` and ``JAX_PLATFORMS=cpu``; the script calls
:func:`jaxreg.distributed.initialize` first. Every line a process prints is forwarded with a
``[i]`` prefix. When a process fails (non-zero exit or a signal) the others are stopped
(SIGTERM, then SIGKILL after ``--grace`` seconds) and the launcher exits with that status,
naming the process; ``--timeout`` bounds the whole run (exit 124). On a cluster use its own
launcher instead (e.g. SLURM's ``srun --kill-on-bad-exit=1``).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence

from jaxreg import distributed

__all__ = ["free_port", "launch", "main"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _forward(stream, sink, prefix: str) -> None:
    for line in iter(stream.readline, b""):
        sink.write(prefix + line.decode(errors="replace"))
        sink.flush()
    stream.close()


def _stop(procs, grace: float) -> None:
    """SIGTERM every live process, SIGKILL those still alive after ``grace`` seconds."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _why(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


def launch(command: Sequence[str], processes: int, *, cpu_devices: Optional[int] = None, timeout: float = 3600.0,
           grace: float = 5.0, port: Optional[int] = None, log=None) -> int:
    """Start ``processes`` copies of ``command`` (argv) with the multi-process environment (module
    docstring); wait for them; returns the exit status (0 when every process exited with 0)."""
    log = log or (lambda msg: print(f"[jaxreg.launch] {msg}", file=sys.stderr, flush=True))
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    address = f"127.0.0.1:{port or free_port()}"
    env = {**os.environ, distributed.ENV_COORDINATOR: address, distributed.ENV_NUM_PROCESSES: str(processes),
           "JAX_COORDINATOR_BIND_ADDRESS": address}
    if cpu_devices is not None:
        env.update({distributed.ENV_CPU_DEVICES: str(cpu_devices), "JAX_PLATFORMS": "cpu"})
    procs, threads = [], []
    stopping = {"signal": None}

    def on_signal(signum, frame):
        stopping["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for i in range(processes):
            p = subprocess.Popen(list(command), env={**env, distributed.ENV_PROCESS_ID: str(i)},
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append(p)
            log(f"process {i}: pid {p.pid}")
            for stream, sink in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
                t = threading.Thread(target=_forward, args=(stream, sink, f"[{i}] "), daemon=True)
                t.start()
                threads.append(t)
        log(f"{processes} processes, coordinator {address}")
        start, status = time.monotonic(), None
        while status is None:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                log(f"process {i} {_why(code)}; stopping the other processes")
                status = 128 - code if code < 0 else code
            elif all(c == 0 for c in codes):
                status = 0
            elif stopping["signal"] is not None:
                log(f"received signal {stopping['signal']}; stopping every process")
                status = 128 + stopping["signal"]
            elif time.monotonic() - start > timeout:
                log(f"timed out after {timeout:g} s; stopping every process "
                    f"(still running: {[i for i, c in enumerate(codes) if c is None]})")
                status = 124
            else:
                time.sleep(0.05)
    finally:
        _stop(procs, grace)
        for t in threads:
            t.join(5.0)
        for s, h in old.items():
            signal.signal(s, h)
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jaxreg.launch", description=__doc__.splitlines()[0])
    ap.add_argument("--processes", "-n", type=int, required=True, help="number of processes")
    ap.add_argument("--cpu-devices", type=int, default=None, help="forced CPU devices per process (JAX_PLATFORMS=cpu)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before every process is stopped (exit 124)")
    ap.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL when stopping")
    ap.add_argument("--port", type=int, default=None, help="coordinator port (default: a free one)")
    ap.add_argument("-m", dest="module", default=None, help="run a module (as python -m) instead of a script")
    ap.add_argument("script", nargs="?", help="the script to run in every process")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    a = ap.parse_args(argv)
    if a.module is None and a.script is None:
        ap.error("give a script or -m MODULE")
    if a.processes < 1:
        ap.error(f"--processes must be >= 1, got {a.processes}")
    if a.cpu_devices is not None and a.cpu_devices < 1:
        ap.error(f"--cpu-devices must be >= 1, got {a.cpu_devices}")
    rest = ([a.script] if a.script else []) + a.args
    command = [sys.executable, "-m", a.module, *rest] if a.module else [sys.executable, *rest]
    return launch(command, a.processes, cpu_devices=a.cpu_devices, timeout=a.timeout, grace=a.grace, port=a.port)


if __name__ == "__main__":
    sys.exit(main())
