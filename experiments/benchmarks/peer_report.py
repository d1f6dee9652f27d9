"""The peer benchmark's summary and report (``python -m experiments.benchmarks.bench_peers``):
speedups of jaxreg over each peer on the same λ, the issue's top-level keys, and the Markdown page.

A row (one solver on one problem) is a dict with ``problem``, ``solver`` ("jaxreg", "jaxreg@k":
jaxreg on the k largest λ, or a peer of :data:`experiments.benchmarks.peers.PEERS`),
``n_lambdas``, ``lambdas``, ``tol``, ``gap``, ``status`` ("ok" or "failed") and, when ok, ``cold_s`` (first call
in a fresh process), ``cold_empty_cache_s`` (None for peers that compile nothing) and ``warm_s``.
"""
from __future__ import annotations

from experiments.tables import markdown_table

CONTRACTION_FORMS = ("xt_r", "r_x", "autodiff")


def speedup(rows, problem, peer, key="cold_s", jaxreg_key=None):
    """``peer``'s time ``key`` / jaxreg's ``jaxreg_key`` (default the same) on the same λ of
    ``problem``; None if either failed to match."""
    get = {(r["problem"], r["solver"]): r for r in rows}
    a = get.get((problem, peer))
    if not a or a["status"] != "ok":
        return None
    b = get.get((problem, "jaxreg" if a["n_lambdas"] == len(get[(problem, "jaxreg")]["lambdas"])
                 else f"jaxreg@{a['n_lambdas']}"))
    return a[key] / b[jaxreg_key or key] if b and b["status"] == "ok" else None


def summary(rows, sweep_out) -> dict:
    """The issue's top-level keys (definitions in :data:`DEFINITIONS`)."""
    lowest = lambda xs: None if not xs or any(x is None for x in xs) else min(xs)  # noqa: E731
    l2 = [p for p in ("2v3-l2", "softmax-l2") if any(r["problem"] == p for r in rows)]  # the L2 problems run
    return {
        "l2_speedup_vs_sklearn_cold": lowest([speedup(rows, p, "sklearn-lbfgs") for p in l2]),
        "l2_speedup_vs_sklearn_cold_empty_cache": lowest([speedup(rows, p, "sklearn-lbfgs",
                                                                     jaxreg_key="cold_empty_cache_s") for p in l2]),
        "l2_speedup_vs_jaxopt": lowest([speedup(rows, p, "jaxopt-lbfgs", key="warm_s") for p in l2]),
        "l2_speedup_vs_jaxopt_cold": lowest([speedup(rows, p, "jaxopt-lbfgs") for p in l2]),
        "l1_speedup_vs_celer": speedup(rows, "2v3-l1", "celer"),
        "l1_speedup_vs_skglm": speedup(rows, "2v3-l1", "skglm"),
        "l1_speedup_vs_saga": speedup(rows, "2v3-l1", "sklearn-saga"),
        "l1_speedup_vs_jaxopt": speedup(rows, "2v3-l1", "jaxopt-proxgrad", key="warm_s"),
        "l1_speedup_vs_celer_warm": speedup(rows, "2v3-l1", "celer", key="warm_s"),
        "l1_speedup_vs_skglm_warm": speedup(rows, "2v3-l1", "skglm", key="warm_s"),
        "sweep_vs_handwritten": sweep_out["sweep_vs_handwritten"],
        "fraction_of_matmul": sweep_out["fraction_of_matmul"],
        "max_objective_gap": max(r["gap"] for r in rows if r["solver"].startswith("jaxreg")),
    }


DEFINITIONS = {
    "cold": "first call in a fresh Python process (tracing + compilation or a compilation-cache hit + the run); "
            "data loading not timed; jaxreg with a warm persistent compilation cache unless *_empty_cache",
    "warm": "median of repeated calls in one process after a first call",
    "speedups": "peer time / jaxreg time on the same λ (a peer capped to the k largest λ against jaxreg@k, jaxreg on "
                "those k); cold keys compare first calls, jaxopt keys warm calls; L2 keys: the smaller over 2 vs 3 and "
                "softmax; None where a solver failed to match",
    "matched accuracy": "each solver timed at the loosest tolerance of its ladder that brings every λ within rel "
                        "of J*, the lowest objective any solver reached (float64)",
    "contraction": "closed-form gradient Xᵀr written as X.T @ r (v0.1), as (rᵀX)ᵀ (now) and by jax.grad, float32, "
                   "median ms",
}


def markdown(out) -> str:
    rows = [(r["problem"], r["solver"], r["n_lambdas"], "—" if r["tol"] is None else f"{r['tol']:g}",
             f"{r['gap']:.1e}", *(f"{r[k]:.3f}" if r.get(k) is not None else "—"
                                  for k in ("cold_empty_cache_s", "cold_s", "warm_s")), r["status"]) for r in out["rows"]]
    sw = out["sweep"]
    keys = [k for k in out if k.endswith(("_cold", "_empty_cache", "_jaxopt", "_celer", "_skglm", "_saga", "_warm",
                                          "handwritten", "of_matmul", "objective_gap"))]
    return "\n".join([
        "# jaxreg against its peers", "", f"Command: `{out['command']}`; {out['machine']}; load before: {out['load']}.", "",
        *(f"- **{k}**: {v}" for k, v in DEFINITIONS.items()), "", "## Summary", "",
        *(f"- `{k}`: {out[k]:.3g}" if out[k] is not None else f"- `{k}`: — (a solver failed)" for k in keys), "",
        "## Matched-accuracy paths (seconds)", "",
        *markdown_table(("problem", "solver", "λ", "tol", "gap to J*", "first call, empty cache", "first call",
                         "warm", "status"), rows), "",
        "## Sweep", "", f"{sw['n_models']} models × {sw['epochs']} full-batch epochs on {sw['n']} × {sw['d']}: jaxreg "
        f"{sw['jaxreg_s']:.2f} s, hand-written jit(vmap(lax.scan)) {sw['handwritten_s']:.2f} s; {sw['gflops']:.1f} of "
        f"{sw['matmul_gflops']:.1f} GFLOP/s (float32 matmul of the same shapes).", "",
        "## Scaling", "", "`bench_peers_scaling.png`; " + out["scaling_note"], "",
        "## The closed-form gradient's contraction (ms, float32)", "",
        *markdown_table(("", "X.T @ r (v0.1)", "(rᵀX)ᵀ (now)", "jax.grad"),
                        [(who, *(f"{out['contraction'][f'{who}_{form}_s'] * 1e3:.2f}" for form in CONTRACTION_FORMS))
                         for who in ("single", "grid")]), "",
        "Failed rows: " + ("; ".join(f"{r['problem']} {r['solver']}: {r['note']} (tried: " + ", ".join(
            f"{t:g} → gap {g:.1e} in {sec:.1f} s" for t, g, sec in r["tolerances_tried"]) + ")"
            for r in out["rows"] if r["status"] != "ok") or "none") + ".", ""])
