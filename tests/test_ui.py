"""scripts/mlflow-ui.sh starts a real MLflow UI on 127.0.0.1 that serves our runs."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, compose_config, free_port, store_uri
from scratchnet.run import run

# A real MLflow UI server: the slow suite (pytest -m slow).
pytestmark = pytest.mark.slow


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


@pytest.fixture
def ui(tmp_path):
    uri = store_uri(tmp_path)
    outcome = run(compose_config([f"tracking.uri={uri}", "train.epochs=20"]))
    port = free_port()
    env = {**os.environ, "MLFLOW_UI_PORT": str(port),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(["bash", str(ROOT / "scripts" / "mlflow-ui.sh"), uri], env=env,
                              cwd=tmp_path, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        yield port, outcome.run_id, server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_ui_serves_the_store_on_loopback_only(ui):
    port, run_id, _ = ui
    listening = [c for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={run_id}")
    with urllib.request.urlopen(request, timeout=10) as response:
        served = json.load(response)["run"]
    params = {p["key"]: p["value"] for p in served["data"]["params"]}
    assert params["model.hidden_size"] == "16" and params["train.epochs"] == "20"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        assert b"MLflow" in response.read()
