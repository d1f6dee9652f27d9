"""Beyond one process: jaxreg's grids on JAX's multi-process runtime.

One machine (the launcher starts N processes on 127.0.0.1, see :mod:`jaxreg.launch`)::

    python -m jaxreg.launch --processes 2 --cpu-devices 2 my_sweep.py

A cluster: the same script under the cluster's launcher, which JAX reads the layout from::

    srun --ntasks=4 --kill-on-bad-exit=1 python my_sweep.py          # SLURM

In ``my_sweep.py``, first of all (before any JAX computation)::

    from jaxreg import distributed
    distributed.initialize()     # no-op when the script runs alone
    res = sweep(...)             # as usual: every process gets the full result

The grid's model axis is sharded over every device of every process; inputs are built with
``jax.make_array_from_callback`` (each process feeds its own devices' shards) and outputs
gathered with ``multihost_utils.process_allgather``, so every process returns the same result.

Per-host data (rows too many to replicate): each process passes only its own rows to
:func:`process_local_data`, which returns a :class:`~jaxreg.config.TrainData` of global arrays
(``jax.make_array_from_process_local_data``) on :func:`data_mesh`, a 2-D mesh ``("grid",
"data")`` whose column ``j`` holds process ``j``'s devices. The engine then shards models over
``"grid"`` (a process's own devices) and rows over ``"data"`` (the processes): every reduction
over examples (the loss, its gradient, accuracies) is summed across processes by XLA, so each
model trains on all rows, as if they were replicated: global row ``i`` is row ``i - j·n_local``
of process ``j``.
"""
from __future__ import annotations

import dataclasses
import os
from typing import NamedTuple, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxreg.multihost import allgather, combined_digest, to_host
from jaxreg.prepare import check_data, prepare_data

__all__ = ["ENV_COORDINATOR", "ENV_NUM_PROCESSES", "ENV_PROCESS_ID", "ENV_CPU_DEVICES", "CLUSTER_ENV",
           "ProcessInfo", "initialize", "data_mesh", "data_mesh_of", "model_mesh", "put", "process_local_data"]

ENV_COORDINATOR = "JAXREG_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAXREG_NUM_PROCESSES"
ENV_PROCESS_ID = "JAXREG_PROCESS_ID"
ENV_CPU_DEVICES = "JAXREG_CPU_DEVICES"
CLUSTER_ENV = ("SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE")  # JAX detects these layouts itself


class ProcessInfo(NamedTuple):
    process_index: int
    process_count: int
    local_devices: tuple
    devices: tuple


def _info() -> ProcessInfo:
    return ProcessInfo(jax.process_index(), jax.process_count(), tuple(jax.local_devices()), tuple(jax.devices()))


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, *, cpu_devices: Optional[int] = None,
               timeout_s: int = 120, heartbeat_timeout_s: int = 30) -> ProcessInfo:
    """Join the multi-process runtime; call before any JAX computation. Returns this process's
    :class:`ProcessInfo`.

    The layout comes from the arguments, else from :mod:`jaxreg.launch`'s environment
    (``JAXREG_COORDINATOR_ADDRESS``, ``JAXREG_NUM_PROCESSES``, ``JAXREG_PROCESS_ID``), else from a
    cluster launcher JAX detects (SLURM's ``srun``, Open MPI's ``mpirun``); with none of them the
    script runs as one process and this only applies ``cpu_devices``. ``cpu_devices`` (default
    ``$JAXREG_CPU_DEVICES``): CPU devices per process (``jax_num_cpu_devices``). Cross-process
    CPU collectives use gloo. ``timeout_s`` bounds the wait for the other processes;
    ``heartbeat_timeout_s`` how long a silent peer is tolerated before the runtime fails.
    """
    from jax._src import distributed as jax_distributed

    if jax_distributed.global_state.client is not None:
        return _info()
    cpu_devices = cpu_devices if cpu_devices is not None else os.environ.get(ENV_CPU_DEVICES) or None
    if cpu_devices is not None:
        n = int(cpu_devices)
        if n < 1:
            raise ValueError(f"cpu_devices must be >= 1, got {cpu_devices!r}")
        jax.config.update("jax_num_cpu_devices", n)  # raises if the backend already started
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR)
    if num_processes is None and os.environ.get(ENV_NUM_PROCESSES):
        num_processes = int(os.environ[ENV_NUM_PROCESSES])
    if process_id is None and os.environ.get(ENV_PROCESS_ID):
        process_id = int(os.environ[ENV_PROCESS_ID])
    kw = dict(initialization_timeout=int(timeout_s), heartbeat_timeout_seconds=int(heartbeat_timeout_s),
              shutdown_timeout_seconds=int(timeout_s))
    if coordinator_address is not None:
        if num_processes is None or process_id is None:
            raise ValueError("give num_processes and process_id with coordinator_address "
                             f"(or set {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID})")
        jax.distributed.initialize(coordinator_address, int(num_processes), int(process_id), **kw)
    elif any(int(os.environ.get(k, "1")) > 1 for k in CLUSTER_ENV):
        jax.distributed.initialize(**kw)
    return _info()


def data_mesh(devices=None) -> Mesh:
    """The per-host-data mesh: axes ``("grid", "data")``, shape (devices per process, processes);
    column ``j`` is process ``j``'s devices (sorted by id). ``devices``: default ``jax.devices()``."""
    devices = list(jax.devices() if devices is None else devices)
    by_process = {}
    for d in devices:
        by_process.setdefault(d.process_index, []).append(d)
    if len({len(v) for v in by_process.values()}) != 1:
        raise ValueError("devices: every process must contribute the same number of devices, got "
                         + str({p: len(v) for p, v in sorted(by_process.items())}))
    cols = [sorted(by_process[p], key=lambda d: d.id) for p in sorted(by_process)]
    return Mesh(np.array(cols, dtype=object).T, ("grid", "data"))


def data_mesh_of(data) -> Optional[Mesh]:
    """The mesh with a ``"data"`` axis the arrays of ``data`` are sharded on (None if none)."""
    meshes = {x.sharding.mesh for x in jax.tree_util.tree_leaves(data)
              if isinstance(x, jax.Array) and isinstance(x.sharding, NamedSharding)
              and "data" in x.sharding.mesh.axis_names}
    if len(meshes) > 1:
        raise ValueError("data: its arrays are sharded on more than one mesh; build them with one data_mesh()")
    return meshes.pop() if meshes else None


def model_mesh(data, devices) -> Mesh:
    """The mesh a grid's models are sharded on (axis ``"grid"``): the 2-D mesh of per-host data
    (:func:`process_local_data`), else ``Mesh(devices, ("grid",))``."""
    mesh = data_mesh_of(data)
    if mesh is None:
        return Mesh(np.asarray(devices, dtype=object), ("grid",))
    if set(devices) != set(mesh.devices.flat):
        raise ValueError("devices must be those of the data's mesh (distributed.process_local_data); "
                         "leave devices=None")
    return mesh


def put(x, sharding):
    """A global array with ``sharding`` from the host array ``x`` (identical on every process)."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def process_local_data(objective, config, X_train, y_train, X_holdout=None, y_holdout=None,
                       X_test=None, y_test=None, *, mesh: Optional[Mesh] = None, dtype=None):
    """This process's rows of each set -> a :class:`~jaxreg.config.TrainData` of global arrays,
    rows sharded over the processes of ``mesh`` (default :func:`data_mesh`), in process order.

    Each process passes its own ``n_local`` rows (the same count on every process, per set) and
    the same sets (train; hold-out and test optional). The local rows are checked as
    :func:`jaxreg.trainer.prepare_data` checks them (ValueError naming the argument); the batch
    size and the hold-out set needed by ``config`` are checked against the global data.
    """
    mesh = data_mesh() if mesh is None else mesh
    if tuple(mesh.axis_names) != ("grid", "data"):
        raise ValueError(f"mesh must have the axes ('grid', 'data') (see data_mesh), got {mesh.axis_names}")
    loose = dataclasses.replace(config, method="full_batch", batch_size=None, early_stopping=None, stop_tol=None)
    local = prepare_data(objective, loose, X_train, y_train, X_holdout, y_holdout, X_test, y_test, dtype=dtype)
    counts = np.array([-1 if b is None else b.X.shape[0] for b in local])
    every = allgather(counts)
    for i, name in enumerate(("X_train", "X_holdout", "X_test")):
        if len(set(every[:, i].tolist())) != 1:
            raise ValueError(f"{name}: every process must pass the same number of rows (or none), got "
                             f"{every[:, i].tolist()} (per process)")
    n_proc = mesh.shape["data"]
    rows = NamedSharding(mesh, P("data"))

    def global_array(a):
        a = np.asarray(a)
        return jax.make_array_from_process_local_data(rows, a, (a.shape[0] * n_proc,) + a.shape[1:])

    data = jax.tree_util.tree_map(global_array, local)
    return check_data(objective, config, data)
