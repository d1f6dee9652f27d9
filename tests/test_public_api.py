"""The public surface and the layering of jaxreg, pinned.

* ``jaxreg.__all__`` is the curated API (a change to it is a change to this list, on purpose).
* ``import jaxreg`` changes no JAX configuration and loads neither the data layer, matplotlib,
  TFDS, scikit-learn nor pandas (checked in a fresh interpreter).
* Imports point down the layers only: a test parses every module's imports (module- and
  function-level) and fails on a cycle or an upward edge; jaxreg-internal function-level
  imports are allowed only where they reach an optional dependency.
* Everything under experiments/ (tests aside) imports only names a public ``__all__`` offers.
"""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import jaxreg

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "jaxreg"

PUBLIC = [
    "Objective", "Batch", "Penalty", "Loss", "penalty", "lambda_to_sklearn_C", "sklearn_C_to_lambda",
    "Hyper", "TrainConfig", "TrainData", "prepare_data", "train", "TrainResult", "History", "StopRule",
    "sweep", "SweepResult", "cross_validate", "train_models", "stack_hypers",
    "solve_l2_path", "solve_l1_path", "lambda_path", "lambda_max",
    "check_grad", "finite_difference_grad", "relative_error",
    "meta", "solvers", "stopping", "distributed", "losses", "compile_cache", "sklearn", "data", "plots",
]

# Lower number = lower layer; a module may import modules of its own layer or below.
LAYERS = {
    0: ("tree", "validation", "atomic", "paths", "compile_cache", "multihost", "exported", "progress", "tidy"),
    1: ("losses", "grads", "objective", "weights"),
    2: ("optim", "stopping", "remat", "config", "prepare", "batching", "trainer"),
    # distributed holds the meshes and shardings the grid engine places its models with
    3: ("folds", "layout", "sweep_grid", "distributed", "engine", "checkpoint", "sweeps", "cv", "solvers"),
    4: ("launch", "meta"),
    5: ("sklearn", "sklearn_args", "data", "plots"),  # data and plots beside the front ends
    6: ("cli",),
}
LEVEL = {name: level for level, names in LAYERS.items() for name in names}
# function-level jaxreg imports that reach an optional dependency (TFDS) or keep a front end light
LAZY_ALLOWED = {("jaxreg.data", "jaxreg.data.tfds_mnist"), ("jaxreg.data.synthetic", "jaxreg.data.tfds_mnist"),
                ("jaxreg.cli", "jaxreg.data.fetch")}


def _modules():
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODS = _modules()


def _target(cur, node, alias):
    if isinstance(node, ast.Import):
        name = alias.name
    else:
        base = node.module or ""
        if node.level:
            pkg = cur.split(".") if MODS[cur].name == "__init__.py" else cur.split(".")[:-1]
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
        name = f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODS else base
    while name and name not in MODS:
        name = name.rpartition(".")[0]
    return name if name.startswith("jaxreg") and name != cur else None


def _edges():
    edges, lazy = {}, []
    for m, p in MODS.items():
        tree = ast.parse(p.read_text())
        in_function = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    t = _target(m, node, alias)
                    if t:
                        deps.add(t)
                        if id(node) in in_function:
                            lazy.append((m, t))
        edges[m] = deps
    return edges, lazy


def _level(mod):
    parts = mod.split(".")
    return LEVEL.get(parts[1]) if len(parts) > 1 else None


def test_public_names_are_pinned():
    assert sorted(jaxreg.__all__) == sorted(PUBLIC)
    assert len(set(jaxreg.__all__)) == len(jaxreg.__all__)
    for name in jaxreg.__all__:
        assert getattr(jaxreg, name) is not None, name


def test_import_changes_nothing_global():
    code = ("import sys, jax; before = (jax.config.jax_compilation_cache_dir, jax.config.jax_enable_x64, "
            "jax.config.jax_persistent_cache_min_compile_time_secs); import jaxreg; "
            "after = (jax.config.jax_compilation_cache_dir, jax.config.jax_enable_x64, "
            "jax.config.jax_persistent_cache_min_compile_time_secs); "
            "heavy = [m for m in ('jaxreg.data', 'jaxreg.plots', 'jaxreg.sklearn', 'matplotlib', "
            "'tensorflow_datasets', 'sklearn', 'pandas') if m in sys.modules]; "
            "import json; print(json.dumps([before == after, heavy]))")
    env = {k: v for k, v in os.environ.items() if k != "JAXREG_XLA_CACHE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         cwd=ROOT, check=True).stdout
    same, heavy = json.loads(out.strip().splitlines()[-1])
    assert same, "import jaxreg changed jax.config"
    assert heavy == []


def test_lazy_submodules_load_on_first_use():
    code = ("import sys, jaxreg; assert 'jaxreg.plots' not in sys.modules; jaxreg.plots.save_figure; "
            "assert 'jaxreg.plots' in sys.modules; jaxreg.data.read_idx; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr


def test_layers_point_down_and_have_no_cycle():
    edges, lazy = _edges()
    unknown = sorted(m for m in MODS if m != "jaxreg" and _level(m) is None)
    assert not unknown, f"modules without a layer in LAYERS: {unknown}"
    upward = sorted((a, b) for a, deps in edges.items() for b in deps
                    if a != "jaxreg" and _level(b) is not None and _level(a) is not None
                    and not (b.startswith(a + ".") and MODS[a].name == "__init__.py")
                    and _level(b) > _level(a))
    assert not upward, f"imports pointing up the layers: {upward}"
    # cycles (ignoring a package's __init__ importing its own children)
    seen, stack, cycles = {}, [], []

    def visit(v):
        seen[v] = 1
        stack.append(v)
        for w in edges[v]:
            if MODS[v].name == "__init__.py" and w.startswith(v + "."):
                continue
            if MODS[w].name == "__init__.py" and v.startswith(w + "."):
                continue
            if seen.get(w) == 1:
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in seen:
                visit(w)
        stack.pop()
        seen[v] = 2

    for v in sorted(edges):
        if v not in seen:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"
    assert set(lazy) <= LAZY_ALLOWED, f"function-level jaxreg imports: {sorted(set(lazy) - LAZY_ALLOWED)}"


def test_experiments_use_only_the_public_api():
    bad = []
    cache = {}
    for p in sorted((ROOT / "experiments").rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxreg")):
                continue
            mod = node.module
            if any(part.startswith("_") for part in mod.split(".")):
                bad.append(f"{p.relative_to(ROOT)}: {mod}")
                continue
            if mod not in cache:
                __import__(mod)
                cache[mod] = set(getattr(sys.modules[mod], "__all__", ()))
            bad += [f"{p.relative_to(ROOT)}: {mod}.{a.name}" for a in node.names
                    if a.name not in cache[mod] and f"{mod}.{a.name}" not in MODS]
    assert not bad, f"experiments import names no public __all__ offers: {bad[:10]}"


def test_library_text_names_no_seed_issue_or_version():
    import re

    pat = re.compile(r"\bseed ?0\d\d\b|\bissue \d+\b|\bv0\.\d\b|_v0\d\b|V0\d\b", re.I)
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in PKG.rglob("*.py") for m in pat.finditer(p.read_text())]
    assert not hits, hits
