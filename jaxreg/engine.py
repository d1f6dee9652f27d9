"""The grid engine: G models trained by one compiled program, ``jit(vmap(trainer))``, in chunks,
sharded over devices.

    out = train_models(objective, config, data, hypers, keys=keys, params0=params0)
    out.result.params["W"]      # (G, d[, C]): one row per model, in input order
    out.final["holdout_acc"]    # (G,): metrics of each model's selected weights

Per model (a leading ``(G,)`` axis): the :class:`~jaxreg.config.Hyper` leaves (always), and
optionally the keys, the initial weights ``params0``, the ``init_scale`` and any
``model_data`` (e.g. a fold's weight masks) that ``merge_data(data, model_data)`` folds into the
shared :class:`~jaxreg.config.TrainData` inside the program. Whatever is shared enters the
vmapped program unbatched (``in_axes=None``), so e.g. a shared key draws one shuffle for all.

Initial weights: ``params0`` (shared, or one per model), else N(0, init_scale²) drawn from
``fold_in(key, 1)`` of each model's key inside the program (zeros when the scale is 0), as
:func:`jaxreg.trainer.train` does. So member ``g`` equals ``train(..., key=keys[g])``.

Chunks: ``chunk_size`` models per call (default ``memory_budget // model_bytes``), a multiple of
the device count; the last chunk is padded by repeating its last model, so one program serves
every chunk. The outputs are preallocated host arrays each chunk is copied into (host memory:
the result plus one chunk). ``keep_history=False`` drops the per-record history of each chunk.
``checkpoint_dir``: each finished chunk is written there atomically, keyed by fingerprints of
every input (:mod:`jaxreg.checkpoint`); a rerun loads the chunks it finds instead of training
them, so a killed grid resumes where it stopped and returns the same bits.

Devices and processes: the model axis is sharded over ``Mesh(devices, ("grid",))`` with
``NamedSharding(mesh, P("grid"))``, shared inputs replicated (``P()``); per-host data
(:func:`jaxreg.distributed.process_local_data`) bring their own 2-D mesh ``("grid", "data")``,
rows sharded over the processes. Inputs are built with ``jax.make_array_from_callback`` (each
process feeds only its addressable shards) and outputs gathered with
``multihost_utils.process_allgather``, so after :func:`jaxreg.distributed.initialize` every
process gets the full result (:mod:`jaxreg.distributed`); process 0 alone writes checkpoints
and shows progress.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxreg import checkpoint, distributed, validation
from jaxreg.distributed import model_mesh, put
from jaxreg.multihost import to_host
from jaxreg.layout import check_layout, model_bytes, opt_state_copies, plan_chunks  # noqa: F401 (re-exported)
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.objective import Objective
from jaxreg.prepare import SETS, as_key, check_data, check_params
from jaxreg.progress import ProgressBar
from jaxreg.trainer import TrainResult, evaluate, make_trainer

__all__ = ["METRICS", "EngineResult", "train_models", "stack_hypers"]

METRICS = tuple(f"{s}_{m}" for s in SETS for m in ("loss", "acc"))


class EngineResult(NamedTuple):
    """result: a :class:`~jaxreg.trainer.TrainResult` whose leaves have a leading ``(G,)`` axis
    (NumPy, input order); final: ``{"train_loss", ..., "test_acc"}`` -> ``(G,)``, the mean data
    loss and accuracy of each model's selected weights (NaN for a set not given); chunk_size,
    n_chunks: how the models were run; n_loaded: chunks read from ``checkpoint_dir``."""

    result: TrainResult
    final: dict
    chunk_size: int
    n_chunks: int
    n_loaded: int = 0  # chunks read back from checkpoint_dir instead of trained


@functools.lru_cache(maxsize=32)
def _program(objective: Objective, config: TrainConfig, key_axis, params_axis, init_inside: bool,
             shared_scale: Optional[float], merge_data: Optional[Callable]):
    """jit(vmap(one model)): (hyper, key, params0, scale, model_data, data) -> (TrainResult, final).
    ``shared_scale``: the init scale as a static float, or None when it is per model (traced)."""
    trainer = make_trainer(objective, config)

    def one(hyper, key, params0, scale, model_data, data):
        scale = shared_scale if shared_scale is not None else scale
        if merge_data is not None:
            data = merge_data(data, model_data)
        dtype = data.train.X.dtype
        if init_inside:
            params0 = objective.init_params(data.train.X.shape[1], jax.random.fold_in(key, 1), scale, dtype)
        res = trainer(hyper, params0, data, key)
        final = {}
        for name, batch in zip(SETS, data):
            loss, acc = evaluate(objective, res.params, batch)
            final[f"{name}_loss"], final[f"{name}_acc"] = jnp.asarray(loss, dtype), jnp.asarray(acc, dtype)
        return res, final

    md_axis = None if merge_data is None else 0
    scale_axis = None if shared_scale is not None else 0
    return jax.jit(jax.vmap(one, in_axes=(0, key_axis, params_axis, scale_axis, md_axis, None)))


def _n_models(hypers: Hyper) -> int:
    sizes = {np.shape(v)[0] if np.ndim(v) else None for v in jax.tree_util.tree_leaves(hypers)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"hypers must hold arrays with one common leading model axis, got leading sizes {sizes}")
    G = sizes.pop()
    if G < 1:
        raise ValueError("hypers must describe at least one model")
    return G


def _keys(keys, G: int):
    """(keys, batched?): one key or int seed is shared by every model; G stacked keys (raw
    ``(G, 2)`` uint32 or typed ``(G,)``) give one per model."""
    if keys is None or isinstance(keys, (int, np.integer)):
        return as_key(keys, "keys"), False
    typed = isinstance(keys, jax.Array) and jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if typed:  # host arrays are sliced into chunks: threefry keys as their raw data (the same bits)
        if str(jax.random.key_impl(keys)) != "threefry2x32":
            raise ValueError(f"keys: typed keys of the {jax.random.key_impl(keys)} generator are not supported; "
                             "use jax.random.key(seed) (threefry) or an int seed")
        keys, typed = jax.random.key_data(keys), False
    shape = np.shape(keys)
    if shape == (() if typed else (2,)):
        return as_key(keys, "keys"), False
    if shape == ((G,) if typed else (G, 2)) and (typed or np.asarray(keys).dtype == np.uint32):
        return keys, True
    raise ValueError(f"keys must be one jax.random key (shared), an int seed, or {G} stacked keys "
                     f"(shape ({G}, 2) uint32), got shape {shape}")


def train_models(objective: Objective, config: TrainConfig, data: TrainData, hypers: Hyper, *,
                 keys=None, params0: Any = None, init_scale=0.0, model_data: Any = None,
                 merge_data: Optional[Callable] = None, chunk_size: Optional[int] = None,
                 memory_budget: float = 2 * 2**30, devices=None, progress=None, checkpoint_dir=None,
                 keep_history: bool = True) -> EngineResult:
    """Train G models in one compiled program (module docstring); returns an :class:`EngineResult`.

    hypers: a :class:`Hyper` whose every leaf has a leading ``(G,)`` axis (already validated,
      e.g. by :func:`jaxreg.sweeps.sweep`). keys: one key or int seed (shared) or ``(G,)``
      stacked keys. params0: shared params, or params with a leading ``(G,)`` axis, or None.
    init_scale: a float, or ``(G,)`` scales (an ``init_scale`` grid axis).
    model_data, merge_data: per-model pytree (leading ``(G,)`` axis) and a static
      ``(data, model_data_of_one_model) -> TrainData`` that merges it inside the program.
    chunk_size, memory_budget: models per compiled call (default ``memory_budget //
      model_bytes``). devices: default ``jax.devices()``. progress: None (a bar on a terminal),
      True/False, or a :class:`~jaxreg.progress.ProgressBar` to advance by models.
    checkpoint_dir: a folder to keep finished chunks in (:mod:`jaxreg.checkpoint`); a rerun
      with the same inputs loads them instead of training them again.
    keep_history: False drops each chunk's per-record history once it is trained
      (``result.history`` is None): the result then grows with the models, not the records.
    """
    check_data(objective, config, data)
    G = _n_models(hypers)
    dtype = data.train.X.dtype
    d = data.train.X.shape[1]
    keys, keys_batched = _keys(keys, G)
    params_axis, init_inside = None, params0 is None
    if params0 is not None:
        lead = jax.tree_util.tree_leaves(params0)[0]
        batched = np.ndim(lead) == len(objective.param_shapes(d)["W"]) + 1
        params0 = check_params(objective, params0, d, dtype, "params0", (G,) if batched else ())
        params_axis = 0 if batched else None
    scale_batched = np.ndim(init_scale) == 1
    if scale_batched:
        init_scale = validation.check_values(init_scale, "init_scale", low=0.0)
        if init_scale.shape != (G,):
            raise ValueError(f"init_scale must be a float or have one entry per model ({G}), got {init_scale.shape}")
    else:
        init_scale = validation.check_scalar(init_scale, "init_scale", low=0.0)
    if (model_data is None) != (merge_data is None):
        raise ValueError("model_data and merge_data go together")
    if not isinstance(keep_history, bool):
        raise ValueError(f"keep_history must be True or False, got {keep_history!r}")
    chunk_size, devices = check_layout(chunk_size, memory_budget, devices)
    mesh = distributed.model_mesh(data, devices)
    shard, replicated = NamedSharding(mesh, P("grid")), NamedSharding(mesh, P())
    c, n_chunks = plan_chunks(objective, config, data, G, chunk_size=chunk_size, memory_budget=memory_budget,
                              n_devices=mesh.shape["grid"], extra=tuple(sorted(hypers.extra)))
    program = _program(objective, config, 0 if keys_batched else None, params_axis, init_inside,
                       None if scale_batched else float(init_scale), merge_data)
    shared = lambda tree: jax.tree_util.tree_map(  # noqa: E731
        lambda a: a if distributed.data_mesh_of(a) is not None else put(a, replicated), tree)
    data_dev = shared(data)
    key_dev = None if keys_batched else shared(keys)
    p0_dev = None if params0 is None or params_axis == 0 else shared(params0)
    hypers = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), hypers)
    scales = np.asarray(init_scale, dtype) if scale_batched else None
    padded = np.concatenate([np.arange(G), np.full(n_chunks * c - G, G - 1)])

    def inputs(k):
        members = padded[k * c:(k + 1) * c]
        pick = lambda tree: jax.tree_util.tree_map(lambda a: put(np.asarray(a)[members], shard), tree)  # noqa: E731
        return (pick(hypers), pick(keys) if keys_batched else key_dev, pick(params0) if params_axis == 0 else p0_dev,
                None if scales is None else pick(scales), None if model_data is None else pick(model_data), data_dev)

    def kept(out):  # what is kept of one chunk's outputs
        return out if keep_history else (out[0]._replace(history=None), out[1])

    like = kept(jax.eval_shape(program, *inputs(0)))  # the output structure; nothing is compiled
    store = None
    if checkpoint_dir is not None:
        parts = checkpoint.fingerprints(data, objective=objective, config=config, hypers=hypers, keys=keys,
                                        params0=params0, init_scale=init_scale, model_data=model_data,
                                        merge_data=merge_data)
        store = checkpoint.ChunkStore(checkpoint_dir, parts, {"n_models": G, "chunk_size": c, "keep_history": keep_history},
                                      writer=jax.process_index() == 0).open()
    outputs = jax.tree_util.tree_map(lambda s: np.empty((G,) + s.shape[1:], s.dtype), like)

    def fill(k, out):  # the chunk's real (unpadded) members into the preallocated outputs
        rows = slice(k * c, min((k + 1) * c, G))
        jax.tree_util.tree_map(lambda dst, src: dst.__setitem__(rows, src[:rows.stop - rows.start]), outputs, out)

    done = np.zeros(n_chunks, bool)
    for k in range(n_chunks if store is not None else 0):
        out = store.load(k, like)
        if out is not None:
            fill(k, out)
            done[k] = True
    done = distributed.allgather(done).all(axis=0)  # held by every process (else trained again by all)
    bar = progress if isinstance(progress, ProgressBar) else ProgressBar(
        G, unit="models", enabled=progress if jax.process_index() == 0 else False)
    for k in range(n_chunks):
        keep = min(c, G - k * c)
        if done[k]:
            bar.skip(keep)
            continue
        out = jax.tree_util.tree_map(to_host, kept(program(*inputs(k))))
        if store is not None:
            store.save(k, out)
        fill(k, out)
        del out  # the chunk's outputs go before the next chunk runs
        bar.advance(keep)
    result, final = outputs
    return EngineResult(result, final, c, n_chunks, int(done.sum()))


def stack_hypers(n: int, hyper: Hyper = Hyper(), **columns) -> Hyper:
    """A :class:`Hyper` of per-model arrays: ``hyper``'s values broadcast to a leading ``(n,)``
    axis, overridden by ``columns`` (a field name, or an ``extra`` name, -> n values)."""
    def per_model(name, v):
        a = np.asarray(v, np.float64)
        if a.ndim == 0 or a.shape[0] != n:
            raise ValueError(f"{name} must have one entry per model ({n}), got shape {a.shape}")
        return a

    def broadcast(v):
        a = np.asarray(v, np.float64)
        return np.broadcast_to(a, (n,) + a.shape)

    fields = {f: per_model(f, columns.pop(f)) if f in columns else broadcast(getattr(hyper, f))
              for f in Hyper._fields if f != "extra"}
    extra = {k: broadcast(v) for k, v in dict(hyper.extra).items()}
    extra.update({k: per_model(k, v) for k, v in columns.items()})
    return Hyper(**fields, extra=extra)
