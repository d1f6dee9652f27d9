"""The grid engine: per-model hyperparameters, keys, starting points, init scales and data, each
member equal to its own single train() call; chunking; validation before compiling."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import engine
from jaxreg.objective import Objective
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import train

OBJ = Objective("softmax", n_classes=3)
CFG = TrainConfig(method="minibatch", batch_size=8, n_epochs=4, eval_every=2)
G = 4


def leaves_close(a, b, atol=1e-12):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=0, atol=atol)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = np.argmax(X[:, :3] + 0.5 * rng.normal(size=(40, 3)), axis=1)
    Xh = rng.normal(size=(12, 5))
    yh = np.argmax(Xh[:, :3], axis=1)
    return prepare_data(OBJ, CFG, X, y, Xh, yh)


@pytest.fixture(scope="module")
def hypers():
    return engine.stack_hypers(G, Hyper(decay_time=2.0), learning_rate=[0.1, 0.2, 0.3, 0.4], l2=[0.0, 0.01, 0.0, 0.1])


def one_hyper(hypers, g):
    return Hyper(*(float(np.asarray(v)[g]) for v in hypers[:4]))


def test_stack_hypers(hypers):
    assert hypers.learning_rate.shape == hypers.decay_time.shape == (G,)
    np.testing.assert_array_equal(hypers.decay_time, 2.0)
    h = engine.stack_hypers(3, Hyper(extra={"beta": 0.5}), beta=[0.0, 1.0, 2.0], learning_rate=[1, 2, 3])
    np.testing.assert_array_equal(h.extra["beta"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(stack := engine.stack_hypers(2, Hyper(extra={"rates": [1.0, 0.5, 0.1]})).extra["rates"],
                                  [[1.0, 0.5, 0.1]] * 2)
    assert stack.shape == (2, 3)
    with pytest.raises(ValueError, match="learning_rate"):
        engine.stack_hypers(3, learning_rate=[0.1, 0.2])


def test_per_model_keys_and_params0_equal_single_calls(data, hypers):
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.PRNGKey(5), jnp.arange(G))
    p0 = {"W": np.random.default_rng(1).normal(size=(G, 5, 3)), "b": np.zeros((G, 3))}
    out = engine.train_models(OBJ, CFG, data, hypers, keys=keys, params0=p0)
    assert out.result.params["W"].shape == (G, 5, 3) and out.final["holdout_acc"].shape == (G,)
    for g in range(G):
        one = train(OBJ, data, one_hyper(hypers, g), CFG, key=keys[g],
                    init_params={k: v[g] for k, v in p0.items()})
        leaves_close(one, jax.tree_util.tree_map(lambda a: a[g], out.result))
    # shared key and shared params0: every member sees the same batches and start
    shared = engine.train_models(OBJ, CFG, data, hypers, keys=7, params0={k: v[0] for k, v in p0.items()})
    one = train(OBJ, data, one_hyper(hypers, 2), CFG, key=7, init_params={k: v[0] for k, v in p0.items()})
    leaves_close(one, jax.tree_util.tree_map(lambda a: a[2], shared.result))


def test_init_scale_per_model_and_as_a_grid_axis(data, hypers):
    scales = np.array([0.0, 0.5, 1.0, 0.5])
    out = engine.train_models(OBJ, CFG, data, hypers, keys=3, init_scale=scales)
    for g in range(G):
        one = train(OBJ, data, one_hyper(hypers, g), CFG, key=3, init_scale=float(scales[g]))
        leaves_close(one, jax.tree_util.tree_map(lambda a: a[g], out.result))
    # the same through sweep: init_scale is an axis like any other
    res = sweep(OBJ, data, CFG, {"init_scale": [0.0, 1.0], "seed": [0, 1]}, key=jax.random.PRNGKey(2))
    assert res.shape == (2, 2)
    one = train(OBJ, data, Hyper(), CFG, key=jax.random.fold_in(jax.random.PRNGKey(2), 1), init_scale=1.0)
    leaves_close(one.params, jax.tree_util.tree_map(lambda a: a[1, 1], res.params))


def test_model_data_merged_per_model(data, hypers):
    """Per-model data: each member gets its own hold-out labels (e.g. a fold); its hold-out
    metrics are those of its own labels, computed here by hand."""
    rng = np.random.default_rng(4)
    labels = np.stack([rng.integers(0, 3, 12) for _ in range(G)]).astype(np.int32)

    def merge(d, y_holdout):
        return d._replace(holdout=d.holdout._replace(y=y_holdout))

    out = engine.train_models(OBJ, CFG, data, hypers, model_data=labels, merge_data=merge)
    for g in range(G):
        pred = np.argmax(np.asarray(data.holdout.X) @ out.result.params["W"][g] + out.result.params["b"][g], axis=1)
        np.testing.assert_allclose(out.final["holdout_acc"][g], np.mean(pred == labels[g]), atol=1e-12)
    plain = engine.train_models(OBJ, CFG, data, hypers)  # training itself did not change
    leaves_close(plain.result.params, out.result.params)


def test_chunks_are_padded_and_equal_one_program(data, hypers):
    whole = engine.train_models(OBJ, CFG, data, hypers)
    chunked = engine.train_models(OBJ, CFG, data, hypers, chunk_size=3)
    assert (whole.chunk_size, whole.n_chunks) == (4, 1) and (chunked.chunk_size, chunked.n_chunks) == (3, 2)
    leaves_close(whole.result, chunked.result)
    assert engine.plan_chunks(OBJ, CFG, data, 10, chunk_size=3, n_devices=2) == (4, 3)


def test_optimizer_state_size():
    """In parameter copies (P = 5·3 + 3 = 18 numbers): 0, 1, 2 plus Adam's step counters."""
    for name, copies in (("sgd", 0.0), ("momentum", 1.0), ("adam", 2.0)):
        c = engine.opt_state_copies(OBJ, TrainConfig(optimizer=name), 5)
        assert 0 <= c * 18 - copies * 18 <= 4, (name, c)


@pytest.mark.parametrize("kwargs, match", [
    (dict(keys=np.zeros((3, 2), np.uint32)), "keys"),
    (dict(keys="seed"), "key"),
    (dict(params0={"W": np.zeros((5, 3))}), "params0"),
    (dict(params0={"W": np.zeros((G, 4, 3)), "b": np.zeros((G, 3))}), "params0"),
    (dict(init_scale=[0.1, 0.2]), "init_scale"),
    (dict(init_scale=-1.0), "init_scale"),
    (dict(model_data=np.zeros((G, 3))), "merge_data"),
    (dict(devices=[]), "devices"),
    (dict(chunk_size=0), "chunk_size"),
])
def test_bad_input_names_the_argument(data, hypers, kwargs, match):
    with pytest.raises(ValueError, match=match):
        engine.train_models(OBJ, CFG, data, hypers, **kwargs)


def test_bad_hypers_and_data(data, hypers):
    with pytest.raises(ValueError, match="hypers"):
        engine.train_models(OBJ, CFG, data, Hyper(learning_rate=np.ones(3), l2=np.zeros(2)))
    with pytest.raises(ValueError, match="data"):
        engine.train_models(OBJ, CFG, (data.train.X, data.train.y), hypers)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):  # data made for C = 3
        engine.train_models(Objective("softmax", n_classes=2), CFG, data, hypers)
