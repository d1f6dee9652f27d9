"""Golden values from the source documents, reproduced with jaxreg.

* seed 001 (slides "Softmax Regression"): one SGD step of logistic regression, of softmax
  regression (two inputs), and linear regression on the Level/Salary table;
* seed 002 (notebook "ass2_grad"): multiclass hinge and softmax losses with ``0.5 * reg * ‖W‖²``,
  compared with a naive loop implementation written here.

Each printed number is asserted to the precision it is printed with: |value − printed| ≤ half a
unit in its last printed decimal.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import Batch, Objective, Penalty, relative_error


def assert_printed(actual, printed, decimals):
    """``actual`` rounds to ``printed`` at ``decimals`` decimals (with a hair of slack for ties)."""
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(printed, np.float64),
                               rtol=0, atol=0.5 * 10.0**-decimals + 1e-12)


def sgd_step(theta, grad, lr):
    return jax.tree_util.tree_map(lambda t, g: t - lr * g, theta, grad)


@functools.partial(jax.jit, static_argnums=0)
def evaluate(obj, params, pen, batch):
    """Everything jaxreg computes for one (objective, params, penalty, batch), in one program."""
    return {"scores": obj.scores(params, batch.X), "proba": obj.predict_proba(params, batch.X),
            "pred": obj.predict(params, batch.X), "value": obj.value(params, pen, batch),
            "grad": obj.grad(params, pen, batch), "autodiff": jax.grad(obj.value)(params, pen, batch)}


# --------------------------------------------------------------------------- seed 001: logistic
class TestSeed001Logistic:
    """θᵀ = [b, w₁, w₂] = [0.1, 0.2, 0.1], xᵀ = [1, 1.0, 0.5] (x₀ = 1 pairs with b), y = 0, η = 0.1."""

    obj = Objective("logistic", fit_intercept=False)  # single example: mean = sum
    X = jnp.array([[1.0, 1.0, 0.5]])
    batch = Batch(X, jnp.array([0.0]))
    theta = {"W": jnp.array([0.1, 0.2, 0.1])}
    lr = 0.1

    def test_forward_and_loss(self, x64):
        r = evaluate(self.obj, self.theta, Penalty(), self.batch)
        assert float(r["scores"][0]) == pytest.approx(0.35, abs=1e-15)
        assert_printed(r["proba"][0], 0.586618, 6)
        assert int(r["pred"][0]) == 1  # σ > 0.5
        assert_printed(r["value"], 0.883382, 6)
        assert_printed(r["value"], 0.883, 3)  # the slide's L
        same = Objective("logistic", fit_intercept=False, reduction="sum")
        assert float(evaluate(same, self.theta, Penalty(), self.batch)["value"]) == float(r["value"])

    def test_gradient_and_step(self, x64):
        r = evaluate(self.obj, self.theta, Penalty(), self.batch)
        g = r["grad"]
        assert_printed(g["W"], [0.586618, 0.586618, 0.293309], 6)
        assert relative_error(g, r["autodiff"]) < 1e-12
        new = sgd_step(self.theta, g, self.lr)
        assert_printed(new["W"], [0.041338, 0.141338, 0.070669], 6)

    def test_slides_rounded_step(self, x64):
        # The slides round ŷ − y to 0.59 first, then ∇ = x (ŷ − y) = [0.59, 0.59, 0.295].
        # (They print w₂ = 0.0706 on one slide and 0.0705 on the next; 0.1 − 0.1·0.295 = 0.0705.)
        r = evaluate(self.obj, self.theta, Penalty(), self.batch)
        residual = round(float(r["proba"][0]) - 0.0, 2)
        assert residual == 0.59
        g_rounded = np.asarray(self.X[0]) * residual
        np.testing.assert_allclose(g_rounded, [0.59, 0.59, 0.295], atol=1e-15)
        new = np.asarray(self.theta["W"]) - self.lr * g_rounded
        np.testing.assert_allclose(new, [0.041, 0.141, 0.0705], atol=1e-12)
        # jaxreg's exact gradient agrees with the slide's to the slide's 2 decimals
        assert_printed(np.asarray(r["grad"]["W"])[:2], [0.59, 0.59], 2)

    def test_same_step_with_separate_intercept(self, x64):
        obj = Objective("logistic")  # b separate, unpenalised
        params = {"W": jnp.array([0.2, 0.1]), "b": jnp.array(0.1)}
        batch = Batch(jnp.array([[1.0, 0.5]]), jnp.array([0.0]))
        g = evaluate(obj, params, Penalty(l2=5.0), batch)["grad"]
        g_nopen = evaluate(obj, params, Penalty(), batch)["grad"]
        assert_printed(g_nopen["b"], 0.586618, 6)
        assert_printed(g_nopen["W"], [0.586618, 0.293309], 6)
        assert float(g["b"]) == float(g_nopen["b"])  # the bias is not penalised
        new = sgd_step(params, g_nopen, self.lr)
        assert_printed(new["b"], 0.041338, 6)
        assert_printed(new["W"], [0.141338, 0.070669], 6)


# --------------------------------------------------------------------------- seed 001: softmax
class TestSeed001Softmax:
    """θ = [[b₀, b₁], [w₀, w₁]] = [[0.1, 0.2], [0.3, 0.4]], y = 0; θ is W with X = [[1, x]]."""

    obj = Objective("softmax", n_classes=2, fit_intercept=False)
    theta = {"W": jnp.array([[0.1, 0.2], [0.3, 0.4]])}
    y = jnp.array([0])

    def test_x_equal_1(self, x64):
        X = jnp.array([[1.0, 1.0]])
        r = evaluate(self.obj, self.theta, Penalty(), Batch(X, self.y))
        np.testing.assert_allclose(np.asarray(r["scores"]), [[0.4, 0.6]], atol=1e-15)
        assert_printed(r["proba"][0], [0.450166, 0.549834], 6)
        assert_printed(r["value"], 0.79813887, 8)
        g = r["grad"]
        assert_printed(g["W"], [[-0.549834, 0.549834], [-0.549834, 0.549834]], 6)
        assert_printed(g["W"], [[-0.55, 0.55], [-0.55, 0.55]], 2)  # the slide
        assert relative_error(g, r["autodiff"]) < 1e-12
        new = sgd_step(self.theta, g, 0.01)  # the notebook's learning_rate = 0.01
        assert_printed(new["W"], [[0.10549834, 0.19450166], [0.30549834, 0.39450166]], 8)
        assert_printed(new["W"], [[0.105, 0.195], [0.305, 0.395]], 3)  # the slide
        assert int(r["pred"][0]) == 1

    def test_x_equal_half(self, x64):
        # The slide states η = 0.1 but prints the η = 0.01 result (rounded/truncated to 3
        # decimals): η = 0.1 would give θ'₀₀ = 0.1537, not 0.105.
        X = jnp.array([[1.0, 0.5]])
        g = evaluate(self.obj, self.theta, Penalty(), Batch(X, self.y))["grad"]
        assert_printed(g["W"], [[-0.537430, 0.537430], [-0.268715, 0.268715]], 6)
        assert_printed(g["W"], [[-0.54, 0.54], [-0.27, 0.27]], 2)  # the slide
        new = np.asarray(sgd_step(self.theta, g, 0.01)["W"])
        assert_printed(new, [[0.105374, 0.194626], [0.302687, 0.397313]], 6)
        # the slide's [[0.105, 0.194], [0.302, 0.397]] are these truncated to 3 decimals
        np.testing.assert_array_equal(np.floor(new * 1000) / 1000, [[0.105, 0.194], [0.302, 0.397]])
        wrong_lr = np.asarray(sgd_step(self.theta, g, 0.1)["W"])
        assert abs(wrong_lr[0, 0] - 0.105) > 0.04

    def test_separate_intercept_gives_same_step(self, x64):
        obj = Objective("softmax", n_classes=2)  # b = θ[0], W = θ[1:], X = [[x]]
        params = {"W": jnp.array([[0.3, 0.4]]), "b": jnp.array([0.1, 0.2])}
        g = evaluate(obj, params, Penalty(), Batch(jnp.array([[0.5]]), self.y))["grad"]
        assert_printed(g["b"], [-0.537430, 0.537430], 6)
        assert_printed(g["W"], [[-0.268715, 0.268715]], 6)


# --------------------------------------------------------------------------- seed 001: linear
LEVEL = np.arange(8, dtype=np.float64)
SALARY = np.array([8, 15, 18, 22, 26, 30, 38, 47], dtype=np.float64)


class TestSeed001LinearRegression:
    """ŷ = w x + b, L = (ŷ − y)², ∂L/∂w = 2x(ŷ − y), ∂L/∂b = 2(ŷ − y), from (w, b) = (1.0, 0.5)."""

    obj = Objective("squared")  # mean over the batch; one example: L itself

    def test_one_sgd_step_by_hand(self, x64):
        w, b, lr = 1.0, 0.5, 0.01
        x, y = LEVEL[1], SALARY[1]  # the sample (1, 15)
        y_hat = w * x + b  # 1.5
        loss = (y_hat - y) ** 2  # 182.25
        dw, db = 2 * x * (y_hat - y), 2 * (y_hat - y)  # -27, -27
        params = {"W": jnp.array([w]), "b": jnp.array(b)}
        batch = Batch(jnp.array([[x]]), jnp.array([y]))
        r = evaluate(self.obj, params, Penalty(), batch)
        assert float(r["value"]) == pytest.approx(loss, rel=1e-14)
        assert loss == pytest.approx(182.25)
        assert float(r["pred"][0]) == pytest.approx(y_hat, rel=1e-14)
        g = r["grad"]
        assert float(g["W"][0]) == pytest.approx(dw, rel=1e-14) and dw == pytest.approx(-27.0)
        assert float(g["b"]) == pytest.approx(db, rel=1e-14)
        new = sgd_step(params, g, lr)
        assert float(new["W"][0]) == pytest.approx(1.27, abs=1e-14)
        assert float(new["b"]) == pytest.approx(0.77, abs=1e-14)

    def test_vectorised_form_and_an_epoch_of_sgd(self, x64):
        # θ = [b, w], x = [1, level]: ∇θ L = 2 x (ŷ − y); one pass of per-sample SGD in order
        lr = 0.01
        theta_np = np.array([0.5, 1.0])
        obj = Objective("squared", fit_intercept=False)
        grad = jax.jit(obj.grad)
        theta = {"W": jnp.asarray(theta_np)}
        for level, salary in zip(LEVEL, SALARY):
            x = np.array([1.0, level])
            theta_np = theta_np - lr * 2 * x * (x @ theta_np - salary)
            g = grad(theta, Penalty(), Batch(jnp.asarray(x[None, :]), jnp.array([salary])))
            theta = sgd_step(theta, g, lr)
        np.testing.assert_allclose(np.asarray(theta["W"]), theta_np, rtol=1e-13)

    def test_full_batch_gd_reaches_least_squares(self, x64):
        A = np.c_[LEVEL, np.ones_like(LEVEL)]
        (w_ls, b_ls), *_ = np.linalg.lstsq(A, SALARY, rcond=None)
        np.testing.assert_allclose(np.linalg.solve(A.T @ A, A.T @ SALARY), [w_ls, b_ls], rtol=1e-12)
        batch = Batch(jnp.asarray(LEVEL[:, None]), jnp.asarray(SALARY))

        # the least-squares solution is a stationary point of jaxreg's mean squared objective
        g_ls = evaluate(self.obj, {"W": jnp.array([w_ls]), "b": jnp.array(b_ls)}, Penalty(), batch)["grad"]
        assert float(jnp.abs(g_ls["W"][0])) < 1e-10 and float(jnp.abs(g_ls["b"])) < 1e-10

        # and full-batch gradient descent with jaxreg's closed-form gradient converges to it
        @jax.jit
        def gd(params):
            step = lambda _, p: sgd_step(p, self.obj.grad(p, Penalty(), batch), 0.05)  # noqa: E731
            return jax.lax.fori_loop(0, 3000, step, params)

        params = gd(self.obj.init_params(1, dtype=jnp.float64))
        assert float(params["W"][0]) == pytest.approx(w_ls, abs=1e-6)
        assert float(params["b"]) == pytest.approx(b_ls, abs=1e-6)
        # the fitted line: salary ≈ 5.095238 · level + 7.666667 (= 107/21 and 23/3)
        assert_printed([w_ls, b_ls], [107 / 21, 23 / 3], 12)


# --------------------------------------------------------------------------- seed 002
def notebook_softmax_loop(X, y, W, reg):
    """Mean softmax loss + 0.5 reg ‖W‖² and its gradient, one example and class at a time."""
    n, C = X.shape[0], W.shape[1]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n):
        s = X[i] @ W
        e = np.exp(s - s.max())
        P = e / e.sum()
        loss += -np.log(P[y[i]])
        for m in range(C):
            dW[:, m] += X[i] * (P[m] - (1.0 if m == y[i] else 0.0))
    return loss / n + 0.5 * reg * np.sum(W**2), dW / n + reg * W


def notebook_hinge_loop(X, y, W, reg):
    """Mean multiclass hinge loss + 0.5 reg ‖W‖² and its gradient, with explicit loops."""
    n, C = X.shape[0], W.shape[1]
    loss, dW = 0.0, np.zeros_like(W)
    for i in range(n):
        s = X[i] @ W
        for j in range(C):
            if j == y[i]:
                continue
            margin = s[j] - s[y[i]] + 1.0
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    return loss / n + 0.5 * reg * np.sum(W**2), dW / n + reg * W


def notebook_problem(loss, seed):
    """Like the notebook: a column of ones prepended to X (the bias row of W), W ~ U[0, 1)."""
    rng = np.random.default_rng(seed)
    n, d, C = 10, 6, 4
    for _ in range(1000):
        X = np.c_[np.ones(n), rng.normal(size=(n, d))]
        y = rng.integers(0, C, size=n)
        W = rng.random((d + 1, C))
        S = X @ W
        margins = S - S[np.arange(n), y][:, None] + 1.0
        margins[np.arange(n), y] = np.inf
        if loss != "hinge" or np.min(np.abs(margins)) > 1e-3:  # off the hinge's kinks
            return X, y, W
    raise RuntimeError("no hinge problem away from the kinks")  # pragma: no cover


@pytest.mark.parametrize("reg", [0.0, 0.1, 2.5])
@pytest.mark.parametrize("loss", ["softmax", "hinge"])
def test_seed002_notebook_losses_and_gradients(loss, reg, x64):
    X, y, W = notebook_problem(loss, seed=int(reg * 10))
    loop = notebook_softmax_loop if loss == "softmax" else notebook_hinge_loop
    ref_loss, ref_grad = loop(X, y, W, reg)
    obj = Objective(loss, n_classes=4, fit_intercept=False)  # the bias is X's column of ones
    params, pen, batch = {"W": jnp.asarray(W)}, Penalty(l2=reg), Batch(jnp.asarray(X), jnp.asarray(y))
    r = evaluate(obj, params, pen, batch)
    np.testing.assert_allclose(float(r["value"]), ref_loss, rtol=1e-12)
    assert relative_error(r["grad"]["W"], ref_grad) <= 1e-10
    assert relative_error(r["autodiff"]["W"], ref_grad) <= 1e-10
