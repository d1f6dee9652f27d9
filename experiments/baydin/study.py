"""Baydin et al., "Online learning rate adaptation with hypergradient descent" (ICLR 2018), its
logistic-regression experiment (§5.1, Fig. 2 left): the six methods of a seed as ONE program.

Set-up (the paper's code, ``gbaydin/hypergradient-descent``): MNIST, the 60,000 training images
to train and the 10,000 test images as the validation set, pixels x/255 normalised with mean
0.1307 and std 0.3081; 10-class softmax regression with a bias (``nn.Linear(784, 10)``,
initialised as torch does: W, b ~ U(−1/√784, 1/√784)); mean cross-entropy on mini-batches of
128, reshuffled every epoch (jaxreg drops the last partial batch: 468 updates an epoch, the
paper's loader 469); weight decay λ = 1e-4 as the gradient term λθ on every parameter, bias
included (``Objective(..., penalize_intercept=True)``, ``Hyper(l2=λ)``); α0 for every method;
SGD, SGDN (μ = 0.9), Adam and their HD variants by :func:`jaxreg.meta.online.hd_family`
(``method``, β traced per model; β = 0: the baselines).

:func:`run_seed` trains the six models for one seed (its batch order and its initial weights,
shared by the six), recording after every update α_t and θ_t; :func:`minibatch_losses`
replays the batch order to give the paper's per-iteration training loss (the mini-batch
cross-entropy at θ_{t−1}, no weight decay); :func:`summarize` reduces seeds to mean ± sd.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from experiments.tables import markdown_table
from jaxreg import engine
from jaxreg.config import Hyper, TrainConfig, TrainData
from jaxreg.meta.online import HD_METHODS, hd_family
from jaxreg.objective import Batch, Objective
from jaxreg.batching import epoch_permutation

METHODS = ("sgd", "sgd_hd", "sgdn", "sgdn_hd", "adam", "adam_hd")
MEAN, STD = 0.1307, 0.3081
#: the paper's own run (its repository's results/logreg/*.csv, last row: epoch 10, 4,690
#: iterations, one seed): validation loss and final α, for comparison only.
PAPER_FINAL = {"valid_loss": {"sgd": 0.37375, "sgd_hd": 0.28778, "sgdn": 0.28455, "sgdn_hd": 0.27186,
                              "adam": 0.27187, "adam_hd": 0.27233},
               "alpha": {"sgd": 0.001, "sgd_hd": 0.0021268, "sgdn": 0.001, "sgdn_hd": -0.00020020,
                         "adam": 0.001, "adam_hd": 0.0010316}}


def objective() -> Objective:
    """``nn.Linear(784, 10)`` + cross-entropy, weight decay on W and b."""
    return Objective("softmax", n_classes=10, fit_intercept=True, penalize_intercept=True)


def normalize(images) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 784) float32: (x/255 − 0.1307)/0.3081 (torchvision's
    ``ToTensor`` then ``Normalize``)."""
    x = np.asarray(images, np.float32).reshape(len(images), -1) / np.float32(255.0)
    return (x - np.float32(MEAN)) / np.float32(STD)


def baydin_data(data: dict, n_train: Optional[int] = None, n_valid: Optional[int] = None, dtype=jnp.float32) -> TrainData:
    """The first ``n_train`` training images (default all) to train, the first ``n_valid`` test
    images (default all) as the hold-out (validation) set, normalised."""
    sl_t, sl_v = slice(n_train), slice(n_valid)
    train = Batch(jnp.asarray(normalize(data["train_images"][sl_t]), dtype),
                  jnp.asarray(np.asarray(data["train_labels"][sl_t], np.int32)))
    valid = Batch(jnp.asarray(normalize(data["test_images"][sl_v]), dtype),
                  jnp.asarray(np.asarray(data["test_labels"][sl_v], np.int32)))
    return TrainData(train, valid)


def torch_linear_init(key, n_in: int, n_out: int, dtype=jnp.float32) -> dict:
    """``nn.Linear``'s default initialisation: W (n_in, n_out) and b (n_out,) ~ U(−1/√n_in, 1/√n_in)."""
    bound = 1.0 / np.sqrt(n_in)
    kw, kb = jax.random.split(key)
    return {"W": jax.random.uniform(kw, (n_in, n_out), dtype, -bound, bound),
            "b": jax.random.uniform(kb, (n_out,), dtype, -bound, bound)}


def method_table(betas: dict) -> tuple[list, list]:
    """(method index (6,), β (6,)) of :data:`METHODS`: ``betas`` = {"sgd": β, "sgdn": β, "adam":
    β} for the HD variants; the baselines have β = 0."""
    idx, beta = [], []
    for name in METHODS:
        base = name.removesuffix("_hd")
        idx.append(float(HD_METHODS.index(base)))
        beta.append(float(betas[base]) if name.endswith("_hd") else 0.0)
    return idx, beta


def trace_alpha_params(params, opt_state):
    """The ``step_trace``: (α_t, θ_t) after every update."""
    return opt_state.learning_rate, params


class SeedRun(NamedTuple):
    """One seed, six models (in :data:`METHODS` order): valid_loss / train_loss (6, E + 1):
    mean cross-entropy (no weight decay) on the validation / whole training set after each
    epoch 0…E; alpha (6, K): α_t after update t; iter_loss (6, K): the mini-batch loss at
    θ_{t−1} (:func:`minibatch_losses`); diverged (6,)."""

    valid_loss: np.ndarray
    train_loss: np.ndarray
    alpha: np.ndarray
    iter_loss: np.ndarray
    diverged: np.ndarray


def train_config(epochs: int, batch_size: int) -> TrainConfig:
    return TrainConfig(method="minibatch", batch_size=batch_size, n_epochs=epochs, eval_every=1,
                       optimizer=hd_family, grad="autodiff", step_trace=trace_alpha_params)


@functools.partial(jax.jit, static_argnames=("objective", "batch_size"))
def _epoch_losses(objective, X, y, key, epoch, params, *, batch_size):
    """(G, spe) mini-batch losses of epoch ``epoch`` at ``params`` (G, spe, ...): the params
    before each of its updates."""
    spe = jax.tree_util.tree_leaves(params)[0].shape[1]
    idx = epoch_permutation(key, epoch, X.shape[0])[:spe * batch_size].reshape(spe, batch_size)

    def one(idx_t, p_t):  # one update: every model on its batch
        batch = Batch(X[idx_t], y[idx_t])
        return jax.vmap(lambda q: jnp.mean(objective.per_example_loss(q, batch)))(p_t)

    return jax.vmap(one, in_axes=(0, 1), out_axes=1)(idx, params)


def minibatch_losses(objective: Objective, data: TrainData, key, params0, params_trace, batch_size: int) -> np.ndarray:
    """(G, K) mini-batch cross-entropy of update t at θ_{t−1} (θ_0 = ``params0``, shared; then
    ``params_trace`` (G, K, ...), θ_t after update t), on the batch the trainer drew for update
    t (:func:`jaxreg.trainer.epoch_permutation`, the (t mod steps-per-epoch)-th slice of
    ``batch_size``), one epoch at a time."""
    X, y = data.train.X, data.train.y
    G, K = jax.tree_util.tree_leaves(params_trace)[0].shape[:2]
    spe = X.shape[0] // batch_size
    out = []
    for e in range(-(-K // spe)):
        lo, hi = e * spe, min((e + 1) * spe, K)
        before = jax.tree_util.tree_map(  # θ_{t−1} for t = lo+1 … hi
            lambda p0, tr: np.concatenate([np.broadcast_to(np.asarray(p0), (G, 1) + np.shape(p0)), tr[:, :hi - 1]], 1)
            if lo == 0 else tr[:, lo - 1:hi - 1], params0, params_trace)
        out.append(np.asarray(_epoch_losses(objective, X, y, key, e, before, batch_size=batch_size)))
    return np.concatenate(out, 1)


def run_seed(data: TrainData, seed: int, *, epochs: int = 10, batch_size: int = 128, alpha0: float = 1e-3,
             betas: Optional[dict] = None, weight_decay: float = 1e-4, momentum: float = 0.9) -> SeedRun:
    """The six methods for one seed in one vmapped program (module docstring): batch order from
    ``PRNGKey(seed)``, initial weights :func:`torch_linear_init` of ``fold_in(key, 1)``."""
    betas = {"sgd": 1e-3, "sgdn": 1e-3, "adam": 1e-7} if betas is None else betas
    obj, key = objective(), jax.random.PRNGKey(seed)
    d, dtype = data.train.X.shape[1], data.train.X.dtype
    params0 = torch_linear_init(jax.random.fold_in(key, 1), d, obj.n_classes, dtype)
    idx, beta = method_table(betas)
    hypers = engine.stack_hypers(len(METHODS), Hyper(learning_rate=alpha0, l2=weight_decay,
                                                     extra={"method": 0.0, "beta": 0.0, "momentum": momentum}),
                                 method=idx, beta=beta)
    cfg = train_config(epochs, batch_size)
    out = engine.train_models(obj, cfg, data, hypers, keys=key, params0=params0, chunk_size=len(METHODS),
                              progress=False)
    alpha, params_trace = out.result.trace
    h = out.result.history
    v0 = float(jnp.mean(obj.per_example_loss(params0, data.holdout)))
    t0 = float(jnp.mean(obj.per_example_loss(params0, data.train)))
    col = lambda x0, x: np.concatenate([np.full((len(METHODS), 1), x0), np.asarray(x)], 1)  # noqa: E731
    iter_loss = minibatch_losses(obj, data, key, params0, params_trace, batch_size)
    return SeedRun(col(v0, h.holdout_loss), col(t0, h.train_loss), np.asarray(alpha), iter_loss,
                   np.asarray(out.result.diverged))


def summarize(runs: Sequence[SeedRun]) -> dict:
    """Mean and sd (ddof = 1; 0 for one seed) over seeds, per method: the keys of
    ``results/baydin_hd.json`` (``final_valid_loss``, ``final_valid_loss_sd``, ``final_alpha``,
    ``final_alpha_sd``, ``per_epoch_valid_loss`` (E + 1 means)) and, for the note,
    ``per_epoch_valid_loss_sd``, ``per_epoch_train_loss``."""
    stack = lambda f: np.stack([getattr(r, f) for r in runs])  # noqa: E731  (S, 6, ...)
    sd = lambda a: a.std(0, ddof=1) if len(runs) > 1 else np.zeros(a.shape[1:])  # noqa: E731
    v, a, t = stack("valid_loss"), stack("alpha")[..., -1], stack("train_loss")
    per = lambda arr: {m: arr[i].tolist() for i, m in enumerate(METHODS)}  # noqa: E731
    scalar = lambda arr: {m: float(arr[i]) for i, m in enumerate(METHODS)}  # noqa: E731
    return {"final_valid_loss": scalar(v[:, :, -1].mean(0)), "final_valid_loss_sd": scalar(sd(v[:, :, -1])),
            "final_alpha": scalar(a.mean(0)), "final_alpha_sd": scalar(sd(a)),
            "per_epoch_valid_loss": per(v.mean(0)), "per_epoch_valid_loss_sd": per(sd(v)),
            "per_epoch_train_loss": per(t.mean(0))}


@dataclasses.dataclass(frozen=True)
class Curves:
    """Seed means for the figure: iter_loss / alpha (6, K), valid_loss (6, E + 1)."""

    iter_loss: np.ndarray
    alpha: np.ndarray
    valid_loss: np.ndarray


def curves(runs: Sequence[SeedRun]) -> Curves:
    return Curves(*(np.mean([getattr(r, f) for r in runs], 0) for f in ("iter_loss", "alpha", "valid_loss")))


def markdown(summary: dict, *, n_seeds: int, setup: str) -> str:
    """The note: validation loss after every epoch and the final α, mean ± sd over seeds, and
    the paper's own run beside it."""
    E = len(summary["per_epoch_valid_loss"][METHODS[0]]) - 1
    head = ["method", *[f"epoch {e}" for e in range(E + 1)], "final α", "paper: valid loss, α"]
    rows = []
    for m in METHODS:
        mean, sd = summary["per_epoch_valid_loss"][m], summary["per_epoch_valid_loss_sd"][m]
        rows.append([m, *[f"{a:.4f} ± {b:.4f}" for a, b in zip(mean, sd)],
                     f"{summary['final_alpha'][m]:.3g} ± {summary['final_alpha_sd'][m]:.2g}",
                     f"{PAPER_FINAL['valid_loss'][m]:.4f}, {PAPER_FINAL['alpha'][m]:.3g}"])
    return "\n".join([
        "# Baydin et al. (ICLR 2018), Fig. 2 left: logistic regression on MNIST", "", setup, "",
        f"Validation loss (mean cross-entropy on the validation images) after each epoch and the final α, "
        f"mean ± sd over {n_seeds} seeds; the last column is the paper's own run (one seed, its repository's "
        "results/logreg CSVs, after 10 epochs).", "", *markdown_table(head, rows), ""])
