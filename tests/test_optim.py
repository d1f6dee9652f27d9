"""Optimizers are optax: any factory schedule -> GradientTransformation runs in train and sweep,
its extra hyperparameters traced; schedules are factories too; no recompilation per value."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxreg import optim
from jaxreg.objective import Objective
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import jitted_trainer, train

OBJ = Objective("softmax", n_classes=3)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 4))
    y = np.argmax(X[:, :3] + 0.5 * rng.normal(size=(30, 3)), axis=1)
    return prepare_data(OBJ, TrainConfig(), X, y, X[:10], y[:10])


def optax_loop(tx, data, hyper, n_steps):
    """The reference: optax's own loop on the closed-form gradient, full batch."""
    p = OBJ.init_params(4, dtype=jnp.float64)
    state = tx.init(p)
    for _ in range(n_steps):
        g = OBJ.grad(p, hyper.penalty, data.train)
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
    return p


def adamw(schedule, weight_decay):
    return optax.adamw(schedule, weight_decay=weight_decay)


@pytest.mark.parametrize("name, factory, extra, reference", [
    ("adamw", adamw, {"weight_decay": 0.05}, optax.adamw(0.05, weight_decay=0.05)),
    ("lion", optax.lion, {}, optax.lion(0.05)),
    ("adamw-partial", functools.partial(optax.adamw, weight_decay=0.1), {}, optax.adamw(0.05, weight_decay=0.1)),
])
def test_optax_factories_in_train(data, name, factory, extra, reference):
    cfg = TrainConfig(n_epochs=12, optimizer=factory, eval_every=4)
    hyper = Hyper(learning_rate=0.05, l2=0.01, extra=extra)
    r = train(OBJ, data, hyper, cfg)
    want = optax_loop(reference, data, hyper, 12)
    for k in want:  # Adam-type division by √v̂ + ε: jit vs eager rounding ~1e-10
        np.testing.assert_allclose(np.asarray(r.params[k]), np.asarray(want[k]), rtol=0, atol=1e-9)


def test_factory_hyperparameter_is_a_traced_grid_axis(data):
    """weight_decay swept as a traced value: one program; each member equals its own train()."""
    cfg = TrainConfig(n_epochs=6, optimizer=adamw, eval_every=3)
    base = Hyper(learning_rate=0.05, extra={"weight_decay": 0.0})
    res = sweep(OBJ, data, cfg, {"weight_decay": [0.0, 0.5, 2.0], "learning_rate": [0.05, 0.1]}, hyper=base)
    assert res.axes == ("weight_decay", "learning_rate") and res.shape == (3, 2)
    for i, wd in enumerate((0.0, 0.5, 2.0)):
        one = train(OBJ, data, Hyper(learning_rate=0.1, extra={"weight_decay": wd}), cfg)
        np.testing.assert_allclose(res.params["W"][i, 1], np.asarray(one.params["W"]), atol=1e-12)
    assert not np.allclose(res.params["W"][0, 1], res.params["W"][2, 1])  # it matters


def test_momentum_alias_takes_a_traced_momentum(data):
    cfg = TrainConfig(n_epochs=6, optimizer="momentum", momentum=0.9)
    static = train(OBJ, data, Hyper(learning_rate=0.1), cfg)
    traced = train(OBJ, data, Hyper(learning_rate=0.1, extra={"momentum": 0.9}), cfg)
    np.testing.assert_allclose(np.asarray(static.params["W"]), np.asarray(traced.params["W"]), atol=1e-15)
    res = sweep(OBJ, data, cfg, {"momentum": [0.0, 0.9]}, hyper=Hyper(learning_rate=0.1, extra={"momentum": 0.5}))
    plain = train(OBJ, data, Hyper(learning_rate=0.1), TrainConfig(n_epochs=6))
    np.testing.assert_allclose(res.params["W"][0], np.asarray(plain.params["W"]), atol=1e-15)  # β = 0: SGD
    np.testing.assert_allclose(res.params["W"][1], np.asarray(static.params["W"]), atol=1e-15)


def test_schedule_factory_per_epoch_rates(data):
    """A schedule factory reading a vector of per-epoch rates from hyper.extra equals plain SGD
    run epoch by epoch with those rates."""
    def per_epoch(hyper, steps_per_epoch):
        rates = hyper.extra["rates"]
        return lambda count: rates[jnp.minimum(count // steps_per_epoch, rates.shape[0] - 1)]

    rates = [0.5, 0.2, 0.1, 0.05]
    cfg = TrainConfig(n_epochs=4, schedule=per_epoch)
    r = train(OBJ, data, Hyper(extra={"rates": rates}), cfg)
    p = OBJ.init_params(4, dtype=jnp.float64)
    for lr in rates:
        g = OBJ.grad(p, Hyper().penalty, data.train)
        p = jax.tree_util.tree_map(lambda a, b: a - lr * b, p, g)
    np.testing.assert_allclose(np.asarray(r.params["W"]), np.asarray(p["W"]), atol=1e-14)
    np.testing.assert_allclose(np.asarray(r.history.learning_rate), rates)


def test_new_values_do_not_recompile(data):
    cfg = TrainConfig(n_epochs=3, optimizer=adamw)
    program = jitted_trainer(OBJ, cfg)
    for lr, wd in ((0.1, 0.0), (0.3, 0.2), (1e-3, 1.0)):
        train(OBJ, data, Hyper(learning_rate=lr, extra={"weight_decay": wd}), cfg)
    assert program._cache_size() == 1


def test_bad_optimizers_are_refused(data):
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer=0.1)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="cosine")
    with pytest.raises(ValueError, match="optimizer factory"):  # no `beta` keyword
        train(OBJ, data, Hyper(extra={"beta": 0.1}), TrainConfig(n_epochs=2, optimizer=optax.adam))
    with pytest.raises(ValueError, match="GradientTransformation"):
        train(OBJ, data, Hyper(), TrainConfig(n_epochs=2, optimizer=lambda s: "not an optimizer"))
    with pytest.raises(ValueError, match=r"extra\['beta'\]"):
        train(OBJ, data, Hyper(extra={"beta": np.nan}), TrainConfig(n_epochs=2, optimizer=adamw))


def test_momentum_and_integer_fields_are_checked():
    for value in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="momentum"):
            TrainConfig(momentum=value)
    cfg = TrainConfig(method="minibatch", batch_size=8.0)  # a whole float is normalised ...
    assert cfg.batch_size == 8 and type(cfg.batch_size) is int
    assert cfg == TrainConfig(method="minibatch", batch_size=8) and hash(cfg) == hash(TrainConfig(method="minibatch", batch_size=8))
    with pytest.raises(ValueError, match="batch_size"):  # ... a fraction is refused
        TrainConfig(method="minibatch", batch_size=8.5)
    assert optim.OPTIMIZERS == ("sgd", "momentum", "nesterov", "adam")
