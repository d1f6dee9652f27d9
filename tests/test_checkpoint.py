"""Resumable sweeps: fingerprints that identify a grid's inputs (stable across processes), a
sweep killed by SIGKILL in the middle of writing a chunk and resumed to the very bits of an
uninterrupted run, and a folder of another grid refused with the part that differs named."""
import functools
import os
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

from jaxreg import checkpoint, engine
from jaxreg.checkpoint import fingerprint
from jaxreg.objective import Objective
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from jaxreg.objective import Objective
from jaxreg import TrainConfig, prepare_data
OBJ = Objective("logistic")
CFG = TrainConfig(method="minibatch", batch_size=8, n_epochs=4, eval_every=2)
GRID = {"penalty": ["l1", "l2"], "lam": [0.1, 0.01], "learning_rate": [0.1, 0.5], "seed": [0, 1]}
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3)); y = (X @ [1.5, -1.0, 0.5] + rng.normal(size=40) > 0).astype(float)
DATA = prepare_data(OBJ, CFG, X, y, X[:12] + 0.3, y[:12])
"""
_setup = {}
exec(SETUP, _setup)  # the same data here as in the killed subprocess
OBJ, CFG, GRID, DATA = (_setup[k] for k in ("OBJ", "CFG", "GRID", "DATA"))  # 16 models

KILLED = SETUP + textwrap.dedent("""
    import os, signal, sys
    import jaxreg.checkpoint as C
    from jaxreg.atomic import atomic_open
    from jaxreg.sweeps import sweep
    save, saves = C.ChunkStore.save, []
    def save_then_die(self, k, tree):
        saves.append(k)
        if len(saves) == 3:  # the third chunk: half its bytes written, then SIGKILL
            with atomic_open(self.chunk_path(k), "wb") as f:
                f.write(b"PK\\x03\\x04 half a zip file")
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        save(self, k, tree)
    C.ChunkStore.save = save_then_die
    sweep(OBJ, DATA, CFG, GRID, key=3, init_scale=0.1, chunk_size=4, checkpoint_dir=sys.argv[1])
    print("NOT KILLED")
""")


def leaves_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def run_sweep(**kw):
    return sweep(OBJ, DATA, CFG, GRID, key=3, init_scale=0.1, chunk_size=4, **kw)


@pytest.fixture(scope="module")
def uninterrupted():
    return run_sweep()


def test_sigkill_mid_sweep_then_resume_gives_the_same_bits(tmp_path, uninterrupted, monkeypatch):
    folder = tmp_path / "ck"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(folder)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    sub = folder / "batch_size-None"
    names = sorted(os.listdir(sub))  # two chunks written, the third's temp file left behind
    assert names[1:] == ["chunk-00000.npz", "chunk-00001.npz", "manifest.json"], names
    assert names[0].startswith(".chunk-00002.npz.") and names[0].endswith(".partial")
    seen = []
    train_models = engine.train_models
    monkeypatch.setattr(engine, "train_models", lambda *a, **k: (seen.append(out := train_models(*a, **k)), out)[1])
    resumed = run_sweep(checkpoint_dir=folder)
    assert [o.n_loaded for o in seen] == [2]  # chunks 0 and 1 read back, 2 and 3 trained here
    leaves_equal(resumed.flat, uninterrupted.flat)
    leaves_equal(resumed.final, uninterrupted.final)
    # the dead writer's temp file is gone; every chunk is now on disk
    assert sorted(os.listdir(sub)) == [f"chunk-0000{k}.npz" for k in range(4)] + ["manifest.json"]
    again = run_sweep(checkpoint_dir=folder)
    assert [o.n_loaded for o in seen] == [2, 4]
    leaves_equal(again.flat, uninterrupted.flat)


def test_another_grid_data_or_key_in_the_same_folder_is_refused(tmp_path, uninterrupted):
    folder = tmp_path / "ck"
    run_sweep(checkpoint_dir=folder)
    X2 = np.asarray(DATA.train.X).copy()
    X2[0, 0] += 1e-9
    data2 = DATA._replace(train=DATA.train._replace(X=X2))
    cases = [(dict(grid={**GRID, "lam": [0.1, 0.02]}), r"grid differs"),
             (dict(data=data2), r"data differs"),
             (dict(key=4), r"key differs"),
             (dict(config=TrainConfig(method="minibatch", batch_size=8, n_epochs=4, eval_every=2, momentum=0.5)),
              r"config differs"),
             (dict(keep_history=False), r"keep_history differs")]
    for change, match in cases:
        kw = dict(objective=OBJ, data=DATA, config=CFG, grid=GRID, key=3, init_scale=0.1, chunk_size=4)
        kw.update(change)
        with pytest.raises(ValueError, match=f"checkpoint_dir .* holds the chunks of another grid: {match}"):
            sweep(checkpoint_dir=folder, **kw)
    hypers = engine.stack_hypers(16, Hyper(), learning_rate=np.linspace(0.1, 1.0, 16))
    engine.train_models(OBJ, CFG, DATA, hypers, chunk_size=4, checkpoint_dir=tmp_path / "e")
    with pytest.raises(ValueError, match=r"layout chunk_size \(4 there, 8 here\)"):
        engine.train_models(OBJ, CFG, DATA, hypers, chunk_size=8, checkpoint_dir=tmp_path / "e")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir .* is a file"):
        run_sweep(checkpoint_dir=tmp_path / "file")
    for bad in (5, "", ["a"]):
        with pytest.raises(ValueError, match="checkpoint_dir must be a folder path"):
            run_sweep(checkpoint_dir=bad)


def test_keep_history_false_keeps_only_final_metrics(uninterrupted, tmp_path):
    small = run_sweep(keep_history=False, checkpoint_dir=tmp_path / "small")
    assert small.history is None and small.flat.history is None
    leaves_equal(small.final, uninterrupted.final)
    leaves_equal(small.flat._replace(history=None), uninterrupted.flat._replace(history=None))
    assert small.records(("lam", "holdout_acc", "diverged")) == uninterrupted.records(("lam", "holdout_acc", "diverged"))
    with pytest.raises(ValueError, match="keep_history"):
        run_sweep(keep_history="no")


def scaled(schedule, scale=0.5):
    return optax.scale_by_learning_rate(lambda c: scale * schedule(c))


def test_fingerprints_are_stable_and_tell_inputs_apart():
    cfg = TrainConfig(optimizer=scaled, n_epochs=3)
    here = fingerprint((OBJ, cfg, DATA))
    code = SETUP + textwrap.dedent("""
        import optax
        from jaxreg.checkpoint import fingerprint
        def scaled(schedule, scale=0.5):
            return optax.scale_by_learning_rate(lambda c: scale * schedule(c))
        scaled.__module__ = MODULE  # a function is known by its module, name and code
        print(fingerprint((OBJ, TrainConfig(optimizer=scaled, n_epochs=3), DATA)))
    """).replace("MODULE", repr(scaled.__module__))
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": REPO}, cwd=REPO)
    assert there.returncode == 0, there.stderr[-2000:]
    assert there.stdout.strip() == here  # another interpreter, the same digest
    different = [
        (np.zeros(3), np.zeros(3, np.float32)), (np.zeros(3), np.zeros((3, 1))), (np.zeros(3), np.ones(3)),
        ((1, 2), [1, 2]), (1, 1.0), (0.1, float(np.nextafter(0.1, 1.0))), ({"a": 1}, {"b": 1}), (None, 0),
        (TrainConfig(), TrainConfig(momentum=0.5)), (Objective("logistic"), Objective("squared")),
        (lambda x: x + 1, lambda x: x + 2), (functools.partial(scaled, scale=0.1), functools.partial(scaled, scale=0.2)),
        (Hyper(), Hyper(extra={"beta": 0.0})), (jax.random.PRNGKey(0), jax.random.PRNGKey(1)),
        (jax.random.key(0), jax.random.PRNGKey(0)),
    ]
    for a, b in different:
        assert fingerprint(a) != fingerprint(b), (a, b)

    def closure(k):
        return lambda x: x * k

    assert fingerprint(closure(2)) != fingerprint(closure(3)) and fingerprint(closure(2)) == fingerprint(closure(2))
    assert fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1})
    with pytest.raises(ValueError, match="cannot fingerprint a builtins.object"):
        fingerprint({"x": object()})
    assert set(checkpoint.software()) == {"jax", "jaxlib", "numpy", "optax"}


def test_unreadable_chunks_are_trained_again(tmp_path, uninterrupted):
    folder = tmp_path / "ck"
    run_sweep(checkpoint_dir=folder)
    (folder / "batch_size-None" / "chunk-00001.npz").write_bytes(b"not a zip")  # e.g. a disk error
    store = checkpoint.ChunkStore(folder / "batch_size-None", {}, {})
    assert store.load(1, {"a": jax.ShapeDtypeStruct((2,), np.float64)}) is None
    leaves_equal(run_sweep(checkpoint_dir=folder).flat, uninterrupted.flat)
