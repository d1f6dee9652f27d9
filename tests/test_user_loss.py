"""A loss defined outside the package (a Huber regression loss and a squared-hinge classifier),
trained through ``train``, ``sweep`` and the solvers its record allows. The expected values are
computed independently: residuals against ``jax.grad``, optima against ``jax.grad`` of J
written out here, sweep members against single ``train`` calls."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr

DELTA = 1.0


def huber(scores, y):
    r = scores - y
    return jnp.where(jnp.abs(r) <= DELTA, 0.5 * r**2, DELTA * (jnp.abs(r) - 0.5 * DELTA))


def huber_residual(scores, y):
    return jnp.clip(scores - y, -DELTA, DELTA)


def squared_hinge(scores, y):
    return jnp.maximum(0.0, 1.0 - (2.0 * y - 1.0) * scores) ** 2


def squared_hinge_residual(scores, y):
    sign = 2.0 * y - 1.0
    return -2.0 * sign * jnp.maximum(0.0, 1.0 - sign * scores)


HUBER = jr.Loss("huber", huber, huber_residual, lambda s: s, "real", True, 1.0)
SQ_HINGE = jr.Loss("squared_hinge", squared_hinge, squared_hinge_residual, jax.nn.sigmoid, "binary", True, 2.0)


def regression_data(n=120, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X @ rng.normal(size=d) + 0.3 * rng.standard_t(2, size=n)).astype(np.float32)  # heavy tails
    return X, y


def binary_data(n=120, d=5, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(np.float32)
    return X, y


@pytest.mark.parametrize("loss, data", [(HUBER, regression_data), (SQ_HINGE, binary_data)])
def test_closed_form_residual_matches_autodiff(loss, data):
    X, y = data()
    s = jnp.asarray(X @ np.linspace(-1, 1, X.shape[1]), jnp.float32) * 2.0
    auto = jax.grad(lambda v: jnp.sum(loss.value(v, jnp.asarray(y))))(s)
    np.testing.assert_allclose(loss.residual(s, jnp.asarray(y)), auto, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("loss, data", [(HUBER, regression_data), (SQ_HINGE, binary_data)])
def test_train_with_a_user_loss_matches_autodiff_training(loss, data):
    X, y = data()
    obj = jr.Objective(loss)
    assert obj.is_classifier == (loss.target != "real") and obj.loss_name == loss.name
    cfg = jr.TrainConfig(n_epochs=60)
    d = jr.prepare_data(obj, cfg, X, y)
    hyper = jr.Hyper(learning_rate=0.1, l2=1e-2)
    closed = jr.train(obj, d, hyper, cfg)
    auto = jr.train(obj, d, hyper, jr.TrainConfig(n_epochs=60, grad="autodiff"))
    np.testing.assert_allclose(closed.params["W"], auto.params["W"], rtol=1e-4, atol=1e-5)
    hist = np.asarray(closed.history.train_loss)
    assert hist[-1] < 0.5 * hist[0]
    # a record without a closed-form residual trains through jax.grad of its per-example values
    no_residual = jr.train(jr.Objective(loss._replace(residual=None)), d, hyper, cfg)
    np.testing.assert_allclose(no_residual.params["W"], closed.params["W"], rtol=1e-5, atol=1e-6)


def test_sweep_with_a_user_loss_matches_single_runs():
    X, y = regression_data()
    obj = jr.Objective(HUBER)
    cfg = jr.TrainConfig(n_epochs=30)
    d = jr.prepare_data(obj, cfg, X, y, X[:40], y[:40])
    lams = [1e-3, 1e-1]
    res = jr.sweep(obj, d, cfg, {"l2": lams})
    for i, lam in enumerate(lams):
        one = jr.train(obj, d, jr.Hyper(learning_rate=0.1, l2=lam), cfg)
        np.testing.assert_allclose(res.flat.params["W"][i], one.params["W"], rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(res.final["holdout_loss"]))


def _objective_grad_inf(obj, W, b, X, y, l2, l1=0.0):
    """‖∇J‖∞ of J = mean ℓ(XW + b, y) + (λ₂/2)‖W‖² (+ the L1 subgradient distance), by jax.grad."""
    def smooth(W, b):
        return jnp.mean(obj.record.value(X @ W + b, y)) + 0.5 * l2 * jnp.sum(W**2)
    gW, gb = jax.grad(smooth, argnums=(0, 1))(W, b)
    if l1:
        gW = jnp.where(W != 0, gW + l1 * jnp.sign(W), jnp.maximum(jnp.abs(gW) - l1, 0.0))
    return float(jnp.max(jnp.abs(jnp.concatenate([gW.ravel(), jnp.ravel(gb)]))))


@pytest.mark.parametrize("loss, data", [(HUBER, regression_data), (SQ_HINGE, binary_data)])
def test_solvers_reach_the_optimum_of_a_user_loss(loss, data, x64):
    X, y = data()
    X, y = X.astype(np.float64), y.astype(np.float64)
    obj = jr.Objective(loss)
    lams = np.array([1e-1, 1e-2])
    if True:  # float64 (the suite enables x64)
        res = jr.solve_l2_path(obj, jr.Batch(X, y), lams, tol=1e-9)
        assert bool(np.all(res.converged))
        for i, lam in enumerate(lams):
            g = _objective_grad_inf(obj, jnp.asarray(res.params["W"][i]), jnp.asarray(res.params["b"][i]),
                                    jnp.asarray(X), jnp.asarray(y), lam)
            assert g < 1e-6, (loss.name, lam, g)
        l1 = jr.solve_l1_path(obj, jr.Batch(X, y), lams, tol=1e-9)
        assert bool(np.all(l1.converged))
        for i, lam in enumerate(lams):
            g = _objective_grad_inf(obj, jnp.asarray(l1.params["W"][i]), jnp.asarray(l1.params["b"][i]),
                                    jnp.asarray(X), jnp.asarray(y), 0.0, lam)
            assert g < 1e-5, (loss.name, lam, g)


def test_solvers_refuse_a_loss_without_the_fields_they_need():
    X, y = regression_data()
    rough = jr.Objective(HUBER._replace(name="abs_like", smooth=False, curvature=None))
    with pytest.raises(ValueError, match=r"solve_l2_path needs a loss with smooth=True, curvature; loss 'abs_like'"):
        jr.solve_l2_path(rough, jr.Batch(X, y), [0.1])
    no_bound = jr.Objective(HUBER._replace(curvature=None))
    with pytest.raises(ValueError, match=r"solve_l1_path needs a loss with curvature; loss 'huber'"):
        jr.solve_l1_path(no_bound, jr.Batch(X, y), [0.1])


def test_a_malformed_loss_record_is_refused_by_field():
    with pytest.raises(ValueError, match="loss.target"):
        jr.Objective(HUBER._replace(target="ordinal"))
    with pytest.raises(ValueError, match="loss.value"):
        jr.Objective(HUBER._replace(value=3))
    with pytest.raises(ValueError, match="loss.curvature"):
        jr.Objective(HUBER._replace(curvature=-1.0))
