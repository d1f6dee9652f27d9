"""Shared plumbing for the experiment scripts: data, grids of trainings, atomic files, progress.

No maths lives here: training is :mod:`jaxreg.train` (a grid of it is ``jax.vmap`` of the very
trainer ``jaxreg.train.make_trainer`` returns), figures are :mod:`jaxreg.plots`.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.objective import Objective
from jaxreg.train import Hyper, TrainConfig, TrainData, make_trainer, prepare_data
from jaxreg.atomic import atomic_open

# ----------------------------------------------------------------------------- progress


class Progress:
    """Step names and timings on stderr (silent when ``enabled`` is False)."""

    def __init__(self, enabled: bool = True, prefix: str = "[reproduce]"):
        self.enabled = enabled
        self.prefix = prefix
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        if self.enabled:
            print(f"{self.prefix} {time.perf_counter() - self.t0:7.1f}s  {msg}", file=sys.stderr,
                  flush=True)

    @contextlib.contextmanager
    def step(self, name: str, timings: Optional[dict] = None):
        self.log(f"{name} ...")
        t = time.perf_counter()
        yield
        dt = time.perf_counter() - t
        if timings is not None:
            timings[name] = round(dt, 2)
        self.log(f"{name} done in {dt:.1f}s")


QUIET = Progress(enabled=False)

# ----------------------------------------------------------------------------- files


def _atomic_write(path, write) -> str:
    with atomic_open(path, "w", encoding="utf-8") as f:
        write(f)
    return os.fspath(path)


def script_main(run, doc: str, prefix: str, row_format, argv=None) -> int:
    """The command line shared by the experiment scripts: ``--out``, ``--smoke``, ``--data-dir``;
    runs ``run(out, smoke=..., data=..., progress=...)`` and prints each table row with
    ``row_format(row)``."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default="results")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    out = run(args.out, smoke=args.smoke, data=load_data(args.data_dir), progress=Progress(prefix=prefix))
    for r in out["rows"]:
        print(row_format(r))
    print(f"done in {time.perf_counter() - t:.1f}s")
    return 0


def write_text(path, text: str) -> str:
    """Write ``text`` atomically (temp file + ``os.replace``)."""
    return _atomic_write(path, lambda f: f.write(text))


def to_jsonable(obj):
    """numpy/jax scalars and arrays, tuples, dataclass-like configs -> plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_json(path, obj) -> str:
    """Write ``obj`` as indented JSON atomically."""
    return _atomic_write(path, lambda f: (json.dump(to_jsonable(obj), f, indent=2), f.write("\n")))


def save(fig, out_dir, name: str, files: list) -> None:
    """Save a figure as ``out_dir/name`` (atomic PNG) and note its name in ``files``."""
    from jaxreg.plots import save_figure

    save_figure(fig, os.path.join(out_dir, name))
    files.append(name)


# ----------------------------------------------------------------------------- data


def load_data(data_dir=None, verbose: bool = False) -> dict:
    """Real MNIST via :func:`jaxreg.data.load_mnist` (fetches and verifies it if needed)."""
    from jaxreg.data import load_mnist

    return load_mnist(data_dir, verbose=verbose)


def synthetic_mnist(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> dict:
    """A fake MNIST dict (same keys, dtypes and image shape as ``load_mnist``) for tests and CI.

    Each digit k is a fixed random blob pattern plus noise, so the classes are learnable but not
    trivially separable. Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    protos = []
    for _ in range(10):
        img = np.zeros((28, 28))
        for _ in range(4):
            cy, cx = rng.uniform(6, 22, 2)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 5) ** 2))
        protos.append(img / img.max())
    protos = np.stack(protos)
    common = protos.mean(axis=0)  # shared by every class: the classes overlap

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        strength = rng.uniform(0.15, 0.6, (n, 1, 1))  # some images barely show their class
        imgs = strength * protos[labels] + 0.5 * common + 0.6 * rng.random((n, 28, 28))
        imgs = np.clip(imgs * (rng.random((n, 28, 28)) < 0.7), 0, 1)
        return (imgs * 255).astype(np.uint8), labels

    tr_x, tr_y = make(n_train)
    te_x, te_y = make(n_test)
    return {"train_images": tr_x, "train_labels": tr_y, "test_images": te_x, "test_labels": te_y}


def train_data(objective: Objective, config: TrainConfig, split) -> TrainData:
    """A validated :class:`TrainData` from a ``jaxreg.data.Split``."""
    return prepare_data(objective, config, split.X_train, split.y_train, split.X_holdout, split.y_holdout,
                        split.X_test, split.y_test)


# ----------------------------------------------------------------------------- grids


@functools.lru_cache(maxsize=32)
def _grid_trainer(objective: Objective, config: TrainConfig, batched_params: bool):
    """jit(vmap(trainer)) over a leading grid axis of ``Hyper`` (and of ``params0``)."""
    trainer = make_trainer(objective, config)
    return jax.jit(jax.vmap(trainer, in_axes=(0, 0 if batched_params else None, None, None)))


def hyper_grid(n: int, *, learning_rate=0.1, decay_time=1.0, l2=0.0, l1=0.0, dtype=jnp.float32) -> Hyper:
    """A :class:`Hyper` whose fields are ``(n,)`` arrays (scalars are broadcast)."""
    def col(v):
        return jnp.broadcast_to(jnp.asarray(v, dtype), (n,))
    return Hyper(learning_rate=col(learning_rate), decay_time=col(decay_time), l2=col(l2), l1=col(l1))


def run_grid(objective: Objective, config: TrainConfig, hypers: Hyper, data: TrainData, key,
             params0=None):
    """Train every member of a grid in ONE vmapped, jitted program; results as numpy.

    hypers: a :class:`Hyper` of ``(G,)`` arrays. params0: one params pytree shared by all members
    (default zeros) or a pytree with a leading ``(G,)`` axis (e.g. one init per member).
    """
    n_features = data.train.X.shape[1]
    dtype = data.train.X.dtype
    G = int(np.shape(hypers.learning_rate)[0])
    if params0 is None:
        params0 = objective.init_params(n_features, dtype=dtype)
    lead = jax.tree_util.tree_leaves(params0)[0]
    batched = lead.ndim == (2 if objective.is_multiclass else 1) + 1 and lead.shape[0] == G
    hypers = Hyper(*(jnp.asarray(v, dtype) for v in hypers))
    out = _grid_trainer(objective, config, batched)(hypers, params0, data, key)
    return jax.tree_util.tree_map(np.asarray, jax.block_until_ready(out))


def accuracy_np(objective: Objective, params, X, y) -> float:
    from jaxreg.objective import Batch

    return float(objective.accuracy(jax.tree_util.tree_map(jnp.asarray, params),
                                    Batch(jnp.asarray(X), jnp.asarray(y))))


def key_of(seed: int):
    return jax.random.PRNGKey(seed)


def jsonable_config(cfg: Any) -> dict:
    """A dataclass config as a JSON-ready dict."""
    import dataclasses

    return to_jsonable(dataclasses.asdict(cfg)) if dataclasses.is_dataclass(cfg) else to_jsonable(cfg)
