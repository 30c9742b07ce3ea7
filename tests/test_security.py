"""Models load without pickle; runs record no environment values, credentials or home
paths; tracking URIs lose their credentials before they are recorded or printed.
(That the UI script binds 127.0.0.1 is tested by starting it, in test_ui.py.)"""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import ROOT, compose_config
from scratchnet import tracking
from scratchnet.nn.network import predict
from scratchnet.run import run
from scratchnet.weights import load_weights

SECRET = "s3cr3t-value-9f81c2"


class Trap:
    """Unpickling this creates a file: evidence that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def object_array(marker: Path) -> np.ndarray:
    array = np.empty(1, dtype=object)
    array[0] = Trap(marker)
    return array


@pytest.mark.parametrize("poisoned", ["W1", "activation"])
def test_model_with_an_object_array_is_refused_without_running_its_pickle(tmp_path, poisoned):
    marker = tmp_path / "pickle-ran"
    arrays = {"W1": np.ones((1, 2)), "b1": np.zeros((1, 2)), "W2": np.ones((2, 1)),
              "b2": np.zeros((1, 1)), "activation": np.array("tanh")}
    arrays[poisoned] = object_array(marker)
    path = tmp_path / "model.npz"
    np.savez(path, **arrays)  # np.savez pickles object arrays: this file carries a pickle
    with np.load(path, allow_pickle=True) as archive:  # proof the trap is armed
        archive[poisoned]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match="pickle"):
        load_weights(path)
    assert not marker.exists()


def test_model_that_is_a_bare_pickle_is_refused(tmp_path):
    marker = tmp_path / "pickle-ran"
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(Trap(marker)))
    with pytest.raises(ValueError, match="pickle"):
        load_weights(path)
    assert not marker.exists()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, new_store):
    """A real run with HOME set to a folder that holds the store, and a secret in the
    environment, both visible to the process for the whole run."""
    home = tmp_path_factory.mktemp("home")
    uri = new_store(home / "experiments")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("SCRATCHNET_TEST_SECRET", SECRET)
        assert os.path.expanduser("~") == str(home)
        overrides = [f"tracking.uri={uri}", "train.epochs=30"]
        outcome = run(compose_config(overrides), overrides=overrides)
    client = MlflowClient(uri)
    recorded_run = client.get_run(outcome.run_id)
    experiment = client.get_experiment(recorded_run.info.experiment_id)
    return home, uri, outcome, recorded_run, experiment


def recorded_values(recorded_run, experiment) -> dict[str, str]:
    values = {f"param {k}": v for k, v in recorded_run.data.params.items()}
    values.update({f"tag {k}": v for k, v in recorded_run.data.tags.items()})
    values.update({f"experiment tag {k}": v for k, v in experiment.tags.items()})
    values["run name"] = recorded_run.info.run_name
    return values


def test_no_home_path_secret_or_environment_in_params_or_tags(recorded):
    home, _, _, recorded_run, experiment = recorded
    values = recorded_values(recorded_run, experiment)
    assert len(values) > 20, values
    leaks = {name: value for name, value in values.items()
             if str(home) in value or SECRET in value or "SCRATCHNET_TEST_SECRET" in value}
    assert leaks == {}
    # the store's location is still recorded, relative to the home folder
    assert recorded_run.data.params["tracking.uri"] == "sqlite:///~/experiments/mlflow.db"
    assert json.loads(recorded_run.data.tags["scratchnet.overrides"]) == [
        "tracking.uri=sqlite:///~/experiments/mlflow.db", "train.epochs=30"]


def test_no_absolute_paths_of_this_machine_in_params_or_tags(recorded):
    """Not the checkout, the virtualenv, the working directory or the interpreter."""
    _, _, _, recorded_run, experiment = recorded
    machine = {str(ROOT), sys.prefix, os.getcwd(), sys.executable}
    values = recorded_values(recorded_run, experiment)
    assert {name: value for name, value in values.items()
            if any(path in value for path in machine)} == {}


def test_recorded_model_loads_without_pickle(recorded, tmp_path):
    _, uri, outcome, _, _ = recorded
    local = Path(MlflowClient(uri).download_artifacts(outcome.run_id, "model.npz", str(tmp_path)))
    with np.load(local, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
    params, activation = load_weights(local)
    assert activation == "tanh" and len(params) == 4
    t = outcome.result.curve.t_dense[:, None]
    np.testing.assert_array_equal(predict(params, t, activation),
                                  predict(outcome.result.fit.params, t, activation))


@pytest.mark.parametrize("text,expected", [
    ("http://alice:s3cr3t@mlflow.example.org:5000", "http://mlflow.example.org:5000"),
    ("https://token@host/path?q=1", "https://host/path?q=1"),
    ("tracking.uri=http://u:p@127.0.0.1:5000", "tracking.uri=http://127.0.0.1:5000"),
    ("a http://u:p@x and https://v:q@y", "a http://x and https://y"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
])
def test_redact_strips_credentials_from_urls(text, expected):
    assert tracking.redact(text) == expected


def test_redact_replaces_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tracking.redact(f"sqlite:///{tmp_path}/m.db") == "sqlite:///~/m.db"
    assert tracking.dumps_overrides([f"tracking.uri=http://u:{SECRET}@h", str(tmp_path)]) \
        == '["tracking.uri=http://h", "~"]'


def test_tracking_errors_do_not_print_credentials():
    for uri in (f"foo://alice:{SECRET}@somewhere", f"http://alice:{SECRET}@127.0.0.1:1"):
        with pytest.raises(tracking.TrackingError) as error:
            tracking.check_uri(uri)
        assert SECRET not in str(error.value) and "tracking.uri" in str(error.value)


class LockedServer(BaseHTTPRequestHandler):
    """Like an MLflow server behind basic-auth given a wrong password: /health answers,
    every API call is 401."""

    def do_GET(self):
        status, body = (200, b"OK") if self.path.endswith("/health") else (401, b"no entry")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_refused_credentials_are_not_printed():
    server = ThreadingHTTPServer(("127.0.0.1", 0), LockedServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://alice:{SECRET}@127.0.0.1:{server.server_address[1]}"
        start = time.monotonic()
        with pytest.raises(tracking.TrackingError) as error:
            tracking.open_store(uri)
        assert time.monotonic() - start < 15
    finally:
        server.shutdown()
        server.server_close()
    message = str(error.value)
    assert "401" in message and f"127.0.0.1:{server.server_address[1]}" in message
    assert SECRET not in message and "alice" not in message


def test_readme_says_how_to_put_a_team_server_behind_authentication():
    readme = (ROOT / "README.md").read_text()
    assert "mlflow server --app-name basic-auth" in readme
    script = (ROOT / "scripts" / "mlflow-ui.sh").read_text()
    assert 'host="${MLFLOW_UI_HOST:-127.0.0.1}"' in script and '--host "${host}"' in script
