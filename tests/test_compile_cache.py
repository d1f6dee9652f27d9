"""jaxreg.compile_cache: ``import jaxreg`` leaves XLA's persistent cache as it was; one explicit
``compile_cache.enable()`` turns it on in jaxreg's cache directory; a second process loads the
solver's program from it; JAXREG_XLA_CACHE=0 and a cache the user configured are respected. Each case runs in a fresh Python process (the suite itself
keeps the cache off)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxreg import compile_cache

ROOT = Path(__file__).resolve().parent.parent

SOLVE = """
import os, jax, numpy as np, jaxreg
from jaxreg.solvers import solve_l2_path
user = os.environ.get("JAX_COMPILATION_CACHE_DIR")
assert jaxreg.compile_cache.directory() == user, "import jaxreg changed the compilation cache"
print("ENABLED", jaxreg.compile_cache.enable())
print("DIR", jaxreg.compile_cache.directory())
d = jaxreg.compile_cache.directory()
if d:  # cache even this tiny program
    jaxreg.compile_cache.disable(); jaxreg.compile_cache.enable(d, min_compile_seconds=0)
X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(float)
solve_l2_path(jaxreg.Objective("logistic", fit_intercept=False), jaxreg.Batch(X, y), [0.1, 0.01])
"""


def run(code, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("JAXREG_XLA_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    proc = subprocess.run([sys.executable, "-c", code], env={**base, "JAX_LOG_COMPILES": "1", **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def test_enable_turns_the_cache_on_and_a_second_process_hits_it(tmp_path):
    env = {"JAXREG_CACHE_DIR": str(tmp_path)}
    out, err = run(SOLVE, **env)
    assert f"DIR {tmp_path / 'xla'}" in out
    assert "Persistent compilation cache hit for 'jit_call'" not in err
    assert any((tmp_path / "xla").iterdir())
    out, err = run(SOLVE, **env)  # the solver's program (exported: jaxreg.exported) comes from the cache
    assert "Persistent compilation cache hit for 'jit_call'" in err


@pytest.mark.parametrize("value", ["0", "off"])
def test_environment_variable_turns_it_off(tmp_path, value):
    out, _ = run(SOLVE, JAXREG_CACHE_DIR=str(tmp_path), JAXREG_XLA_CACHE=value)
    assert "DIR None" in out and not (tmp_path / "xla").exists()


def test_a_directory_in_the_environment_variable_and_a_users_own_cache(tmp_path):
    out, _ = run(SOLVE, JAXREG_XLA_CACHE=str(tmp_path / "mine"))
    assert f"DIR {tmp_path / 'mine'}" in out
    out, _ = run(SOLVE, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "users"), JAXREG_CACHE_DIR=str(tmp_path / "j"))
    assert f"DIR {tmp_path / 'users'}" in out and not (tmp_path / "j" / "xla").exists()


def test_bad_min_compile_seconds_is_refused():
    with pytest.raises(ValueError, match="min_compile_seconds"):
        compile_cache.enable("/nonexistent-never-written", min_compile_seconds=-1)
