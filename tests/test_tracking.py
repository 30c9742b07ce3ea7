"""End to end: one run into a real MLflow store under tmp_path, read back with MlflowClient."""

import re
from dataclasses import asdict
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from conftest import compose_config, run_cli, run_train
from scratchnet.config import config_hash, flatten
from scratchnet.nn.network import predict
from scratchnet.run import run
from scratchnet.tracking import TAG_CONFIG_HASH, TAG_FAILURE, history_steps
from scratchnet.weights import load_weights


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, new_store):
    folder = tmp_path_factory.mktemp("store")
    config = compose_config([f"tracking.uri={new_store(folder)}", "train.epochs=250",
                             "tracking.log_every=20"])
    outcome = run(config, overrides=["train.epochs=250"])
    client = MlflowClient(config.tracking.uri)
    return config, outcome, client, client.get_run(outcome.run_id), folder


def test_params_are_every_resolved_value_by_dotted_name(recorded):
    config, _, _, mlflow_run, _ = recorded
    assert mlflow_run.data.params == {k: str(v) for k, v in flatten(config).items()}


def test_tags(recorded):
    config, _, _, mlflow_run, _ = recorded
    tags = mlflow_run.data.tags
    assert tags[TAG_CONFIG_HASH] == config_hash(config)
    assert tags["scratchnet.overrides"] == '["train.epochs=250"]'
    assert tags["numpy_version"] == np.__version__
    assert mlflow_run.info.status == "FINISHED"


def test_loss_history_at_log_every_with_first_and_last_epoch(recorded):
    _, outcome, client, _, _ = recorded
    history = client.get_metric_history(outcome.run_id, "loss")
    steps = [point.step for point in history]
    assert steps == [1] + list(range(20, 250, 20)) + [250] == history_steps(250, 20)
    losses = outcome.result.fit.losses
    assert [point.value for point in history] == [losses[s - 1] for s in steps]


def test_scalar_metrics(recorded):
    _, outcome, _, mlflow_run, _ = recorded
    metrics = mlflow_run.data.metrics
    result = outcome.result
    assert metrics["initial_mse"] == result.fit.losses[0]
    assert metrics["final_mse"] == result.fit.losses[-1]
    assert metrics["true_mse"] == result.true_mse
    assert metrics["train_seconds"] > 0


def test_artifacts(recorded, tmp_path):
    config, outcome, client, _, _ = recorded
    names = {a.path for a in client.list_artifacts(outcome.run_id)}
    assert names == {"fit.png", "history.csv", "config.yaml", "model.npz"}
    local = Path(client.download_artifacts(outcome.run_id, "", str(tmp_path)))
    image = matplotlib.image.imread(local / "fit.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 200
    history = np.loadtxt(local / "history.csv", delimiter=",", skiprows=1)
    assert history[:, 0].tolist() == list(range(1, 251))
    assert history[:, 1].tobytes() == outcome.result.fit.losses.tobytes()  # full precision
    assert yaml.safe_load((local / "config.yaml").read_text()) == asdict(config)  # resolved
    params, activation = load_weights(local / "model.npz")  # loads with allow_pickle=False
    t = outcome.result.curve.t_dense[:, None]
    np.testing.assert_array_equal(predict(params, t, activation),
                                  predict(outcome.result.fit.params, t, activation))


def test_artifacts_live_beside_the_database(recorded):
    _, _, _, mlflow_run, folder = recorded
    assert mlflow_run.info.artifact_uri.startswith((folder / "mlruns").as_uri())


def test_the_experiment_opens_on_the_training_runs_view(recorded):
    config, _, client, mlflow_run, _ = recorded
    experiment = client.get_experiment(mlflow_run.info.experiment_id)
    assert experiment.name == config.tracking.experiment
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_cli_default_run_prints_the_article_numbers(tmp_path):
    """The README's single run, as a user types it: the fast suite's one subprocess."""
    result = run_cli([], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Initial MSE: 0.423582", "Final MSE:   0.034461"]
    run_id = next(line.split()[2] for line in lines if line.startswith("MLflow run:"))
    # the run's page in the training view of the UI scripts/mlflow-ui.sh starts
    from mlflow import MlflowClient

    exp_id = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id).info.experiment_id
    assert lines[-1] == ("In the MLflow UI (scripts/mlflow-ui.sh): http://127.0.0.1:5000/#/"
                         f"experiments/{exp_id}/runs/{run_id}?workflowType=machine_learning")
    assert (tmp_path / "mlflow.db").exists()


def test_divergence_is_a_failed_run_with_its_reason_and_one_line(tmp_path, new_store,
                                                                   monkeypatch, capsys):
    uri = new_store(tmp_path)
    result = run_train(["train.lr=5", "train.epochs=200", f"tracking.uri={uri}"], tmp_path,
                       monkeypatch, capsys)
    assert result.returncode == 1 and "Initial MSE" not in result.stdout
    match = re.fullmatch(r"error: training (diverged at epoch (\d+): loss=\S+); "
                         r"run (\w+) recorded as FAILED\n", result.stderr)
    assert match, result.stderr
    reason, epoch, run_id = match.groups()
    assert 1 <= int(epoch) <= 200
    mlflow_run = MlflowClient(uri).get_run(run_id)
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags[TAG_FAILURE] == reason
    assert mlflow_run.data.metrics["epochs_run"] == int(epoch) - 1


def test_the_config_artifact_records_the_uri_as_the_params_do(tmp_path, new_store, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the store lives in "home"
    uri = new_store(tmp_path)
    outcome = run(compose_config([f"tracking.uri={uri}", "train.epochs=5"]))
    client = MlflowClient(uri)
    local = client.download_artifacts(outcome.run_id, "config.yaml", str(tmp_path / "dl"))
    recorded = yaml.safe_load(Path(local).read_text())["tracking"]["uri"]
    assert recorded == client.get_run(outcome.run_id).data.params["tracking.uri"]
    assert recorded == "sqlite:///~/mlflow.db"


def test_a_new_sqlite_store_is_created_with_one_line_saying_where(tmp_path, capsys):
    from scratchnet import tracking

    path = tmp_path / "mlfow.db"  # a typo of mlflow.db: a new store, and the user is told
    tracking.open_store(f"sqlite:///{path}")
    assert capsys.readouterr().err == (
        f"[mlflow] created a new store {path} (tracking.uri=sqlite:///{path})\n")
    assert path.is_file()
    tracking.open_store(f"sqlite:///{path.parent}/./{path.name}")  # the same file, a new client
    assert capsys.readouterr().err == ""
