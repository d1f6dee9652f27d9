"""Reproduce the paper (seed 003) and its companion experiments with jaxreg, in one command.

From the repository root::

    python -m experiments.reproduce                      # full run into results/ (~20 min, 2 CPU cores)
    python -m experiments.reproduce --smoke --out DIR    # reduced run (< 3 min), what CI runs
    python -m experiments.reproduce --data-dir DIR --skip meta --no-progress

Steps: data (``jaxreg.data``: fetch/verify MNIST if needed; ``--smoke`` falls back to synthetic
digits without it), then each experiment of ``STEPS`` as ``run(out_dir, config, data, progress)``
with its ``default_config()`` (``smoke_config()`` with ``--smoke``); then ``paper_table.md`` /
``.json``, ``sweeps.json`` and ``manifest.json``, all written atomically. Fixed keys: a second run
gives the same numbers. ``--smoke`` without ``--out`` writes to a fresh temporary folder.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback

from experiments import baydin_hd, common, meta_lr, paper_logistic, paper_softmax, seed_extras
from experiments.reproduction import report
from jaxreg import compile_cache
from jaxreg.atomic import write_json, write_text
from jaxreg.data import load_digits
from jaxreg.progress import StepLog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "python -m experiments.reproduce"
PAPER = ('Shilin Zhu and Yunhui Guo, "Logistic and Softmax Regression for Handwritten Digits '
         'Classification" (UCSD report; seed 003)')
STEPS = (("logistic", paper_logistic), ("softmax", paper_softmax), ("extras", seed_extras), ("meta", meta_lr),
         ("baydin", baydin_hd))
NOTES = (
    "Regularisation convention (jaxreg): J = loss + (λ₂/2)‖W‖² + λ₁‖W‖₁. The paper's code uses the "
    "L2 gradient λw, so λ₂ = the paper's λ; its text writes λ‖w‖² (gradient 2λw). We follow the code.",
    "Logistic: separate unpenalised bias b on the 784 pixels (as the code); softmax: bias pixel "
    "inside W, penalised (as the code).",
)
SWEEPS_ABOUT = ("every model of the regularisation sweeps: logistic (pair, penalty, λ; early-stopped) "
                "and softmax tuning (init, protocol, λ set, penalty, λ); accuracies are fractions")


def parse_args(argv):
    names = [name for name, _ in STEPS]
    ap = common.parser(sys.modules[__name__], "output folder (default: results/, or a temp folder with --smoke)")
    ap.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--skip", default="", help=f"comma-separated steps to skip: {','.join(names)}")
    args = ap.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.skip - set(names):
        ap.error(f"--skip: unknown step(s) {', '.join(sorted(args.skip - set(names)))}; "
                 f"the steps are {', '.join(names)}")
    args.out = args.out or (tempfile.mkdtemp(prefix="jaxreg-smoke-") if args.smoke else os.path.join(REPO, "results"))
    common.make_out_dir(ap, args.out)
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    compile_cache.enable()  # XLA's persistent cache: later runs load the compiled programs
    out_dir = args.out
    progress = StepLog(enabled=not args.no_progress)
    t0 = time.perf_counter()
    progress.log(f"{'smoke' if args.smoke else 'full'} run -> {out_dir}")

    configs, files, rows, sizes, sweeps = {}, [], [], {}, {}
    t = time.perf_counter()
    data, source = load_digits(args.data_dir, synthetic=args.synthetic, fallback=args.smoke,
                               verbose=progress.enabled, log=progress.log)
    steps = [dict(name="data", status="ok", wall_s=round(time.perf_counter() - t, 2), detail=source["source"])]
    for name, mod in STEPS:
        t = time.perf_counter()
        if name in args.skip:
            steps.append(dict(name=name, status="skipped", wall_s=0.0, detail="--skip"))
            continue
        progress.log(f"== {name} ({mod.__name__}) ==")
        try:
            out = mod.run(out_dir, mod.smoke_config() if args.smoke else mod.default_config(), data, progress)
        except Exception as e:  # keep going: the other steps and the manifest still get written
            progress.log(f"{name} FAILED: {type(e).__name__}: {e}")
            steps.append(dict(name=name, status="failed", wall_s=round(time.perf_counter() - t, 2),
                              detail=traceback.format_exc(limit=5)))
            continue
        rows += out["rows"]
        files += out["files"]
        configs[name] = out["config"]
        sizes.update(out.get("sizes", {}))
        sweeps.update({name: out[k] for k in ("sweep_rows", "tuning_rows") if k in out})
        steps.append(dict(name=name, status="ok", wall_s=round(time.perf_counter() - t, 2), timings=out["timings"]))
        progress.log(f"== {name} done in {time.perf_counter() - t:.1f}s ==")

    table = report.table_rows(rows)
    if args.smoke:  # the explanations are about the full protocol; a smoke run's numbers are not
        for r in table:
            r["why"] = ""
    write_text(os.path.join(out_dir, "paper_table.md"),
               report.table_markdown(table, paper=PAPER, command=COMMAND, smoke=args.smoke, notes=NOTES, sizes=sizes))
    write_json(os.path.join(out_dir, "paper_table.json"), table)
    write_json(os.path.join(out_dir, "sweeps.json"), {"about": SWEEPS_ABOUT, **sweeps})
    files += ["paper_table.md", "paper_table.json", "sweeps.json", "manifest.json"]
    wall = time.perf_counter() - t0
    write_json(os.path.join(out_dir, "manifest.json"),
               report.manifest(command=" ".join([COMMAND, *argv]), repo=REPO, smoke=args.smoke, out_dir=out_dir,
                               data_source=source, steps=steps, configs=configs, files=files, wall=wall))
    progress.log(f"all done in {wall:.1f}s; {len(set(files))} files in {out_dir}")
    if args.no_progress:
        print(f"wrote {len(set(files))} files to {out_dir} in {wall:.1f}s")
    return 1 if any(s["status"] == "failed" for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
