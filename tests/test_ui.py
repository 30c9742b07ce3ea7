"""scripts/mlflow-ui.sh starts a real MLflow UI on 127.0.0.1 that serves our runs."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from conftest import (
    ROOT,
    compose_config,
    free_port,
    stop_server,
    store_uri,
    wait_until_answering,
)
from scratchnet.run import run

# A real MLflow UI server: the slow suite (pytest -m slow).
pytestmark = pytest.mark.slow


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
        wait_until_answering(f"http://127.0.0.1:{port}/health", server, seconds=60)
        yield port, outcome.run_id, server
    finally:
        stop_server(server)


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


# ---------------------------------------------------------------- one way to the UI

def start_ui_script(store: str, folder: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_UI_PORT": str(port),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen(["bash", str(ROOT / "scripts" / "mlflow-ui.sh"), store], env=env,
                            cwd=folder, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def test_the_script_prints_the_latest_sweeps_address_once_it_answers_and_it_opens_the_training_view(
        tmp_path):
    from mlflow import MlflowClient

    from conftest import recorded_sweep
    from scratchnet.tracking import TAG_SWEEP_KEY, ui

    uri = store_uri(tmp_path)
    sweep = recorded_sweep(uri, {"model.hidden_size": [4, 8], "seed": [1, 2]},
                           ["train.epochs=50"])
    client = MlflowClient(uri)
    assert TAG_SWEEP_KEY in client.get_run(sweep.parent_id).data.tags
    # a page at the path the sweep's report is logged to, to check the report's address
    page = tmp_path / "report.html"
    page.write_text("<html><body><h1>scratchnet sweep report</h1></body></html>")
    client.log_artifact(sweep.parent_id, str(page), "report")
    port = free_port()
    started = time.monotonic()
    script = start_ui_script(uri, tmp_path, port)
    try:
        ready = script.stdout.readline()
        printed = [script.stdout.readline().strip() for _ in range(3)]
        print(f"the UI script said it was ready after {time.monotonic() - started:.1f} s")
        base = f"http://127.0.0.1:{port}"
        assert ready.strip() == f"MLflow UI ready at {base} (Ctrl-C to stop)"
        # the UI answers the moment it says so: no retry here
        with urllib.request.urlopen(f"{base}/", timeout=10) as response:
            assert response.status == 200 and b"MLflow" in response.read()
        exp, parent = sweep.exp_id, sweep.parent_id
        assert printed == [f"Latest sweep: {ui.sweep_url(base, exp, parent)}",
                           f"its parent run: {ui.run_url(base, exp, parent)}",
                           f"its report:     {ui.artifact_url(base, exp, parent)}"]
        check_in_chromium(tmp_path, sweep, printed, client)
    finally:
        stop_server(script)


def check_in_chromium(tmp_path: Path, sweep, printed: list[str], client) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from conftest import browser_for

    kids = {c.info.run_id for c in sweep.children}
    names = {c.info.run_name for c in sweep.children}
    with browser_for(tmp_path) as browser:
        wait = WebDriverWait(browser, 90)
        # the sweep: its children's rows in the training runs table, none of another run
        browser.get(printed[0].split(": ", 1)[1])

        def rows(b):
            return {e.get_attribute("row-id") for e in b.find_elements(By.CSS_SELECTOR,
                                                                       "[role=row][row-id]")}

        wait.until(lambda b: kids <= rows(b))
        assert rows(browser) == kids  # filtered to the sweep's children: not the parent
        grid = browser.find_element(By.CSS_SELECTOR, "[role=grid]").text
        assert all(name in grid for name in names)
        body = browser.find_element(By.TAG_NAME, "body").text
        # the training runs table (not the GenAI overview), filtered and sorted by the URL
        assert f"{len(kids)} matching runs" in body and "Sort: true_mse" in body, body
        browser.save_screenshot(str(tmp_path / "sweep.png"))
        # best true_mse first
        order = [e.get_attribute("row-id") for e in
                 browser.find_elements(By.CSS_SELECTOR, "[role=row][row-id]")]
        by_mse = sorted(sweep.children, key=lambda c: c.data.metrics["true_mse"])
        assert order[0] == by_mse[0].info.run_id
        # the parent run's page, and the report rendered in its Artifacts tab
        browser.get(printed[1].split(": ", 1)[1])
        parent_name = client.get_run(sweep.parent_id).info.run_name
        wait.until(lambda b: parent_name in b.find_element(By.TAG_NAME, "body").text)
        browser.save_screenshot(str(tmp_path / "parent.png"))
        browser.get(printed[2].split(": ", 1)[1].strip())
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "iframe"))
        browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe"))
        wait.until(lambda b: "scratchnet sweep report" in b.find_element(By.TAG_NAME,
                                                                         "body").text)
        browser.switch_to.default_content()
        browser.save_screenshot(str(tmp_path / "report.png"))
    print(f"screenshots in {tmp_path}")
