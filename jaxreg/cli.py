"""The ``jaxreg`` command.

* ``jaxreg data [--data-dir DIR]``: find, fetch and verify the four MNIST IDX files.
* ``jaxreg info``: versions and the devices JAX sees (what a sweep will shard over).
* ``jaxreg reproduce [ARGS]``: run ``experiments/reproduce.py`` of a source checkout (the
  experiments are scripts, not part of the installed library).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def _info(_args) -> int:
    import jax
    import numpy
    import optax

    import jaxreg

    print(f"jaxreg {jaxreg.__version__}  jax {jax.__version__}  optax {optax.__version__}  numpy {numpy.__version__}")
    print(f"devices: {jax.devices()}")
    return 0


def _find_reproduce_script() -> Path | None:
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        script = root / "experiments" / "reproduce.py"
        if script.is_file():
            return script
    return None


def _reproduce(args) -> int:
    script = _find_reproduce_script()
    if script is None:
        print("jaxreg reproduce: experiments/reproduce.py not found; run it from a source checkout "
              "of jaxreg (git clone ...; cd jaxreg; python experiments/reproduce.py)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(script), *args.rest], cwd=script.parent.parent)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="jaxreg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="fetch and verify MNIST", add_help=False)
    data.add_argument("rest", nargs=argparse.REMAINDER)
    sub.add_parser("info", help="versions and devices")
    rep = sub.add_parser("reproduce", help="regenerate results/ (runs experiments/reproduce.py)", add_help=False)
    rep.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "data":
        from jaxreg.data.fetch import main as data_main

        return data_main(args.rest) or 0
    if args.command == "info":
        return _info(args)
    return _reproduce(args)


if __name__ == "__main__":
    sys.exit(main())
