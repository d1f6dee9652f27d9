"""The reproduction's records: the paper-vs-jaxreg table (rows and Markdown) and the run manifest.

* :func:`table_rows`: experiment rows (``experiment``, ``metric``, ``paper``, ``jaxreg``, and
  optionally ``unit``, ``section``, ``config``, ``note``, ``why``) -> normalised table rows with
  ``diff = jaxreg − paper``;
* :func:`table_markdown`: those rows as Markdown, one section per kind of row, the configuration
  shared by a family of rows written once above the tables;
* :func:`manifest`: what produced a run (command, versions, git commit, platform, devices,
  seeds, configs, steps, files, wall time).

Plain Python: nothing here trains or plots.
"""
from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import subprocess
from typing import Optional

from experiments.tables import markdown_table

SECTIONS = (("main", "Numbers the paper reports"),
            ("variant", "Protocol variants tried (where the paper leaves the protocol open)"),
            ("extra", "jaxreg-only numbers (no counterpart in the paper, or from the companion documents)"))
PACKAGES = ("jax", "jaxlib", "optax", "numpy", "tensorflow-datasets", "matplotlib", "scikit-learn", "jaxreg")
UNITS = ("%", "h", "")  # accuracy in percent, hours, a plain number


def _is_number(v) -> bool:
    return v is not None and math.isfinite(float(v))


def table_rows(rows) -> list:
    """Normalise experiment rows for the table: ``diff = jaxreg − paper`` (percentage points for
    ``unit="%"``), rounded to 2 decimals (4 for other units), None without a paper number;
    ``section`` as given, else ``"variant"`` when the experiment's name says ``(variant)``,
    ``"main"`` with a paper number, ``"extra"`` without."""
    out = []
    for i, r in enumerate(rows):
        for k in ("experiment", "metric"):
            if not isinstance(r.get(k), str):
                raise ValueError(f"rows[{i}][{k!r}] must be a string, got {r.get(k)!r}")
        unit = r.get("unit", "%")
        if unit not in UNITS:
            raise ValueError(f"rows[{i}]['unit'] must be one of {UNITS}, got {unit!r}")
        paper, ours = r.get("paper"), r.get("jaxreg")
        diff = None
        if paper is not None and _is_number(ours):
            diff = round(float(ours) - float(paper), 2 if unit == "%" else 4)
        section = r.get("section") or ("variant" if "(variant)" in r["experiment"]
                                       else "main" if paper is not None else "extra")
        out.append(dict(experiment=r["experiment"], metric=r["metric"],
                        paper=None if paper is None else float(paper),
                        jaxreg=None if ours is None else float(ours), diff=diff, unit=unit,
                        section=section, config=r.get("config", {}), note=r.get("note", ""),
                        why=r.get("why", "")))
    return out


def format_value(v, unit: str = "%") -> str:
    """``93.50%``, ``2.768 h``, ``0.0123`` (3 significant digits); ``—`` for None/NaN/inf."""
    if not _is_number(v):
        return "—"
    if unit == "%":
        return f"{v:.2f}%"
    if unit == "h":
        return f"{v:.3f} h"
    return f"{v:.3g}"


def format_config(config: dict) -> str:
    """``key=value; ...`` (floats with ``:g``), leaving out the set sizes (keys ``n_*``)."""
    return "; ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()
                     if not k.startswith("n_"))


def family(row) -> str:
    """The family a row belongs to: its experiment name up to the first ``,``, `` (`` or pair
    (``logistic 2 vs 3`` -> ``logistic``, ``softmax, zeros init (variant)`` -> ``softmax``)."""
    return row["experiment"].split(",")[0].split(" (")[0].split(" 2 vs")[0].split(" 3 vs")[0]


def shared_config(rows) -> dict:
    """{family: the config items (not ``n_*``) that every row of that family shares}, for the
    families with at least two rows and something shared."""
    fams = {}
    for r in rows:
        fams.setdefault(family(r), []).append(r["config"])
    out = {}
    for fam, cfgs in fams.items():
        if len(cfgs) < 2:
            continue
        same = {k: v for k, v in cfgs[0].items()
                if all(k in c and c[k] == v for c in cfgs[1:]) and not k.startswith("n_")}
        if same:
            out[fam] = same
    return out


def _diff_cell(r) -> str:
    if r["diff"] is None:
        return "—"
    d = f"{r['diff']:+.2f}" if r["unit"] == "%" else f"{r['diff']:+.3g}"
    return f"**{d}**" if r["unit"] == "%" and abs(r["diff"]) > 1.0 else d  # > 1 point: flagged


def table_markdown(rows, *, paper: str, command: str, smoke: bool, notes=(), sizes=None) -> str:
    """The Markdown of ``paper_table.md`` from :func:`table_rows` output.

    paper: the reference the numbers come from; command: the command that generated the table
    (`` --smoke`` is appended for a smoke run, which also gets a warning line); notes: bullet
    lines; sizes: ``{label: {set: count}}`` written as one "Set sizes" line.
    """
    lines = ["# The paper's numbers beside jaxreg's", "",
             f"Paper: {paper}. Generated by `{command}{' --smoke' if smoke else ''}`; the same rows, "
             "with full configurations, are in `paper_table.json`. Accuracies in %, diff = jaxreg − "
             "paper in percentage points.", ""]
    if smoke:
        lines += ["> **SMOKE RUN**: reduced data and epochs; the numbers exercise the pipeline and are "
                  "not comparable with the paper's.", ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    if sizes:
        lines += ["Set sizes: " + "; ".join(f"{label}: " + ", ".join(f"{k} {v}" for k, v in s.items())
                                            for label, s in sizes.items()), ""]
    shared = shared_config(rows)
    if shared:
        lines += ["Configuration shared by every row of a family (left out of the rows below):", ""]
        lines += [f"- **{fam}**: {format_config(c)}" for fam, c in shared.items()] + [""]
    for key, title in SECTIONS:
        sec = [r for r in rows if r["section"] == key]
        if not sec:
            continue
        cells = []
        for r in sec:
            own = {k: v for k, v in r["config"].items() if k not in shared.get(family(r), {})}
            cell = "; ".join(x for x in (r["note"], format_config(own)) if x)
            if r["why"]:
                cell = f"**why:** {r['why']} — {cell}"
            cells.append((r["experiment"], r["metric"], format_value(r["paper"], r["unit"]),
                          format_value(r["jaxreg"], r["unit"]), _diff_cell(r), cell))
        lines += [f"## {title}", "", *markdown_table(
            ("experiment", "metric", "paper", "jaxreg", "diff", "configuration / note"), cells), ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- manifest


def versions(packages=PACKAGES) -> dict:
    """``{"python": ..., package: installed version or None}``."""
    out = {"python": platform.python_version()}
    for p in packages:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def git_info(repo) -> dict:
    """``{"commit": HEAD's hash, "dirty": uncommitted changes?}`` of the checkout at ``repo``
    (None for each when git or the checkout is not there)."""
    def git(*args):
        try:
            r = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def manifest(*, command: str, repo, smoke: bool, out_dir, data_source: dict, steps: list,
             configs: dict, files, wall: float) -> dict:
    """The run record: ``command``, smoke flag, output folder, data source, versions, the git
    state of ``repo``, platform, CPU count, JAX devices, each config's seed, the configs, the
    steps, the files written (sorted, once each) and the total wall time."""
    import jax

    return {"command": command, "smoke": smoke, "out_dir": os.path.abspath(out_dir), "data": data_source,
            "versions": versions(), "git": git_info(repo), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "devices": [str(d) for d in jax.devices()],
            "seeds": {k: c.get("seed") for k, c in configs.items() if isinstance(c, dict) and "seed" in c},
            "configs": configs, "steps": steps, "files": sorted(set(files)), "total_wall_s": round(wall, 1)}


def misses_paper(row, points: float = 1.0) -> bool:
    """Whether an experiment row has a paper number and jaxreg's differs from it by more than
    ``points`` (percentage points for accuracies): the rows that owe a ``why``."""
    return row.get("paper") is not None and _is_number(row.get("jaxreg")) and abs(row["jaxreg"] - row["paper"]) > points


def find_row(rows, **fields) -> Optional[dict]:
    """The first row whose values equal ``fields`` (a field given as None is not compared), or None."""
    want = {k: v for k, v in fields.items() if v is not None}
    return next((r for r in rows if all(k in r and r[k] == v for k, v in want.items())), None)
