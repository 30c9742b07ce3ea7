"""Launchers beyond one machine and what a sweep says when its tracking server is gone.

Fast: the Dask launcher's key on another launcher is refused; a dead server's error becomes
one line; failed jobs are summarised by reason. Slow: a Dask scheduler that does not answer
stops the sweep before anything is written (after Dask's 10 s connect timeout); the sweep
through hydra-submitit-launcher's submitit_local (real subprocesses)."""

import socket
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import free_port, one_error_line, run_cli, run_train, store_uri
from scratchnet.sweep.progress import Summary, crash_message
from scratchnet.tracking import TAG_PARENT, describe_error


@pytest.mark.slow
def test_a_dask_scheduler_that_does_not_answer_stops_before_anything_is_written(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli(["--multirun", "seed=1,2", "train.epochs=10", "hydra/launcher=dask",
                      f"hydra.launcher.scheduler_address={address}",
                      f"tracking.uri={store_uri(tmp_path)}"], tmp_path, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    expected = (f"error: hydra.launcher.scheduler_address: no Dask scheduler answers at "
                f"{address} (Timed out trying to connect to {address} after 10 s)")
    assert lines == [expected]
    assert not (tmp_path / "mlflow.db").exists()


def test_the_scheduler_address_key_exists_only_with_the_dask_launcher(tmp_path, monkeypatch,
                                                                     capsys):
    result = run_train(["--multirun", "seed=1", "hydra.launcher.scheduler_address=tcp://x:1",
                        f"tracking.uri={store_uri(tmp_path)}"], tmp_path, monkeypatch, capsys)
    one_error_line(result, "scheduler_address")
    assert result.returncode == 1
    assert not (tmp_path / "mlflow.db").exists()


def test_a_server_that_refuses_connections_is_one_line(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the same error, sooner
    with socket.socket() as sock:  # a port that is bound but not listening: refused
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(Exception) as caught:
            MlflowClient(uri).get_run("0" * 32)
    assert describe_error(caught.value) == f"MLflow server {uri} unreachable: Connection refused"


def test_failed_jobs_are_summarised_by_reason():
    records = [
        {"status": "done", "overrides": ["seed=1"], "run_id": "a", "error": None},
        {"status": "failed", "overrides": ["seed=2", "train.lr=0.1"], "run_id": None,
         "error": "MLflow server http://h:1 unreachable: Connection refused"},
        {"status": "failed", "overrides": ["seed=3"], "run_id": None,
         "error": "job process died with exit code 3"},
        {"status": "failed", "overrides": ["seed=4"], "run_id": None,
         "error": "MLflow server http://h:1 unreachable: Connection refused"},
    ]
    assert crash_message(Summary(records, 5)) == (
        "3 of 5 jobs crashed: MLflow server http://h:1 unreachable: Connection refused: "
        "[seed=2 train.lr=0.1] [seed=4]; job process died with exit code 3: [seed=3]")


@pytest.mark.slow
def test_a_sweep_through_submitit_local_lands_every_run(tmp_path: Path):
    result = run_cli(["--multirun", "model.hidden_size=8,16", "seed=1,2", "train.lr=0.05",
                      "data.noise=0.06", "train.epochs=100",
                      "hydra/launcher=submitit_local", f"tracking.uri={store_uri(tmp_path)}"],
                     tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "[sweep] 4/4 done, 0 skipped, 0 diverged, 0 failed" in result.stderr
    client = MlflowClient(store_uri(tmp_path))
    exp = client.get_experiment_by_name("scratchnet")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if TAG_PARENT in r.data.tags]
    assert len(runs) == 5 and len(children) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {(r.data.params["model.hidden_size"], r.data.params["seed"]) for r in children} == {
        ("8", "1"), ("8", "2"), ("16", "1"), ("16", "2")}
