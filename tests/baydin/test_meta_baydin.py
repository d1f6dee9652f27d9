"""experiments.baydin.study (Baydin et al. 2018's logistic regression): the data transform, torch's
init, the six methods as one program (each member the optimizer it names, on the trainer's
batches), the per-iteration loss replay, the summary keys, the figure and the script. float32
as the experiment runs; tiny synthetic digits."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import baydin_hd
from experiments.baydin import study as baydin
from experiments.baydin.figures import baydin_figure, moving_average
from jaxreg import plots
from jaxreg.data import synthetic_mnist
from jaxreg.objective import Batch, Penalty
from jaxreg.progress import StepLog
from jaxreg.batching import epoch_permutation
from jaxreg.config import Hyper, TrainConfig
from jaxreg.trainer import train


@pytest.fixture(scope="module")
def digits():
    return synthetic_mnist(n_train=256, n_test=64, seed=5)


@pytest.fixture(scope="module")
def seed_run(digits):
    data = baydin.baydin_data(digits)
    return data, baydin.run_seed(data, 3, epochs=2, batch_size=32, alpha0=0.01,
                                 betas={"sgd": 1e-3, "sgdn": 1e-3, "adam": 1e-5})


def test_normalize_and_init():
    x = baydin.normalize(np.array([[[0, 255]]], np.uint8))
    np.testing.assert_allclose(x, [[(0 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081]], rtol=1e-6)
    p = baydin.torch_linear_init(jax.random.PRNGKey(0), 784, 10)
    assert p["W"].shape == (784, 10) and p["b"].shape == (10,)
    assert float(jnp.max(jnp.abs(p["W"]))) <= 1 / 28 and float(jnp.max(jnp.abs(p["W"]))) > 0.9 / 28
    assert baydin.method_table({"sgd": 1.0, "sgdn": 2.0, "adam": 3.0}) == ([0, 0, 1, 1, 2, 2], [0, 1.0, 0, 2.0, 0, 3.0])


def test_members_are_their_optimizers_on_the_trainers_batches(seed_run):
    data, r = seed_run
    assert r.valid_loss.shape == (6, 3) and r.alpha.shape == (6, 16) and r.iter_loss.shape == (6, 16)
    assert not r.diverged.any()
    np.testing.assert_array_equal(r.alpha[[0, 2, 4]], np.float32(0.01))  # baselines keep α0
    assert np.all(r.alpha[1, 1:] != np.float32(0.01))  # SGD-HD adapts from its second update
    obj, key = baydin.objective(), jax.random.PRNGKey(3)
    p0 = baydin.torch_linear_init(jax.random.fold_in(key, 1), 784, 10)
    for i, alias in ((0, "sgd"), (2, "nesterov"), (4, "adam")):  # the vmapped member = train() alone
        one = train(obj, data, Hyper(learning_rate=0.01, l2=1e-4),
                    TrainConfig(method="minibatch", batch_size=32, n_epochs=2, optimizer=alias, grad="autodiff"),
                    key=key, init_params=p0)
        np.testing.assert_allclose(r.valid_loss[i, -1], one.history.holdout_loss[-1], rtol=1e-5)
    # the replayed loss of update t (epoch 1, slice 3) is at θ_{t−1} on the batch the trainer used:
    # its gradient (+ weight decay on W and b) is exactly SGD's step θ_{t−1} → θ_t
    cfg = dataclasses.replace(baydin.train_config(2, 32), optimizer="sgd", step_trace=lambda p, s: p)
    tr = train(obj, data, Hyper(learning_rate=0.01, l2=1e-4), cfg, key=key, init_params=p0).trace
    t = 8 + 3
    idx = np.asarray(epoch_permutation(key, 1, 256))[3 * 32:4 * 32]
    before = {k: tr[k][t - 1] for k in tr}
    batch = Batch(data.train.X[idx], data.train.y[idx])
    g = jax.grad(lambda p: obj.value(p, Penalty(l2=1e-4), batch))(before)
    for k in ("W", "b"):
        np.testing.assert_allclose(tr[k][t], before[k] - 0.01 * g[k], rtol=1e-5, atol=1e-7)
    loss = float(jnp.mean(obj.per_example_loss(before, batch)))
    assert r.iter_loss[0, t] == pytest.approx(loss, rel=1e-5)
    first = float(jnp.mean(obj.per_example_loss(p0, Batch(data.train.X[np.asarray(epoch_permutation(key, 0, 256))[:32]],
                                                          data.train.y[np.asarray(epoch_permutation(key, 0, 256))[:32]]))))
    assert r.iter_loss[0, 0] == pytest.approx(first, rel=1e-5)


def test_summary_figure_and_script(tmp_path, digits, seed_run):
    _, r = seed_run
    s = baydin.summarize([r, r])
    assert set(baydin_hd.KEYS) <= set(s) and set(s["final_alpha"]) == set(baydin.METHODS)
    assert len(s["per_epoch_valid_loss"]["adam_hd"]) == 3 and s["final_valid_loss_sd"]["sgd"] == 0.0
    assert s["final_alpha"]["sgd_hd"] == pytest.approx(float(r.alpha[1, -1]))
    np.testing.assert_allclose(moving_average([1.0, 3.0, 5.0, 7.0], 2), [1.0, 2.0, 4.0, 6.0])
    fig = baydin_figure(baydin.curves([r]), baydin.METHODS, window=4)
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 6
    plots.save_figure(fig, tmp_path / "f.png")
    cfg = dataclasses.replace(baydin_hd.smoke_config(), seeds=(0,), epochs=1, n_train=128, n_valid=32, batch_size=32)
    out = baydin_hd.run(tmp_path / "out", cfg, digits, StepLog(enabled=False))
    assert sorted(out["files"]) == sorted(p.name for p in (tmp_path / "out").iterdir())
    saved = json.loads((tmp_path / "out" / "baydin_hd.json").read_text())
    assert tuple(saved) == baydin_hd.KEYS and len(saved["per_epoch_valid_loss"]["sgd"]) == 2
