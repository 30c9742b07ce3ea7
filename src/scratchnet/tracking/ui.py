"""Addresses in the MLflow UI of what a command just recorded: a run, a sweep, a file of a run.

Every command that points at the UI prints one of these (a single run, the end of a sweep,
the report command, scripts/mlflow-ui.sh). MLflow 3's UI opens an experiment on its GenAI
overview (traces, tokens) unless the address asks for training runs with
``workflowType=machine_learning``; otherwise the choice is whatever the browser last kept.
The shapes are the UI's own hash routes (checked against MLflow 3.17's UI in
tests/test_ui.py):

  run     <ui>/#/experiments/<exp>/runs/<run>?workflowType=machine_learning
  file    <ui>/#/experiments/<exp>/runs/<run>/artifacts/<path>?workflowType=...
  sweep   <ui>/#/experiments/<exp>/runs?searchFilter=<children of the parent>
          &orderByKey=metrics.`true_mse`&orderByAsc=true&workflowType=...

With a sqlite store the UI is scripts/mlflow-ui.sh's: http://127.0.0.1:5000 unless
MLFLOW_UI_HOST or MLFLOW_UI_PORT say otherwise (the script reads the same two variables);
with a tracking server, the server itself.

python -m scratchnet.tracking.ui --store URI --ui URL [--wait SECONDS] waits until the UI
answers, then prints the address of the latest sweep or run in the store (the UI script
runs it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from .store import DEFAULT_URI

TRAINING_VIEW = "workflowType=machine_learning"
REPORT_PATH = "report/report.html"  # where a sweep's report is logged in its parent run
SORT_BY = "true_mse"  # the sweep's children, best first


def ui_address(tracking_uri: str) -> str:
    """The UI that shows this store: the tracking server, or scripts/mlflow-ui.sh's."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    host = os.environ.get("MLFLOW_UI_HOST", "127.0.0.1")
    if host == "0.0.0.0":  # listening everywhere: this machine answers on loopback too
        host = "127.0.0.1"
    return f"http://{host}:{os.environ.get('MLFLOW_UI_PORT', '5000')}"


def start_hint(tracking_uri: str) -> str:
    """How to start the UI for a store the UI does not serve by itself ('' for a server)."""
    if tracking_uri.startswith(("http://", "https://")):
        return ""
    if tracking_uri == DEFAULT_URI:
        return "scripts/mlflow-ui.sh"
    return f"scripts/mlflow-ui.sh {tracking_uri}"


def run_url(ui: str, exp_id: str, run_id: str) -> str:
    return f"{ui}/#/experiments/{exp_id}/runs/{run_id}?{TRAINING_VIEW}"


def artifact_url(ui: str, exp_id: str, run_id: str, path: str = REPORT_PATH) -> str:
    """A run's file in the run page's Artifacts tab (an HTML file is shown rendered)."""
    return f"{ui}/#/experiments/{exp_id}/runs/{run_id}/artifacts/{path}?{TRAINING_VIEW}"


def sweep_url(ui: str, exp_id: str, parent_id: str) -> str:
    """The runs table filtered to the sweep's children, best true_mse first."""
    state = urllib.parse.urlencode({
        "searchFilter": f"tags.mlflow.parentRunId = '{parent_id}'",
        "orderByKey": f"metrics.`{SORT_BY}`", "orderByAsc": "true"},
        quote_via=urllib.parse.quote)
    return f"{ui}/#/experiments/{exp_id}/runs?{state}&{TRAINING_VIEW}"


def experiments_url(ui: str) -> str:
    return f"{ui}/#/experiments?{TRAINING_VIEW}"


def run_lines(tracking_uri: str, exp_id: str, run_id: str) -> list[str]:
    """What a single run prints at its end to point at the UI."""
    ui = ui_address(tracking_uri)
    hint = start_hint(tracking_uri)
    return [f"In the MLflow UI{f' ({hint})' if hint else ''}: {run_url(ui, exp_id, run_id)}"]


def sweep_lines(tracking_uri: str, exp_id: str, parent_id: str) -> list[str]:
    """What a sweep (and the report command) prints at its end to point at the UI."""
    ui = ui_address(tracking_uri)
    hint = start_hint(tracking_uri)
    return [f"In the MLflow UI{f' ({hint})' if hint else ''}: {sweep_url(ui, exp_id, parent_id)}",
            f"  its parent run: {run_url(ui, exp_id, parent_id)}",
            f"  its report:     {artifact_url(ui, exp_id, parent_id)}"]


def latest_lines(tracking_uri: str, ui: str) -> list[str]:
    """The address of the latest sweep or single run in the store (the UI script's)."""
    from .. import tracking

    client = tracking.open_existing_store(tracking_uri)
    latest = None
    for experiment in client.search_experiments():
        runs = tracking.with_retry(
            client.search_runs, [experiment.experiment_id],
            f"tags.`{tracking.TAG_PARENT}` IS NULL", max_results=1,
            order_by=["attributes.start_time DESC"])
        if runs and (latest is None or runs[0].info.start_time > latest.info.start_time):
            latest = runs[0]
    if latest is None:
        return [f"No runs yet: {experiments_url(ui)}"]
    exp_id, run_id = latest.info.experiment_id, latest.info.run_id
    if tracking.TAG_SWEEP_KEY in latest.data.tags:
        return [f"Latest sweep: {sweep_url(ui, exp_id, run_id)}",
                f"  its parent run: {run_url(ui, exp_id, run_id)}",
                f"  its report:     {artifact_url(ui, exp_id, run_id)}"]
    return [f"Latest run: {run_url(ui, exp_id, run_id)}"]


def wait_until_answering(ui: str, seconds: float) -> bool:
    """Poll the UI's /health until it answers 200, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{ui}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m scratchnet.tracking.ui",
        description="Wait until an MLflow UI answers, then print the address of the latest "
                    "sweep or run in its store (scripts/mlflow-ui.sh runs this).")
    parser.add_argument("--store", default=DEFAULT_URI,
                        help="the MLflow store the UI serves (default: %(default)s)")
    parser.add_argument("--ui", required=True, help="the UI's address, e.g. http://127.0.0.1:5000")
    parser.add_argument("--wait", type=float, default=120,
                        help="seconds to wait for the UI to answer (default: %(default)s)")
    args = parser.parse_args(argv)
    from ..cli import exit_on, set_mlflow_defaults
    from .store import TrackingError

    set_mlflow_defaults()
    with exit_on(TrackingError):  # read while the server starts: the store needs no server
        lines = latest_lines(args.store, args.ui)
    if not wait_until_answering(args.ui, args.wait):
        sys.exit(f"error: the MLflow UI at {args.ui} did not answer within {args.wait:g} s")
    print(f"MLflow UI ready at {args.ui} (Ctrl-C to stop)", *lines, sep="\n", flush=True)


if __name__ == "__main__":
    main()
