"""The command line every experiment script shares: ``python -m experiments.NAME [--smoke]
[--out DIR] [--data-dir DIR] [--synthetic]`` (run from the repository root).

Each script is a module with a frozen config dataclass, ``default_config()``,
``smoke_config()`` and ``run(out_dir, config, data, progress) -> dict`` (keys ``rows``,
``files``, ``config``, ``timings``); :func:`main` wires them to MNIST and prints the rows.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import time

from jaxreg import compile_cache
from jaxreg.data import load_digits
from jaxreg.progress import StepLog


def format_row(row: dict) -> str:
    """One table row as a line: experiment, metric, the paper's number (if any), jaxreg's."""
    paper = "" if row.get("paper") is None else f"paper {row['paper']:.4g}  "
    return f"{row['experiment']:30s} {row['metric']:60s} {paper}jaxreg {row['jaxreg']:.4g}"


def make_out_dir(parser: argparse.ArgumentParser, path: str) -> str:
    """Create the output folder ``path`` (and its parents); a path that names a file, or a folder
    that cannot be made, is a usage error of ``parser`` (exit status 2, a one-line message)."""
    if os.path.exists(path) and not os.path.isdir(path):
        parser.error(f"--out {path!r} is a file; give a folder (it is created if missing)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        parser.error(f"--out {path!r}: cannot create the folder ({e.strerror or e})")
    return path


def parser(module, out_help: str = "output folder (default: results)") -> argparse.ArgumentParser:
    """``python -m experiments.NAME`` with the options every script shares: ``--out``, ``--smoke``
    (its ``smoke_config()``), ``--data-dir`` (the four MNIST IDX files) and ``--synthetic``."""
    ap = argparse.ArgumentParser(prog=f"python -m {module.__spec__.name}", description=module.__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help=out_help)
    ap.add_argument("--smoke", action="store_true", help="the CI-sized run (smoke_config())")
    ap.add_argument("--data-dir", default=None, help="folder holding the four MNIST IDX files")
    ap.add_argument("--synthetic", action="store_true", help="synthetic digits instead of MNIST (testing)")
    ap.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="override config fields (Python literals), e.g. --set repeats=5 skip_solvers=True")
    return ap


def configure(parser: argparse.ArgumentParser, config, settings):
    """``config`` with the ``--set FIELD=VALUE`` overrides (values read as Python literals); an
    unknown field or a malformed value is a usage error of ``parser``."""
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep or name not in fields:
            parser.error(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {sorted(fields)}")
        try:
            changes[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parser.error(f"--set {item!r}: {text!r} is not a Python literal (quote strings: {name}='...')")
    return dataclasses.replace(config, **changes)


def main(module, argv=None) -> int:
    """Parse the shared options (:func:`parser`); run ``module`` with its smoke or default config
    on MNIST (:func:`jaxreg.data.load_digits`: fetched and verified if needed) or on synthetic
    digits, into ``--out`` (default ``results``); print its table rows."""
    name = module.__spec__.name.rsplit(".", 1)[-1]
    ap = parser(module)
    args = ap.parse_args(argv)
    args.out = args.out or "results"
    make_out_dir(ap, args.out)
    compile_cache.enable()  # XLA's persistent cache: later runs load the compiled programs
    t = time.perf_counter()
    config = configure(ap, module.smoke_config() if args.smoke else module.default_config(), args.set)
    data, _ = load_digits(args.data_dir, synthetic=args.synthetic)
    out = module.run(args.out, config, data, StepLog(prefix=f"[{name}]"))
    for row in out["rows"]:
        print(format_row(row))
    print(f"wrote {len(out['files'])} files to {args.out} in {time.perf_counter() - t:.1f}s")
    return 0
