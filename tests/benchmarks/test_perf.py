"""experiments.benchmarks.timing: timing helpers measured against known work (a sleep, a fresh process), the
roofline is a positive rate, the knee is where the time per unit stops falling, and the
scaling note is worded from the points it is given."""
import time

import numpy as np
import pytest

from experiments.benchmarks import timing


def test_median_seconds_of_a_sleep():
    med, samples = timing.median_seconds(lambda: time.sleep(0.02), repeats=3, warmup=0)
    assert len(samples) == 3 and 0.02 <= med < 0.5


def test_fresh_process_times_only_the_call():
    seconds = timing.fresh_process_seconds("import time; time.sleep(0.3)", "time.sleep(0.05)")
    assert 0.05 <= seconds < 0.3  # the setup's sleep is not counted


def test_fresh_process_failure_is_reported():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        timing.fresh_process_seconds("", "1 / 0")


def test_matmul_gflops_is_a_rate():
    assert timing.matmul_gflops(64, 32, 16, repeats=2) > 0


def test_knee():
    assert timing.knee([1, 4, 16, 64], [1.0, 0.3, 0.1, 0.095]) == 16   # 16 → 64 saves 5 %
    assert timing.knee([1, 4, 16], [1.0, 0.99, 0.5]) == 1
    assert timing.knee([1, 4], [1.0, 0.1]) == 4 and timing.knee([1], [1.0]) is None


def test_scaling_curve_and_note():
    curve = timing.scaling_curve([1, 2], lambda s: (lambda: np.zeros(s)), repeats=1)
    assert [s for s, _ in curve] == [1, 2] and all(t >= 0 for _, t in curve)
    pt = lambda models, n, d, seconds: dict(models=models, n=n, d=d, epochs=1, seconds=seconds, roofline_s=0.5)  # noqa: E731
    scale = {"models": [pt(1, 100, 10, 1.0), pt(4, 100, 10, 1.0), pt(16, 100, 10, 3.9)],
             "n": [pt(16, 100, 10, 1.0), pt(16, 400, 10, 2.0)], "d": [pt(16, 100, 10, 1.0), pt(16, 100, 40, 0.625)]}
    note = timing.scaling_note(scale)
    assert "stops falling by 20% after 4 models" in note and "n = 400 the engine reaches 25%" in note
    assert "d = 40 80%" in note


def test_gradient_contraction_forms_agree_and_are_timed():
    import jax
    import jax.numpy as jnp

    X = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    for models in (None, 3):
        t = timing.gradient_contraction_seconds(X, models, repeats=1)
        assert set(t) == {"xt_r", "r_x", "autodiff"} and all(v > 0 for v in t.values())
    # the forms timed are one gradient: check it against jax.grad directly
    from jaxreg.grads import transpose_times
    Xj, w, y = jnp.asarray(X), jnp.full(6, 0.01, jnp.float32), (jnp.arange(50) % 2).astype(jnp.float32)
    r = jax.nn.sigmoid(Xj @ w) - y
    g = jax.grad(lambda w: jnp.mean(jax.nn.softplus(Xj @ w) - y * (Xj @ w)))(w)
    np.testing.assert_allclose(transpose_times(Xj, r) / 50, g, rtol=1e-5)
    np.testing.assert_allclose(Xj.T @ r / 50, g, rtol=1e-5)
