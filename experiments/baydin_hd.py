"""Baydin et al. (ICLR 2018), logistic regression on MNIST (Fig. 2, left): SGD, SGD-HD, SGDN,
SGDN-HD, Adam, Adam-HD, the six methods of a seed as one vmapped program, mean ± sd over seeds.

    python -m experiments.baydin_hd --out results     # 5 seeds, full MNIST (~2 min, 2 CPU cores)
    python -m experiments.baydin_hd --smoke --out /tmp/smoke

The set-up and the library calls are :mod:`experiments.baydin.study`'s; writes baydin_hd.json (the
keys of the issue: ``final_valid_loss``, ``final_valid_loss_sd``, ``final_alpha``,
``final_alpha_sd``, ``per_epoch_valid_loss``), baydin_hd.md (the table) and baydin_hd.png.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Optional

from experiments.baydin import study as baydin
from experiments.baydin.figures import baydin_figure
from experiments.meta_learning.report import data_source
from jaxreg import compile_cache
from jaxreg.atomic import to_jsonable, write_json, write_text
from jaxreg.plots.paper import save_figure

KEYS = ("final_valid_loss", "final_valid_loss_sd", "final_alpha", "final_alpha_sd", "per_epoch_valid_loss")


@dataclasses.dataclass(frozen=True)
class BaydinConfig:
    """``python -m experiments.baydin_hd`` (``--smoke``: :func:`smoke_config`); n_train / n_valid:
    the first training / test images (None: all 60,000 / 10,000)."""

    seeds: tuple = (0, 1, 2, 3, 4)
    epochs: int = 10
    batch_size: int = 128
    alpha0: float = 1e-3
    beta_sgd: float = 1e-3  # SGD-HD and SGDN-HD
    beta_adam: float = 1e-7
    momentum: float = 0.9
    weight_decay: float = 1e-4
    n_train: Optional[int] = None
    n_valid: Optional[int] = None
    smoke: bool = False


def default_config() -> BaydinConfig:
    return BaydinConfig()


def smoke_config() -> BaydinConfig:
    return BaydinConfig(seeds=(0, 1), epochs=2, n_train=3000, n_valid=1000, smoke=True)


def setup_text(c: BaydinConfig, data, source: str) -> str:
    n, m = data.train.X.shape[0], data.holdout.X.shape[0]
    return (f"Data: {source}; {n} training images, {m} test images as the validation set, x/255 normalised "
            f"(mean {baydin.MEAN}, std {baydin.STD}). Softmax regression with a bias (torch's nn.Linear init), "
            f"mini-batches of {c.batch_size} reshuffled every epoch ({n // c.batch_size} updates an epoch, the last "
            f"partial batch dropped), {c.epochs} epochs, weight decay {c.weight_decay:g} as the gradient term λθ on "
            f"W and b; α0 = {c.alpha0:g} for every method; β = {c.beta_sgd:g} (SGD-HD, SGDN-HD, μ = {c.momentum}), "
            f"β = {c.beta_adam:g} (Adam-HD); seeds {list(c.seeds)} (batch order and initial weights). "
            + ("SMOKE run (a subset)." if c.smoke else "Full run."))


def run(out_dir, config: BaydinConfig, data: dict, progress) -> dict:
    """Train every seed's six methods; write baydin_hd.json, .md, .png; return the common dict."""
    compile_cache.enable()
    out_dir, timings = Path(out_dir), {}
    td = baydin.baydin_data(data, config.n_train, config.n_valid)
    betas = {"sgd": config.beta_sgd, "sgdn": config.beta_sgd, "adam": config.beta_adam}
    runs, cpu = [], time.process_time()
    with progress.step("six methods per seed", timings):
        for seed in config.seeds:
            t = time.perf_counter()
            runs.append(baydin.run_seed(td, seed, epochs=config.epochs, batch_size=config.batch_size,
                                        alpha0=config.alpha0, betas=betas, weight_decay=config.weight_decay,
                                        momentum=config.momentum))
            progress.log(f"seed {seed}: final validation loss "
                         + ", ".join(f"{m} {v:.4f}" for m, v in zip(baydin.METHODS, runs[-1].valid_loss[:, -1]))
                         + f" ({time.perf_counter() - t:.1f} s)")
    summary = baydin.summarize(runs)
    write_json(out_dir / "baydin_hd.json", {k: summary[k] for k in KEYS}, indent=1)
    setup = setup_text(config, td, data_source(data))
    write_text(out_dir / "baydin_hd.md", baydin.markdown(summary, n_seeds=len(runs), setup=setup))
    save_figure(baydin_figure(baydin.curves(runs), baydin.METHODS, n_seeds=len(runs)), out_dir / "baydin_hd.png")
    timings["cpu_s"] = time.process_time() - cpu
    progress.log(f"wrote baydin_hd.json, baydin_hd.md, baydin_hd.png to {out_dir}")
    return {"rows": [], "files": ["baydin_hd.json", "baydin_hd.md", "baydin_hd.png"], "config": to_jsonable(config),
            "timings": timings}


if __name__ == "__main__":
    from experiments import common

    sys.exit(common.main(sys.modules[__name__]))
