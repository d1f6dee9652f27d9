"""The ``jaxreg`` command.

* ``jaxreg data [--data-dir DIR]``: find, fetch and verify the four MNIST IDX files.
* ``jaxreg info``: versions and the devices JAX sees (what a sweep will shard over).
* ``jaxreg reproduce [ARGS]``: run ``python -m experiments.reproduce [ARGS]`` in the root of a
  source checkout (the experiments are scripts, not part of the installed library).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import jax
import numpy
import optax

import jaxreg

__all__ = ["main"]


def _info(_args) -> int:
    print(f"jaxreg {jaxreg.__version__}  jax {jax.__version__}  optax {optax.__version__}  numpy {numpy.__version__}")
    print(f"devices: {jax.devices()}")
    return 0


def _find_checkout() -> Path | None:
    """The source checkout holding ``experiments/reproduce.py``: the current folder, else the
    one this package was loaded from."""
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "experiments" / "reproduce.py").is_file():
            return root
    return None


def _reproduce(rest) -> int:
    root = _find_checkout()
    if root is None:
        print("jaxreg reproduce: experiments/reproduce.py not found; run it from a source checkout "
              "of jaxreg (git clone ...; cd jaxreg; python -m experiments.reproduce)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "experiments.reproduce", *rest], cwd=root)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Sub-commands that forward their own options are dispatched before argparse sees them.
    if argv and argv[0] == "data":
        from jaxreg.data.fetch import main as data_main

        return data_main(argv[1:]) or 0
    if argv and argv[0] == "reproduce":
        return _reproduce(argv[1:])
    parser = argparse.ArgumentParser(prog="jaxreg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("data", help="fetch and verify MNIST (jaxreg data --help)")
    sub.add_parser("info", help="versions and devices")
    sub.add_parser("reproduce", help="regenerate results/ (runs python -m experiments.reproduce)")
    args = parser.parse_args(argv)
    return _info(args)


if __name__ == "__main__":
    sys.exit(main())
