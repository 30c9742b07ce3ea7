"""The learning-rate schedules (train.lr_schedule): the constant rate keeps the article's
numbers; halve_on_plateau restores the best weights and optimizer state and halves the rate
on a non-finite loss, halves it on a plateau, fails as before after max_halvings, and is
bit-identical on a rerun. Expected values come from constant-rate runs of the same network
or from the rule worked through by hand, not from the schedule under test."""

import io
import math

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import compose_config, one_error_line, run_cli, run_train, store_uri
from scratchnet.config import ConfigError
from scratchnet.nn.optim import SGD, Adam, HalveOnPlateau
from scratchnet.nn.training import train_network
from scratchnet.plots import CLIP
from scratchnet.report.figures import loss_curves_figure
from scratchnet.report.stats import summarise, sweep_design
from scratchnet.tracking import TAG_CONFIG_HASH, TAG_FAILURE, TAG_PARENT

HALVE = "train.lr_schedule=halve_on_plateau"


def train(*overrides: str):
    return train_network(compose_config(list(overrides))).fit


def test_constant_rate_is_the_article_run_and_records_its_rate():
    fit = train()
    # the article's final MSE as R computes it; the last bits depend on the machine's BLAS
    # kernel (docs/reliability.md), so bit for bit is checked against a rerun elsewhere
    assert fit.losses[-1] == pytest.approx(0.03446110150963725, rel=1e-13)
    assert fit.halvings == 0
    assert fit.rates.tobytes() == np.full(3000, 0.05).tobytes()


def test_a_converging_run_is_not_changed_by_the_rule():
    # At the default rate nothing diverges or stalls for 200 epochs: the same bits.
    assert train(HALVE).losses.tobytes() == train().losses.tobytes()


def test_divergence_goes_back_to_the_best_weights_at_half_the_rate():
    # At lr=0.5 the loss grows from epoch 1 and overflows at epoch 133, so the best
    # weights are the initial ones: from epoch 133 the run is a fresh lr=0.25 run.
    constant = train("train.lr=0.5", "train.epochs=600")
    assert constant.diverged_epoch == 133 and constant.losses.argmin() == 0
    halved = train("train.lr=0.25", "train.epochs=600")
    fit = train("train.lr=0.5", "train.epochs=600", HALVE)
    assert fit.diverged_epoch is None and fit.halvings == 1
    assert fit.losses[:132].tobytes() == constant.losses.tobytes()
    assert fit.losses[132:].tobytes() == halved.losses[:600 - 132].tobytes()
    assert fit.rates.tobytes() == np.repeat([0.5, 0.25], [132, 468]).tobytes()
    for mine, theirs in zip(fit.params, train_network(compose_config(
            ["train.lr=0.25", "train.epochs=468"])).fit.params):
        assert mine.tobytes() == theirs.tobytes()


def test_halvings_stop_at_max_halvings_and_the_run_fails_as_before():
    constant = train("train.lr=0.5", "train.epochs=600")
    none_left = train("train.lr=0.5", "train.epochs=600", HALVE, "train.max_halvings=0")
    assert (none_left.diverged_epoch, none_left.halvings) == (133, 0)
    assert none_left.losses.tobytes() == constant.losses.tobytes()
    # lr=1 needs two halvings (1 -> 0.5 still diverges, 133 epochs after going back)
    once = train("train.lr=1", "train.epochs=600", HALVE, "train.max_halvings=1")
    first = train("train.lr=1", "train.epochs=600").diverged_epoch
    assert first == 104
    assert (once.diverged_epoch, once.halvings) == (first - 1 + 133, 1)
    assert not math.isfinite(once.diverged_value)


def test_the_rate_halves_where_the_loss_stalls_for_patience_epochs():
    # Hand-fed losses, tol 10%, patience 3: epoch 0 sets the reference 1.0; 0.95, 0.94 and
    # 0.93 are not below 0.9, so the third stalled epoch (3) is updated at half the rate;
    # 0.5 is an improvement (new reference), then 0.49, 0.48 and 0.47 stall again (epoch 7).
    schedule = HalveOnPlateau(SGD(0.1), 9, plateau_tol=0.1, patience=3, max_halvings=5)
    theta = np.zeros(2)
    for epoch, loss in enumerate([1.0, 0.95, 0.94, 0.93, 0.5, 0.49, 0.48, 0.47, 0.46]):
        schedule.observe(epoch, loss, theta)
    assert schedule.rates(9).tolist() == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025]
    assert schedule.halvings == 2


def test_plateau_halvings_in_a_real_run_follow_the_rule_and_stop_at_max_halvings():
    fit = train("train.epochs=1500", HALVE, "train.plateau_tol=0.05", "train.patience=50",
                "train.max_halvings=4")
    # The rule recomputed from the recorded losses: a halving wherever 50 epochs in a row
    # fail to go 5% below the last such improvement, at most 4 times.
    reference, stalled, rate, expected = math.inf, 0, 0.05, []
    for loss in fit.losses:
        if loss < reference * 0.95:
            reference, stalled = loss, 0
        else:
            stalled += 1
            if stalled >= 50 and rate > 0.05 / 16:
                rate, stalled = rate / 2, 0
        expected.append(rate)
    assert fit.rates.tolist() == expected
    assert fit.halvings == 4 and fit.rates[-1] == 0.05 / 16


def test_going_back_restores_adams_moments_with_the_weights():
    adam = Adam(0.1)
    schedule = HalveOnPlateau(adam, 10, plateau_tol=0.0, patience=100, max_halvings=3)
    theta, grads = np.array([1.0, -2.0]), [np.array([0.5, 0.1]), np.array([-0.3, 0.2])]
    schedule.observe(0, 1.0, theta)
    adam.step(theta, grads[0].copy())
    schedule.observe(1, 0.5, theta)  # the best: weights and state after one step
    best_theta, m, v = theta.copy(), adam.m.copy(), adam.v.copy()
    adam.step(theta, grads[1].copy())
    schedule.observe(2, 0.7, theta)
    assert schedule.recover(theta)
    assert theta.tobytes() == best_theta.tobytes()
    assert (adam.steps, adam.lr) == (1, 0.05)
    assert adam.m.tobytes() == m.tobytes() and adam.v.tobytes() == v.tobytes()
    # The next step is the second step of an Adam that took the first one, at rate 0.05
    twin, twin_theta = Adam(0.1), np.array([1.0, -2.0])
    twin.step(twin_theta, grads[0].copy())
    twin.lr = 0.05
    twin.step(twin_theta, grads[1].copy())
    adam.step(theta, grads[1].copy())
    assert theta.tobytes() == twin_theta.tobytes()


def test_no_finite_loss_yet_means_nothing_to_go_back_to():
    schedule = HalveOnPlateau(SGD(1.0), 5, plateau_tol=1e-3, patience=10, max_halvings=3)
    assert not schedule.recover(np.zeros(3))
    assert schedule.halvings == 0


def test_a_rerun_is_bit_identical():
    first, again = (train("train.lr=1", "train.epochs=500", HALVE) for _ in range(2))
    assert first.halvings == again.halvings == 2
    assert first.losses.tobytes() == again.losses.tobytes()
    assert first.rates.tobytes() == again.rates.tobytes()
    for mine, theirs in zip(first.params, again.params):
        assert mine.tobytes() == theirs.tobytes()


def test_the_cli_run_records_the_rate_history_and_halvings(tmp_path, new_store, monkeypatch,
                                                          capsys):
    uri = new_store(tmp_path)
    result = run_train(["train.lr=1", HALVE, "train.epochs=400", f"tracking.uri={uri}"],
                       tmp_path, monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    assert "True MSE" in result.stdout
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("scratchnet").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.lr_schedule"] == "halve_on_plateau"
    assert run.data.metrics["lr_halvings"] == 2
    assert math.isfinite(run.data.metrics["true_mse"])
    # Where it halves, from constant-rate runs: lr=1 overflows at epoch 104, and lr=0.5
    # from the initial weights at its own epoch 133, i.e. epoch 104 + 132 = 236.
    first = train("train.lr=1", "train.epochs=400").diverged_epoch
    second = first + train("train.lr=0.5", "train.epochs=400").diverged_epoch - 1
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "lr"))
    assert history == [(1, 1.0), (first - 1, 1.0), (first, 0.5), (second - 1, 0.5),
                       (second, 0.25), (400, 0.25)]
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert len(loss) == 41  # the loss history keeps its log_every resolution


@pytest.mark.parametrize("override,line", [
    ("train.lr_schedule=cosine",
     "train.lr_schedule: must be one of constant, halve_on_plateau, got 'cosine'"),
    ("train.patience=0", "train.patience: must be >= 1, got 0"),
    ("train.plateau_tol=1", "train.plateau_tol: must be in [0, 1), got 1.0"),
    ("train.plateau_tol=-0.01", "train.plateau_tol: must be in [0, 1), got -0.01"),
    ("train.max_halvings=-1", "train.max_halvings: must be >= 0, got -1"),
])
def test_bad_schedule_settings_are_refused_naming_the_key(override, line):
    with pytest.raises(ConfigError) as refused:
        compose_config([override])
    assert str(refused.value) == line


@pytest.mark.parametrize("override", ["train.patience=0", "train.lr_schedule=cosine"])
def test_the_cli_refuses_them_in_one_line_writing_nothing(override, tmp_path, monkeypatch,
                                                          capsys):
    store = tmp_path / "mlflow.db"
    result = run_train([override, f"tracking.uri=sqlite:///{store}"], tmp_path, monkeypatch,
                       capsys)
    one_error_line(result, override.partition("=")[0])
    assert not store.exists()


def test_the_report_draws_a_loss_curve_that_went_back(recwarn):
    """Before going back, the loss of lr=1 climbs to ~1e304: the report's loss figure
    draws it (clipped) without an overflow on its log axis."""
    losses = train("train.lr=1", "train.epochs=300", HALVE).losses
    assert losses.max() > 1e300
    runs = pd.DataFrame({"train.lr": [1.0, 0.05], "seed": [1, 1], "outcome": "finished",
                         "true_mse": [0.02, 0.03], "final_mse": [0.02, 0.03],
                         "run_id": ["went_back", "steady"], "improving": False})
    design = sweep_design(runs, ["train.lr"])
    histories = {"went_back": pd.Series(losses, index=np.arange(1, 301)),
                 "steady": pd.Series(np.linspace(0.4, 0.03, 300), index=np.arange(1, 301))}
    figure = loss_curves_figure(runs, summarise(runs, design), design, histories)
    figure.savefig(io.BytesIO(), format="png")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert max(line.get_ydata().max() for line in figure.axes[0].lines) <= CLIP


@pytest.mark.slow
def test_a_real_sweep_over_the_schedule_records_both_and_resumes(tmp_path):
    """train.lr_schedule is a sweep axis like any other: one child per schedule, each with
    its own config hash, and the same command again reruns neither."""
    command = ["--multirun", "train.lr_schedule=constant,halve_on_plateau", "train.lr=1",
               "model.hidden_size=16", "data.noise=0.06", "seed=1", "train.epochs=300",
               "hydra.launcher.n_jobs=2", f"tracking.uri={store_uri(tmp_path)}"]
    first = run_cli(command, tmp_path)
    assert first.returncode == 0, first.stderr
    client = MlflowClient(store_uri(tmp_path))
    exp_id = client.get_experiment_by_name("scratchnet").experiment_id
    children = {run.data.params["train.lr_schedule"]: run for run in client.search_runs(
        [exp_id], f"tags.`{TAG_PARENT}` != ''")}
    assert set(children) == {"constant", "halve_on_plateau"}
    constant, halving = children["constant"], children["halve_on_plateau"]
    assert constant.info.status == "FAILED"
    assert constant.data.tags[TAG_FAILURE].startswith("diverged at epoch 104:")
    assert halving.info.status == "FINISHED" and halving.data.metrics["lr_halvings"] == 2
    assert [m.value for m in sorted(client.get_metric_history(halving.info.run_id, "lr"),
                                    key=lambda m: m.step)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert constant.data.tags[TAG_CONFIG_HASH] != halving.data.tags[TAG_CONFIG_HASH]
    again = run_cli(command, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 skipped" in again.stderr
    assert len(client.search_runs([exp_id], f"tags.`{TAG_PARENT}` != ''")) == 2
