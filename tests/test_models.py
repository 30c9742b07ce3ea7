"""The winner as an MLflow model: logged once to its run, registered with an alias, loaded
and run by MLflow's own clients (pyfunc, `mlflow models predict`, `mlflow models serve`),
its input checked with one line naming t; a registry that refuses leaves the sweep whole.
Real sqlite stores and, in the slow suite, real subprocesses and servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from conftest import (
    TrackingServer,
    compose_config,
    free_port,
    recorded_sweep,
    run_cli,
    stop_server,
    store_uri,
    wait_until_answering,
)
from scratchnet import tracking
from scratchnet.nn.network import predict
from scratchnet.nn.training import initial_state
from scratchnet.report import analyse
from scratchnet.reproduce import config_from_params
from scratchnet.run import run
from scratchnet.sweep.registry import alias_for, register_winners
from scratchnet.tracking import models
from scratchnet.weights import load_weights

T = np.linspace(0.0, 1.0, 11)  # the time index on the network's own scale


def own_fit(client, run_id: str, t: np.ndarray = T) -> np.ndarray:
    """The run's fit at t on the observations' scale, from its model.npz and its params:
    what the run's own predict gives, computed without MLflow's model."""
    with tempfile.TemporaryDirectory() as tmp:
        params, activation = load_weights(client.download_artifacts(run_id, "model.npz", tmp))
    curve, _ = initial_state(config_from_params(run_id, client.get_run(run_id).data.params))
    return curve.y_low + curve.y_span * predict(params, t[:, None], activation)[:, 0]


def fitted(model, t: np.ndarray = T) -> np.ndarray:
    return np.array([row.y for row in model.predict(pd.DataFrame({"t": t}))])


@pytest.fixture
def sweep(new_store, tmp_path, monkeypatch):
    """Two settings over two seeds, recorded in this process (no launcher)."""
    monkeypatch.chdir(tmp_path)
    return recorded_sweep(new_store(tmp_path / "store"), {"model.hidden_size": [4, 8],
                                                          "seed": [1, 2]},
                          ["train.epochs=200", "train.lr=0.1"])


def test_the_aliases_name_the_condition():
    assert alias_for({}) == "best"
    assert alias_for({"data.noise": 0.06}) == "best-noise-0_06"
    assert alias_for({"data.noise": 0.1, "data.n_points": 30}) == "best-noise-0_1-n_points-30"


def test_a_registered_winner_predicts_its_runs_own_fit_and_registers_once(sweep):
    report = analyse(sweep.client, sweep.exp_id, sweep.parent_id)
    (winner,) = report.winners()
    tags, lines = register_winners(sweep.client, sweep.uri, sweep.exp_id, report, "net")
    assert tags == {"scratchnet.best.model": "models:/net/1",
                    "scratchnet.best.model_alias": "best"}
    assert lines == [f"[mlflow] best run {winner.run_id}: registered as net version 1, alias @best"]
    version = sweep.client.get_model_version_by_alias("net", "best")
    assert (str(version.version), version.run_id) == ("1", winner.run_id)
    assert version.tags[models.TAG_SWEEP] == sweep.parent_id
    assert version.tags[models.TAG_TIED] == str(winner.tied)
    assert version.tags[models.TAG_TRUE_MSE].endswith("over 2 seeds")
    assert sweep.parent_id in version.description

    model = mlflow.pyfunc.load_model("models:/net@best")
    np.testing.assert_allclose(fitted(model), own_fit(sweep.client, winner.run_id),
                               rtol=0, atol=1e-12)
    signature = model.metadata.signature.to_dict()
    assert "\"t\"" in signature["inputs"] and "\"y\"" in signature["outputs"]

    again = register_winners(sweep.client, sweep.uri, sweep.exp_id, report, "net")
    assert again[0] == tags
    assert again[1] == [(f"[mlflow] best run {winner.run_id}: already net version 1 "
                         "(registered before; left as is)")]
    assert len(sweep.client.search_model_versions("name = 'net'")) == 1
    outputs = sweep.client.get_run(winner.run_id).outputs.model_outputs
    assert len(outputs) == 1  # logged once: the second call found it
    finished = sweep.client.get_run(winner.run_id).info
    assert finished.status == "FINISHED"


def test_the_input_is_checked_with_one_line_naming_t(sweep):
    run_id = sweep.children[0].info.run_id
    uri = models.log_network(sweep.client, sweep.uri, sweep.exp_id, run_id, 0.0, 1.0)
    model = mlflow.pyfunc.load_model(uri)
    for frame, says in [(pd.DataFrame({"time": [0.5]}), "Field required"),
                        (pd.DataFrame({"t": ["noon"]}), "valid number")]:
        with pytest.raises(MlflowException) as raised:
            model.predict(frame)
        message = str(raised.value)
        assert "\n" not in message and says in message and "\\nt\\n" in message, message
    # integers are times too (t=0 and t=1: the first and last observation)
    ints = np.array([row.y for row in model.predict(pd.DataFrame({"t": [0, 1]}))])
    np.testing.assert_allclose(ints, fitted(model, np.array([0.0, 1.0])), rtol=0, atol=0)


def test_a_single_run_logs_its_model_when_asked(new_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = new_store(tmp_path / "store")
    outcome = run(compose_config([f"tracking.uri={uri}", "train.epochs=100",
                                  "tracking.log_model=true"]))
    client = tracking.open_store(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{outcome.run_id}/model")
    np.testing.assert_allclose(fitted(model), own_fit(client, outcome.run_id), rtol=0,
                               atol=1e-12)
    plain = run(compose_config([f"tracking.uri={uri}", "train.epochs=100", "seed=2"]))
    assert not client.get_run(plain.run_id).outputs.model_outputs  # the default: none


# ---------------------------------------------------------------- real sweeps and clients

GRID = ["model.hidden_size=4,8", "train.lr=0.1", "data.noise=0.03,0.06", "seed=1,2",
        "train.epochs=200"]


def sweep_cli(folder: Path, *args: str, uri: str | None = None) -> subprocess.CompletedProcess:
    done = run_cli(["--multirun", *args, f"tracking.uri={uri or store_uri(folder)}"], folder)
    assert done.returncode == 0, done.stderr
    return done


def versions(client, name: str = "scratchnet") -> dict[str, str]:
    """version -> run id of every version of the registered model."""
    return {str(v.version): v.run_id
            for v in client.search_model_versions(f"name = '{name}'")}


def aliases(client, name: str = "scratchnet") -> dict[str, str]:
    return {alias: str(version)
            for alias, version in client.get_registered_model(name).aliases.items()}


@pytest.mark.slow
def test_two_sweeps_and_a_rerun_register_each_winner_once(tmp_path):
    first = sweep_cli(tmp_path, *GRID)
    client = tracking.open_store(store_uri(tmp_path))
    assert set(versions(client)) == {"1", "2"}
    assert aliases(client) == {"best-noise-0_03": "1", "best-noise-0_06": "2"}
    assert "registered as scratchnet version 2, alias @best-noise-0_06" in first.stdout
    assert "Registered model at noise=0.06: models:/scratchnet/2" in first.stdout

    other = [*GRID[:1], "train.lr=0.05", *GRID[2:]]  # another sweep: new winners
    sweep_cli(tmp_path, *other)
    assert set(versions(client)) == {"1", "2", "3", "4"}
    assert aliases(client) == {"best-noise-0_03": "3", "best-noise-0_06": "4"}

    rerun = sweep_cli(tmp_path, *GRID)
    assert set(versions(client)) == {"1", "2", "3", "4"}  # nothing registered twice
    assert aliases(client) == {"best-noise-0_03": "3", "best-noise-0_06": "4"}
    assert "already scratchnet version 2 (registered before; left as is)" in rerun.stdout
    for version, run_id in versions(client).items():
        assert len(client.get_run(run_id).outputs.model_outputs) == 1, version
    parent = client.get_run(client.get_model_version("scratchnet", "2").tags[models.TAG_SWEEP])
    assert parent.data.tags["scratchnet.best-noise-0.06.model"] == "models:/scratchnet/2"
    report = next((tmp_path / "reports").glob("*/sweep_summary.md")).read_text()
    assert "## Registered models" in report and "models:/scratchnet/" in report


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A CLI sweep on a new store: its folder, client and the winner at noise=0.06."""
    folder = tmp_path_factory.mktemp("registered")
    sweep_cli(folder, *GRID)
    client = tracking.open_store(store_uri(folder))
    winner = client.get_model_version_by_alias("scratchnet", "best-noise-0_06").run_id
    return folder, client, winner


@pytest.mark.slow
def test_mlflow_models_predict_prints_the_winners_fit(registered):
    folder, client, winner = registered
    pd.DataFrame({"t": T}).to_csv(folder / "t.csv", index=False)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "models", "predict", "-m",
         "models:/scratchnet@best-noise-0_06", "-i", "t.csv", "-t", "csv",
         "--env-manager", "local"],
        cwd=folder, env={**os.environ, "MLFLOW_TRACKING_URI": store_uri(folder)},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout[done.stdout.index("{"):done.stdout.rindex("}") + 1])
    got = np.array([row["y"] for row in printed["predictions"]])
    np.testing.assert_allclose(got, own_fit(client, winner), rtol=0, atol=1e-12)


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(registered):
    folder, client, winner = registered
    port = free_port()
    with open(folder / "serve.log", "w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
             "models:/scratchnet@best-noise-0_06", "--env-manager", "local", "--host",
             "127.0.0.1", "--port", str(port)],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": store_uri(folder),  # and its uvicorn:
                 "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/ping", server, log=folder / "serve.log")
        body = json.dumps({"inputs": [{"t": float(t)} for t in T]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            got = np.array([row["y"] for row in json.loads(answer.read())["predictions"]])
        np.testing.assert_allclose(got, own_fit(client, winner), rtol=0, atol=1e-12)
    finally:
        stop_server(server)


@pytest.mark.slow
def test_registration_goes_through_a_tracking_server(tmp_path):
    server = TrackingServer(tmp_path / "server").start()
    try:
        sweep_cli(tmp_path, *GRID, uri=server.uri)
        client = tracking.open_store(server.uri)
        assert aliases(client) == {"best-noise-0_03": "1", "best-noise-0_06": "2"}
        winner = client.get_model_version_by_alias("scratchnet", "best-noise-0_06").run_id
        mlflow.set_tracking_uri(server.uri)
        model = mlflow.pyfunc.load_model("models:/scratchnet@best-noise-0_06")
        np.testing.assert_allclose(fitted(model), own_fit(client, winner), rtol=0, atol=1e-12)
    finally:
        server.stop()
    assert not (tmp_path / "mlflow.db").exists()  # everything went to the server


@pytest.mark.slow
def test_a_registry_that_refuses_leaves_the_sweep_and_report_complete(tmp_path):
    tracking.open_store(store_uri(tmp_path))  # a new store, then a registry that refuses
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON model_versions "
                   "BEGIN SELECT RAISE(ABORT, 'registry refuses writes'); END;")
    done = sweep_cli(tmp_path, *GRID)
    said = [line for line in done.stderr.splitlines()
            if not line.startswith(("[sweep] ", "[mlflow] created a new store "))]
    assert len(said) == 1, done.stderr  # the one line, and no retries or traceback
    assert said[0].startswith("[mlflow] registering the best runs as 'scratchnet' failed: ")
    assert "Model Version creation error" in said[0]  # MLflow's words for the refusal
    assert said[0].endswith("; the sweep and its report are complete")
    client = tracking.open_store(store_uri(tmp_path))
    exp_id = client.get_experiment_by_name("scratchnet").experiment_id
    parents = tracking.runs_with_tag(client, exp_id, tracking.TAG_SWEEP_KEY, "%", like=True)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert "best_true_mse_gmean-noise-0.06" in parents[0].data.metrics
    files = {p.name for p in next((tmp_path / "reports").iterdir()).iterdir()}
    assert {"report.html", "sweep_summary.md", "sweep_summary.csv"} <= files
