"""The sweep written the obvious way, as a yardstick for scripts/bench.py.

A Hydra app on the joblib launcher whose job trains the same network (60 points, one tanh
hidden layer, full-batch SGD) in a plain numpy loop and logs to MLflow with the fluent API:
params, the full loss curve in batched ``log_batch`` calls, ``final_mse`` and a two-panel
fit figure. No scratchnet code is used.

    python scripts/baseline_sweep.py --multirun hidden=8,16,32 lr=0.01,0.05,0.1 \\
        noise=0.03,0.06 seed=1,2,3 uri=sqlite:///baseline.db
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import hydra
import matplotlib
import mlflow
import numpy as np
from hydra.core.config_store import ConfigStore
from mlflow.entities import Metric

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@dataclass
class BaselineConfig:
    # --help shows HELP below (Hydra's help template), not Hydra's generic page
    defaults: list[Any] = field(default_factory=lambda: [
        "_self_", {"override hydra/help": "baseline"}])
    hidden: int = 16
    lr: float = 0.05
    noise: float = 0.06
    seed: int = 1
    epochs: int = 3000
    uri: str = "sqlite:///baseline.db"
    experiment: str = "baseline"


HELP = """python scripts/baseline_sweep.py [--multirun] [KEY=VALUE ...]

The sweep written the obvious way, a yardstick for scripts/bench.py: a Hydra app on the
joblib launcher that trains the article's network in a plain numpy loop and logs params,
the loss curve, final_mse and a fit figure to MLflow with its fluent API.

Keys (KEY=VALUE; give a comma-separated list with --multirun to sweep it):
  hidden      units in the tanh hidden layer  [${hidden}]
  lr          learning rate of full-batch gradient descent  [${lr}]
  noise       sd of the Gaussian noise on the curve  [${noise}]
  seed        numpy seed of the data and the initial weights  [${seed}]
  epochs      full-batch updates  [${epochs}]
  uri         MLflow store the runs are logged to  [${uri}]
  experiment  MLflow experiment name  [${experiment}]
"""

ConfigStore.instance().store(name="baseline", node=BaselineConfig)
ConfigStore.instance().store(group="hydra/help", name="baseline",
                             node={"app_name": "baseline_sweep", "header": "", "footer": "",
                                   "template": HELP})


def make_data(rng: np.random.Generator, noise: float, n: int = 60):
    t = np.linspace(0, 1, n)
    y = np.exp(-((t - 0.4) ** 2) / 0.025) + rng.normal(0, noise, n)
    y = (y - y.mean()) / y.std()
    return t[:, None], y[:, None]


def train(x, y, hidden: int, lr: float, epochs: int, rng: np.random.Generator):
    w1, b1 = rng.normal(0, 0.5, (1, hidden)), np.zeros(hidden)
    w2, b2 = rng.normal(0, 0.5, (hidden, 1)), np.zeros(1)
    losses = np.empty(epochs)
    for epoch in range(epochs):
        h = np.tanh(x @ w1 + b1)
        y_hat = h @ w2 + b2
        error = y_hat - y
        losses[epoch] = np.mean(error**2)
        grad_out = 2 * error / len(x)
        grad_h = (grad_out @ w2.T) * (1 - h**2)
        w2 -= lr * (h.T @ grad_out)
        b2 -= lr * grad_out.sum(axis=0)
        w1 -= lr * (x.T @ grad_h)
        b1 -= lr * grad_h.sum(axis=0)
    y_hat = np.tanh(x @ w1 + b1) @ w2 + b2
    return losses, y_hat


@hydra.main(version_base="1.3", config_path=None, config_name="baseline")
def main(cfg: BaselineConfig) -> float:
    mlflow.set_tracking_uri(cfg.uri)
    mlflow.set_experiment(cfg.experiment)
    rng = np.random.default_rng(cfg.seed)
    x, y = make_data(rng, cfg.noise)
    with mlflow.start_run() as run:
        mlflow.log_params({"hidden": cfg.hidden, "lr": cfg.lr, "noise": cfg.noise,
                           "seed": cfg.seed, "epochs": cfg.epochs})
        losses, y_hat = train(x, y, cfg.hidden, cfg.lr, cfg.epochs, rng)
        now = int(time.time() * 1000)
        metrics = [Metric("loss", float(v), now, step) for step, v in enumerate(losses)]
        client = mlflow.MlflowClient()
        for start in range(0, len(metrics), 1000):  # MLflow's log_batch limit: 1000 metrics
            client.log_batch(run.info.run_id, metrics=metrics[start:start + 1000])
        mlflow.log_metric("final_mse", float(losses[-1]))
        figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        left.semilogy(losses)
        left.set(title="Training loss", xlabel="epoch", ylabel="MSE")
        right.scatter(x[:, 0], y[:, 0], s=10, color="grey")
        right.plot(x[:, 0], y_hat[:, 0], color="steelblue")
        right.set(title="Fit", xlabel="t", ylabel="y")
        figure.tight_layout()
        mlflow.log_figure(figure, "fit.png")
        plt.close(figure)
    return float(losses[-1])


if __name__ == "__main__":
    # Create the store once before the joblib workers fan out: two workers creating a new
    # sqlite store at the same moment both run its migration and one of them fails.
    import sys

    uri = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("uri=")),
               BaselineConfig.uri)
    if not {"--help", "-h", "--hydra-help"} & set(sys.argv):
        mlflow.MlflowClient(uri).search_experiments()
    main()
