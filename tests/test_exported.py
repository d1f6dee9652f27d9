"""jaxreg.exported: with the persistent cache on, a solver's program is exported once, and a
later process loads it instead of tracing it again, with the same bits as plain ``jax.jit``;
with the cache off it is plain ``jax.jit``; inside another transformation it is too. The
processes are fresh (the suite itself runs with the cache off)."""
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import exported

ROOT = Path(__file__).resolve().parent.parent

SOLVE = """
import sys, numpy as np, jax
jax.config.update("jax_enable_x64", True)
import jaxreg
jaxreg.compile_cache.enable()
from jaxreg.solvers import solve_l1_path, solve_l2_path
X = np.random.default_rng(0).normal(size=(60, 5)); y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(float)
obj = jaxreg.Objective("logistic", fit_intercept=False)
W2 = solve_l2_path(obj, jaxreg.Batch(X, y), [0.1, 0.01]).params["W"]
W1 = solve_l1_path(obj, jaxreg.Batch(X, y), [0.05, 0.01]).params["W"]
np.save(sys.argv[1], np.concatenate([np.asarray(W2), np.asarray(W1)]))
"""


def run(out, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("JAXREG_XLA_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    proc = subprocess.run([sys.executable, "-c", SOLVE, str(out)], env={**base, "JAX_LOG_COMPILES": "1", **env},
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out), proc.stderr


def test_second_process_loads_the_programs_with_the_same_bits(tmp_path):
    cache = {"JAXREG_XLA_CACHE": str(tmp_path / "xla")}
    plain, err = run(tmp_path / "plain.npy", JAXREG_XLA_CACHE="0")
    assert "Finished tracing _l2_path_program" in err and not (tmp_path / "xla").exists()
    first, err = run(tmp_path / "first.npy", **cache)
    assert "Finished tracing flat" in err  # traced once, to export
    assert len(list((tmp_path / "xla" / exported.SUBDIR).glob("*.bin"))) == 2  # L2 and L1 programs
    second, err = run(tmp_path / "second.npy", **cache)
    assert "_l2_path_program" not in err and "_l1_path_program" not in err  # loaded, not traced
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(second, plain)


def test_key_changes_with_static_arguments_shapes_and_dtypes():
    leaves = [jnp.zeros((3, 2)), 5]
    treedef = jax.tree_util.tree_structure({"a": 0, "b": 0})
    key = exported.program_key("f", {"m": 1}, treedef, leaves)
    assert key == exported.program_key("f", {"m": 1}, treedef, [jnp.ones((3, 2)), 7])  # values do not matter
    assert key != exported.program_key("f", {"m": 2}, treedef, leaves)
    assert key != exported.program_key("f", {"m": 1}, treedef, [jnp.zeros((4, 2)), 5])
    assert key != exported.program_key("f", {"m": 1}, treedef, [jnp.zeros((3, 2), jnp.float32), 5])
    assert len(exported.source_hash()) == 64


def test_off_and_under_a_transformation_it_is_jit():
    def f(x, n):
        return x * n

    program = exported.cached_program(f, static_argnames=("n",))
    assert float(program(jnp.float64(2.0), n=3)) == 6.0  # the suite's cache is off
    assert float(jax.grad(lambda x: program(x, 3))(1.0)) == 3.0


def test_an_unreadable_file_is_replaced(tmp_path, monkeypatch):
    from jaxreg import compile_cache

    def f(x, n):
        return x * n + 1.0

    program = exported.cached_program(f, static_argnames=("n",))
    monkeypatch.setattr(compile_cache, "directory", lambda: str(tmp_path))
    x = jnp.arange(3.0)
    np.testing.assert_array_equal(program(x, n=2), [1.0, 3.0, 5.0])
    (path,) = (tmp_path / exported.SUBDIR).glob("*.bin")
    path.write_bytes(b"not a program")
    again = exported.cached_program(f, static_argnames=("n",))  # a new process, in effect
    np.testing.assert_array_equal(again(x, n=2), [1.0, 3.0, 5.0])
    assert path.read_bytes() != b"not a program"
