"""search=optuna: a TPE search over conf/search/optuna.yaml that minimises true_mse."""

import pytest
import yaml
from mlflow import MlflowClient

from conftest import run_cli, store_uri
from scratchnet.tracking import TAG_PARENT

# A real Optuna search in a subprocess: the slow suite (pytest -m slow).
pytestmark = pytest.mark.slow


def test_tpe_search_minimises_the_true_mse_the_runs_record(tmp_path):
    result = run_cli(["--multirun", "search=optuna", "hydra.sweeper.n_trials=4",
                      "hydra.sweeper.n_jobs=2", "train.epochs=60",
                      f"tracking.uri={store_uri(tmp_path)}"], tmp_path)
    assert result.returncode == 0, result.stderr
    client = MlflowClient(store_uri(tmp_path))
    experiment = client.get_experiment_by_name("scratchnet")
    children = [r for r in client.search_runs([experiment.experiment_id])
                if TAG_PARENT in r.data.tags]
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    # the search space of conf/search/optuna.yaml was used
    assert {r.data.params["model.hidden_size"] for r in children} <= {"4", "8", "16", "32", "64"}
    assert all(0.005 <= float(r.data.params["train.lr"]) <= 0.2 for r in children)
    # the objective Optuna minimised is the true_mse recorded in MLflow
    results = next(tmp_path.glob("multirun/*/*/optimization_results.yaml"))
    best = yaml.safe_load(results.read_text())["best_value"]
    assert best == min(r.data.metrics["true_mse"] for r in children)
