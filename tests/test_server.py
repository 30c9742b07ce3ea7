"""A real MLflow tracking server (scripts/mlflow-server.sh) on a free loopback port: an
8-run sweep with 2 workers logs to it over HTTP, artifacts go through the server, and
everything reads back through the REST client; the same sweep on a real local Dask
cluster gives bit-identical runs; a server that dies mid-sweep loses nothing."""

import os
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import pytest
from mlflow import MlflowClient

from conftest import ROOT, TrackingServer, run_cli
from scratchnet.tracking import TAG_CONFIG_HASH, TAG_PARENT, TAG_SWEEP_KEY

# A server start and an 8-run sweep cost about 40 s on 2 cores (more under load): the whole
# module runs with the slow tests (CI: pytest -m slow).
pytestmark = pytest.mark.slow

GRID = ["model.hidden_size=8,16", "train.lr=0.05,0.1", "seed=1,2", "data.noise=0.06",
        "train.epochs=300", "tracking.log_every=25", "hydra.launcher.n_jobs=2"]
LOSS_STEPS = [1, *range(25, 301, 25)]  # first epoch, every log_every-th, the last


def sweep(folder: Path, uri: str, *extra: str, **kwargs):
    return run_cli(["--multirun", *GRID, f"tracking.uri={uri}", *extra], folder, **kwargs)


def runs_of(uri: str, experiment: str = "scratchnet"):
    """(client, parent, children) of the experiment's sweeps, read over HTTP."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return (client, [r for r in runs if TAG_SWEEP_KEY in r.data.tags],
            [r for r in runs if TAG_PARENT in r.data.tags])


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; asserts the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server and a finished 8-run joblib sweep logged to it."""
    folder = tmp_path_factory.mktemp("served")
    server = TrackingServer(folder / "server").start()
    try:
        started = time.monotonic()
        result = sweep(folder, server.uri)
        assert result.returncode == 0, result.stderr
        print(f"8-run sweep against the server: {time.monotonic() - started:.1f} s")
        yield server, folder, result
    finally:
        server.stop()


def test_the_script_prints_the_uri_and_binds_loopback(served):
    server, _, _ = served
    assert (ROOT / "scripts" / "mlflow-server.sh").stat().st_mode & 0o111  # executable
    assert server.printed == f"tracking.uri={server.uri}"

    listening = [c for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port]
    assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}


def test_every_run_its_history_and_fit_plot_read_back_over_http(served, tmp_path):
    server, folder, result = served
    assert "[sweep] 8/8 done, 0 skipped, 0 diverged, 0 failed" in result.stderr
    client, parents, children = runs_of(server.uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 8 and {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags[TAG_PARENT] for c in children} == {parents[0].info.run_id}
    assert len({c.data.tags[TAG_CONFIG_HASH] for c in children}) == 8
    for child in children:
        run_id = child.info.run_id
        history = client.get_metric_history(run_id, "loss")
        assert [m.step for m in history] == LOSS_STEPS
        assert history[-1].value == child.data.metrics["final_mse"]
        # artifacts went through the server into its --artifacts-destination
        assert child.info.artifact_uri.startswith("mlflow-artifacts:/")
        png = Path(client.download_artifacts(run_id, "fit.png", str(tmp_path / run_id)))
        assert png_size(png) == (1000, 400)  # figsize (10, 4) at 100 dpi
        stored = folder / "server" / "artifacts" / child.info.experiment_id / run_id
        assert (stored / "artifacts" / "fit.png").read_bytes() == png.read_bytes()
    assert not (folder / "mlruns").exists()  # nothing written beside the sweep


def test_the_ui_lists_the_sweep_and_shows_a_fit_plot_in_chromium(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, _, _ = served
    _, parents, children = runs_of(server.uri)
    parent, exp_id = parents[0].info.run_id, parents[0].info.experiment_id
    kids = {c.info.run_id for c in children}
    # The runs table (the UI's "Model training" view), one row per run, keyed by run id
    # (AG Grid's row-id); children appear once their parent's expand button is pressed.
    ml_view = "workflowType=machine_learning"
    browser.get(f"{server.uri}/#/experiments/{exp_id}/runs?{ml_view}")
    wait = WebDriverWait(browser, 60)
    row = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, f"[role=row][row-id='{parent}']"))
    assert parents[0].info.run_name.startswith("sweep hidden_size=8,16 lr=0.05,0.1")
    assert parents[0].info.run_name in row.text

    def shown_rows(b):
        return {e.get_attribute("row-id") for e in b.find_elements(By.CSS_SELECTOR, "[role=row]")}

    assert not kids & shown_rows(browser)  # collapsed: only the parent
    row.find_element(By.CSS_SELECTOR, "button").click()
    wait.until(lambda b: kids <= shown_rows(b))
    names = browser.find_element(By.CSS_SELECTOR, "[role=grid]").text
    assert all(c.info.run_name in names for c in children)
    browser.save_screenshot(str(tmp_path / "runs_table.png"))
    # A child's fit.png in its Artifacts tab: an <img> whose picture has loaded, at full size
    child = children[0].info.run_id
    browser.get(f"{server.uri}/#/experiments/{exp_id}/runs/{child}/artifacts/fit.png?{ml_view}")

    def loaded_size(b):  # the artifact viewer shows the downloaded file from a blob: URL
        for image in b.find_elements(By.CSS_SELECTOR, "img[src^='blob:']"):
            size = b.execute_script("const i = arguments[0]; return i.complete ? "
                                    "[i.naturalWidth, i.naturalHeight] : null", image)
            if size and size[0] > 0:
                return tuple(size)
        return False

    assert wait.until(loaded_size) == (1000, 400)
    browser.save_screenshot(str(tmp_path / "fit_png.png"))
    print(f"screenshots in {tmp_path}")


def test_the_same_sweep_on_a_local_dask_cluster_is_bit_identical(served, tmp_path):
    server, folder, _ = served
    started = time.monotonic()
    result = sweep(folder, server.uri, "hydra/launcher=dask", "tracking.experiment=on-dask")
    print(f"8-run sweep on a local Dask cluster: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stderr
    assert "[sweep] 8/8 done, 0 skipped, 0 diverged, 0 failed" in result.stderr
    client, _, joblib_runs = runs_of(server.uri)
    _, dask_parents, dask_runs = runs_of(server.uri, "on-dask")
    assert len(dask_parents) == 1 and dask_parents[0].info.status == "FINISHED"
    assert len(dask_runs) == 8 and {r.info.status for r in dask_runs} == {"FINISHED"}
    by_hash = {r.data.tags[TAG_CONFIG_HASH]: r for r in joblib_runs}
    for run in dask_runs:
        twin = by_hash[run.data.tags[TAG_CONFIG_HASH]]
        assert run.data.metrics["true_mse"] == twin.data.metrics["true_mse"]
        for name in ("history.csv", "model.npz"):
            mine = client.download_artifacts(run.info.run_id, name, str(tmp_path / "d"))
            theirs = client.download_artifacts(twin.info.run_id, name, str(tmp_path / "j"))
            if name == "history.csv":
                assert Path(mine).read_bytes() == Path(theirs).read_bytes()
            else:
                with np.load(mine) as a, np.load(theirs) as b:
                    assert a.files == b.files
                    assert all(a[k].tobytes() == b[k].tobytes() for k in a.files)


def progress_lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.glob("multirun/*/*/progress.jsonl"))


def test_a_server_that_dies_mid_sweep_loses_nothing_and_a_rerun_completes(tmp_path):
    server = TrackingServer(tmp_path / "server").start()
    longer = ["model.hidden_size=8,16", "train.lr=0.05,0.1", "seed=1,2,3", "data.noise=0.06",
              "train.epochs=3000", "hydra.launcher.n_jobs=2"]  # 12 jobs of about a second
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "scratchnet.train", "--multirun", *longer,
               f"tracking.uri={server.uri}"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while progress_lines(tmp_path) < 3:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    _, _, before = runs_of(server.uri)
    finished_before = {r.info.run_id: r for r in before if r.info.status == "FINISHED"}
    assert finished_before
    server.stop(signal.SIGKILL)  # the whole server, no goodbye
    died = time.monotonic()
    _, err = process.communicate(timeout=300)
    print(f"sweep ended {time.monotonic() - died:.1f} s after the server died")
    assert process.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and " of 12 jobs crashed: " in last
    assert f"MLflow server {server.uri} unreachable: Connection refused" in last \
        or f"no MLflow server answers at {server.uri}" in last
    server.start()  # same port, same backend store and artifacts
    _, _, kept = runs_of(server.uri)
    kept = {r.info.run_id: r for r in kept}
    for run_id, run in finished_before.items():  # nothing logged before the outage is lost
        assert kept[run_id].info.status == "FINISHED"
        assert kept[run_id].data.metrics == run.data.metrics
    try:
        again = run_cli(["--multirun", *longer, f"tracking.uri={server.uri}"], tmp_path)
        assert again.returncode == 0, again.stderr
        client, parents, children = runs_of(server.uri)
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        finished = Counter(r.data.tags[TAG_CONFIG_HASH] for r in children
                           if r.info.status == "FINISHED")
        assert len(finished) == 12 and set(finished.values()) == {1}
        assert not [r for r in children if r.info.status == "RUNNING"]
        for run_id in finished_before:
            png = client.download_artifacts(run_id, "fit.png", str(tmp_path / run_id))
            assert png_size(Path(png)) == (1000, 400)
    finally:
        server.stop()
