"""Extreme but valid settings, each run through pipeline.run into a real store: it ends
FINISHED with finite metrics and the four artifacts, or FAILED with 'diverged at epoch N:
loss=...' (still with its artifacts, for a look at what went wrong). The expected outcome
of each case was measured (default config, seed 1, R stream, 3000 epochs) and is asserted."""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import compose_config
from scratchnet.nn.data import make_curve
from scratchnet.nn.rrng import RRandom
from scratchnet.plots import save_fit_figure
from scratchnet.run import run
from scratchnet.tracking import TAG_FAILURE
from scratchnet.weights import load_weights

ARTIFACTS = {"fit.png", "history.csv", "config.yaml", "model.npz"}
DIVERGED = re.compile(r"diverged at epoch (\d+): loss=(\S+)$")

# (overrides, expected outcome, measured note)
CASES = [
    (["train.lr=10"], "diverged", "loss inf at epoch 63"),
    (["train.lr=999999"], "diverged", "largest valid rate: inf at epoch 2"),
    (["data.noise=0"], "finished", "final_mse 0.0388, true_mse 0.0385"),
    (["data.noise=1"], "finished", "final_mse 0.0496, true_mse 0.0054 (data normalised)"),
    (["model.hidden_size=1"], "finished", "one tanh unit: final_mse 0.087"),
    (["model.hidden_size=512"], "diverged",
     "at the default lr 0.05 the 512-unit output is too large for SGD: inf at epoch 94"),
    (["model.hidden_size=512", "train.lr=0.005"], "finished", "final_mse 0.043"),
    (["train.epochs=1"], "finished", "one update: final_mse == initial_mse 0.4236"),
    (["data.n_points=2"], "finished",
     "two points are interpolated (final_mse ~1e-35) and the curve is not (true_mse ~94)"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store) -> str:
    return new_store(tmp_path_factory.mktemp("extremes"))


@pytest.mark.parametrize("overrides,expected,measured", CASES,
                         ids=[" ".join(case[0]) for case in CASES])
def test_extreme_setting_behaves_sensibly(store, tmp_path, overrides, expected, measured):
    config = compose_config([*overrides, f"tracking.uri={store}"])
    outcome = run(config, overrides=overrides)
    client = MlflowClient(store)
    recorded = client.get_run(outcome.run_id)
    metrics, tags = recorded.data.metrics, recorded.data.tags
    fit = outcome.result.fit

    assert {a.path for a in client.list_artifacts(outcome.run_id)} == ARTIFACTS
    local = Path(client.download_artifacts(outcome.run_id, "", str(tmp_path)))
    history = np.loadtxt(local / "history.csv", delimiter=",", skiprows=1, ndmin=2)
    params, activation = load_weights(local / "model.npz")
    assert activation == config.model.activation
    assert len(params) == 2 * (config.model.depth + 1)
    assert params[0].shape == (1, config.model.hidden_size)
    assert all(math.isfinite(value) for value in metrics.values())

    if expected == "finished":
        assert recorded.info.status == "FINISHED", tags.get(TAG_FAILURE)
        assert TAG_FAILURE not in tags
        for key in ("initial_mse", "final_mse", "true_mse"):
            assert math.isfinite(metrics[key]), key
        assert metrics["epochs_run"] == config.train.epochs == len(fit.losses)
        assert len(history) == config.train.epochs
    else:
        assert recorded.info.status == "FAILED"
        match = DIVERGED.match(tags[TAG_FAILURE])
        assert match, tags[TAG_FAILURE]
        epoch, value = int(match.group(1)), float(match.group(2))
        assert epoch == fit.diverged_epoch and 1 <= epoch <= config.train.epochs
        assert not math.isfinite(value)
        assert "true_mse" not in metrics
        assert metrics["epochs_run"] == epoch - 1 == len(fit.losses) == len(history)
        assert np.isfinite(history[:, 1]).all()


def test_epochs_1_records_one_loss(store):
    outcome = run(compose_config(["train.epochs=1", f"tracking.uri={store}"]))
    metrics = MlflowClient(store).get_run(outcome.run_id).data.metrics
    assert metrics["initial_mse"] == metrics["final_mse"] == outcome.result.fit.losses[0]
    history = MlflowClient(store).get_metric_history(outcome.run_id, "loss")
    assert [point.step for point in history] == [1]


def render(losses: np.ndarray, y_fit: np.ndarray) -> bytes:
    curve = make_curve(RRandom(1).rnorm(10), 0.4, 0.025, 0.06)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        buffer = io.BytesIO()
        save_fit_figure(buffer, losses, curve, y_fit, dpi=50)
    return buffer.getvalue()


@pytest.mark.parametrize("top", [1e250, 1e270, 7.4e285, 1e300, 1.7e308])
@pytest.mark.parametrize("bottom", [1e-35, 0.1])
def test_fit_figure_draws_a_diverging_loss_curve(bottom, top):
    """A diverged run's losses climb to ~1e308; with the old autoscaled log axis, tops
    between ~1e262 and ~1e292 raised OverflowError and lost the run's artifacts."""
    losses = np.geomspace(bottom, top, 60)
    assert render(losses, np.full(10, 0.5)).startswith(b"\x89PNG")


@pytest.mark.parametrize("y_fit", [np.full(10, 1e308), np.array([-1.7e308, 1.7e308] * 5),
                                   np.full(10, np.inf), np.full(10, np.nan)],
                         ids=["huge", "both-signs", "inf", "nan"])
@pytest.mark.parametrize("losses", [[0.5, 0.1], [], [0.0, 0.1], [1e-320, 1.0]],
                         ids=["normal", "none", "zero", "subnormal"])
def test_fit_figure_draws_any_fit(losses, y_fit):
    assert render(np.array(losses, dtype=float), y_fit).startswith(b"\x89PNG")
