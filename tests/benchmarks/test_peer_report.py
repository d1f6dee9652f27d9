"""experiments.benchmarks.peer_report: speedups pair a capped peer with jaxreg on the same λ; a failed solver
gives None, not a number; the summary's L2 keys take the smaller over the problems run."""
from experiments.benchmarks import peer_report


def row(problem, solver, k, cold, warm, status="ok", empty=None):
    return dict(problem=problem, solver=solver, n_lambdas=k, lambdas=[0.1] * k, tol=1e-6, gap=1e-8, status=status,
                cold_s=cold, warm_s=warm, cold_empty_cache_s=empty, tolerances_tried=[(1e-6, 1e-8, cold)],
                note="n/a")


ROWS = [row("2v3-l2", "jaxreg", 7, 1.0, 0.5, empty=3.0), row("2v3-l2", "sklearn-lbfgs", 7, 12.0, 11.0),
        row("2v3-l2", "jaxopt-lbfgs", 7, 6.0, 2.0, empty=9.0),
        row("softmax-l2", "jaxreg", 7, 10.0, 9.0, empty=12.0), row("softmax-l2", "jaxreg@2", 2, 2.0, 1.0, empty=4.0),
        row("softmax-l2", "sklearn-lbfgs", 2, 30.0, 29.0), row("softmax-l2", "jaxopt-lbfgs", 2, 8.0, 3.0),
        row("2v3-l1", "jaxreg", 7, 3.0, 2.0, empty=5.0), row("2v3-l1", "celer", 7, 6.0, 5.0),
        row("2v3-l1", "skglm", 7, None, None, status="failed")]


def test_speedups_use_jaxreg_on_the_same_lambdas():
    assert peer_report.speedup(ROWS, "2v3-l2", "sklearn-lbfgs") == 12.0
    assert peer_report.speedup(ROWS, "softmax-l2", "sklearn-lbfgs") == 15.0  # against jaxreg@2, not jaxreg
    assert peer_report.speedup(ROWS, "2v3-l2", "sklearn-lbfgs", jaxreg_key="cold_empty_cache_s") == 4.0
    assert peer_report.speedup(ROWS, "2v3-l1", "skglm") is None  # failed: no ratio
    assert peer_report.speedup(ROWS, "2v3-l1", "sklearn-saga") is None  # not run


def test_summary_keys():
    s = peer_report.summary(ROWS, {"sweep_vs_handwritten": 1.1, "fraction_of_matmul": 0.9})
    assert s["l2_speedup_vs_sklearn_cold"] == 12.0  # min(12, 15)
    assert s["l2_speedup_vs_jaxopt"] == 3.0  # warm: min(2/0.5, 3/1)
    assert s["l1_speedup_vs_celer"] == 2.0 and s["l1_speedup_vs_skglm"] is None
    assert s["max_objective_gap"] == 1e-8 and s["sweep_vs_handwritten"] == 1.1
