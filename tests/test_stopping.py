"""Stopping rules as (init, update) objects: each named rule on hand-written metric sequences,
and user-written rules plugged into train and sweep."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxreg import stopping
from jaxreg.objective import Objective
from jaxreg.sweeps import sweep
from jaxreg.config import Hyper, TrainConfig
from jaxreg.prepare import prepare_data
from jaxreg.trainer import train


def run_rule(rule, accs=None, losses=None):
    """Feed a rule one evaluation per entry; params at evaluation k are {"w": k}. Returns the
    index of the first stop (None) and the index held by the selected params at that point."""
    n = len(accs if accs is not None else losses)
    state = rule.init({"w": jnp.asarray(-1.0)})
    for k in range(n):
        acc = jnp.asarray(accs[k] if accs is not None else jnp.nan)
        loss = jnp.asarray(losses[k] if losses is not None else jnp.nan)
        state, stop, selected = rule.update(state, {"w": jnp.asarray(float(k))}, loss, acc)
        if bool(stop):
            return k, int(selected["w"])
    return None, int(selected["w"])


def test_logistic_paper_rule_by_hand():
    # the first drop from the 4th evaluation on is at k = 4 (0.75 < 0.8): weights from k - 2
    assert run_rule(stopping.first_accuracy_drop(), accs=[0.5, 0.6, 0.7, 0.8, 0.75, 0.9]) == (4, 2)
    # a drop before the 4th evaluation does not count
    assert run_rule(stopping.first_accuracy_drop(), accs=[0.5, 0.4, 0.6, 0.7, 0.8]) == (None, 4)


def test_softmax_paper_rule_by_hand():
    # falling below the last non-decreasing value (0.6) three times in a row stops; best is k = 1
    rule = stopping.accuracy_patience(3)
    assert run_rule(rule, accs=[0.5, 0.6, 0.55, 0.56, 0.54, 0.7]) == (4, 1)
    # a recovery resets the count
    assert run_rule(rule, accs=[0.5, 0.6, 0.55, 0.6, 0.58, 0.57, 0.59]) == (6, 1)


def test_patience_rule_by_hand():
    rule = stopping.patience(2, min_delta=0.05)
    # 0.9 -> 0.8 improves by 0.1; 0.78 and 0.77 improve by less than min_delta: stop at k = 3
    assert run_rule(rule, losses=[0.9, 0.8, 0.78, 0.77, 0.1]) == (3, 1)


def test_param_change_rule_by_hand():
    rule = stopping.param_change(tol=0.5, check_every=2)
    assert rule.at == "step" and not rule.needs_holdout
    state = rule.init({"w": jnp.asarray(0.0)})
    stops = []
    for w in [1.0, 2.0, 2.2, 2.4, 2.5, 2.6]:  # checks after updates 2, 4, 6: |2-0|, |2.4-2|, |2.6-2.4|
        state, stop, _ = rule.update(state, {"w": jnp.asarray(w)}, jnp.nan, jnp.nan)
        stops.append(bool(stop))
    assert stops == [False, False, False, True, False, True]


# ----------------------------------------------------------------------------- user rules in the trainer
def target_loss_rule(threshold):
    """A user rule: stop at the first evaluation whose hold-out loss is below ``threshold``, and
    return the weights of that evaluation; its state counts the evaluations."""

    def init(params):
        return jnp.asarray(0, jnp.int32)

    def update(count, params, loss, acc):
        return count + 1, loss < threshold, params

    return stopping.StopRule(init, update)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) + 0.3 * rng.normal(size=60) > 0).astype(float)
    return X[:40], y[:40], X[40:], y[40:]


def test_user_rule_in_train_and_sweep(problem):
    X, y, Xh, yh = problem
    obj = Objective("logistic")
    free_cfg = TrainConfig(n_epochs=30)
    data = prepare_data(obj, free_cfg, X, y, Xh, yh)
    free = train(obj, data, Hyper(learning_rate=0.5), free_cfg)
    h = np.asarray(free.history.holdout_loss)
    # the loss falls; the first evaluation below the threshold is the 14th. Midway between two
    # evaluations, so that the vmapped sweep (whose float rounding may differ from train's in the
    # last bit) crosses it at the same evaluation
    threshold = float(h[12] + h[13]) / 2
    k = int(np.argmax(h < threshold))
    assert 12 < k < 29

    cfg = TrainConfig(n_epochs=30, early_stopping=target_loss_rule(threshold))
    r = train(obj, data, Hyper(learning_rate=0.5), cfg)
    assert bool(r.stopped) and int(r.stop_epoch) == k + 1 and int(r.n_updates) == k + 1
    np.testing.assert_allclose(np.asarray(r.params["W"]), np.asarray(
        train(obj, data, Hyper(learning_rate=0.5), TrainConfig(n_epochs=k + 1)).params["W"]), atol=1e-12)
    assert not np.asarray(r.history.active)[k:].any() and np.asarray(r.history.active)[:k].all()

    # in a grid, each member stops on its own; a slow learning rate never gets there
    res = sweep(obj, data, cfg, {"learning_rate": [0.5, 1e-3]})
    assert res.stopped.tolist() == [True, False]
    assert int(res.stop_epoch[0]) == k + 1 and int(res.stop_epoch[1]) == 30


def test_user_step_rule(problem):
    """A per-update rule: stop after 7 updates, which must equal max_steps=7."""
    X, y, _, _ = problem
    obj = Objective("logistic")

    def update(count, params, loss, acc):
        return count + 1, count + 1 >= 7, params

    rule = stopping.StopRule(lambda p: jnp.asarray(0, jnp.int32), update, at="step", needs_holdout=False)
    cfg = TrainConfig(method="minibatch", batch_size=10, n_epochs=5, early_stopping=rule)
    data = prepare_data(obj, cfg, X, y)  # no hold-out needed
    key = jax.random.PRNGKey(3)
    r = train(obj, data, Hyper(learning_rate=0.3), cfg, key=key)
    ref = train(obj, data, Hyper(learning_rate=0.3),
                TrainConfig(method="minibatch", batch_size=10, n_epochs=5, max_steps=7), key=key)
    assert int(r.n_updates) == 7 and bool(r.stopped) and int(r.stop_epoch) == 2  # 4 updates per epoch
    np.testing.assert_array_equal(np.asarray(r.last_params["W"]), np.asarray(ref.last_params["W"]))


def test_bad_rules_are_refused():
    with pytest.raises(ValueError, match="early_stopping"):
        TrainConfig(early_stopping="sometimes")
    with pytest.raises(ValueError, match="early_stopping.at"):
        TrainConfig(early_stopping=stopping.StopRule(lambda p: (), lambda *a: ((), True, a[1]), at="epoch"))
    step = stopping.StopRule(lambda p: (), lambda *a: ((), True, a[1]), at="step", needs_holdout=False)
    with pytest.raises(ValueError, match="stop_tol"):
        TrainConfig(early_stopping=step, stop_tol=1e-3)
    with pytest.raises(ValueError, match="hold-out"):
        prepare_data(Objective("logistic"), TrainConfig(early_stopping=target_loss_rule(0.1)),
                     np.ones((4, 2)), np.array([0, 1, 0, 1]))
