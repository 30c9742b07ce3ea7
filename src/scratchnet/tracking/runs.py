"""A run's records: created with its tags and params, its metrics batched, closed with a
status and reason; runs found by tag; the runs a sweep reused instead of rerunning."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .provenance import redact
from .store import with_retry

if TYPE_CHECKING:
    from mlflow import MlflowClient

TAG_CONFIG_HASH = "scratchnet.config_hash"  # identity of what a run computes (config.py)
TAG_FAILURE = "scratchnet.failure"  # why a run is FAILED or KILLED, one line
TAG_OVERRIDES = "scratchnet.overrides"  # the Hydra overrides of the job, JSON list
TAG_SWEEP_KEY = "scratchnet.sweep_key"  # on a parent run: identity of the sweep command
TAG_PRUNED = "scratchnet.pruned"  # on a run a search's pruner stopped: its last epoch
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own tag: nests a run under its sweep
METRICS_PER_BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAMS_PER_BATCH = 100  # and of params


def start_run(client: MlflowClient, exp_id: str, name: str, tags: dict[str, str],
              params: dict[str, Any]) -> str:
    """Create a run with its tags and params (string values redacted); its id."""
    run = with_retry(client.create_run, exp_id, run_name=name, tags=tags)
    log_params(client, run.info.run_id, params)
    return run.info.run_id


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(key, redact(value) if isinstance(value, str) else str(value))
             for key, value in params.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
        with_retry(client.log_batch, run_id, params=items[start:start + PARAMS_PER_BATCH])


def history_steps(epochs_run: int, log_every: int) -> list[int]:
    """1-based epochs to log: the first, every log_every-th, and the last."""
    steps = {1, epochs_run} | set(range(log_every, epochs_run + 1, log_every))
    return sorted(s for s in steps if 1 <= s <= epochs_run)


def rate_steps(rates: np.ndarray) -> list[int]:
    """1-based epochs at which to log a piecewise-constant rate (rates: (epochs_run,)): the
    first and the last, and both sides of every change, so the history is exact and short
    (a full-resolution history would cost every run as much again as its loss history)."""
    changes = np.flatnonzero(rates[1:] != rates[:-1]) + 1  # 0-based epochs of a new rate
    steps = {1, len(rates)} | {int(e) for e in changes} | {int(e) + 1 for e in changes}
    return sorted(s for s in steps if 1 <= s <= len(rates))


def log_metrics(client: MlflowClient, run_id: str, losses: np.ndarray, log_every: int,
                scalars: dict[str, float], rates: np.ndarray | None = None) -> None:
    """The loss history (metric ``loss``, step = epoch), the learning rate's (``lr``, at
    ``rate_steps``) and the finite scalar metrics, in batches: a log_metric call per epoch
    would cost a round trip each."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)  # ms since the epoch, MLflow's timestamp unit
    metrics = [Metric("loss", float(losses[step - 1]), now, step)
               for step in history_steps(len(losses), log_every)]
    if rates is not None:
        metrics += [Metric("lr", float(rates[step - 1]), now, step) for step in rate_steps(rates)]
    metrics += [Metric(key, float(value), now, 0) for key, value in scalars.items()
                if np.isfinite(value)]
    for start in range(0, len(metrics), METRICS_PER_BATCH):
        with_retry(client.log_batch, run_id, metrics=metrics[start:start + METRICS_PER_BATCH])


def set_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    with_retry(client.log_batch, run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def end_run(client: MlflowClient, run_id: str, status: str, reason: str | None = None) -> None:
    """Close a run as FINISHED, FAILED or KILLED, recording the reason first."""
    if reason:
        set_tags(client, run_id, {TAG_FAILURE: reason})
    with_retry(client.set_terminated, run_id, status)


def runs_with_tag(client: MlflowClient, exp_id: str, key: str, value: str,
                  statuses: Iterable[str] | None = None) -> list:
    """Runs of the experiment whose tag ``key`` equals ``value``, newest first, optionally
    only those in the given statuses (filtered here: MLflow's search has no IN on status)."""
    query = f"tags.`{key}` = '{value}'"
    runs, token = [], None
    while True:
        page = with_retry(client.search_runs, [exp_id], query, max_results=1000,
                          order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    wanted = set(statuses or ())
    return [run for run in runs if not wanted or run.info.status in wanted]


def finished_run(client: MlflowClient, exp_id: str, config_hash: str):
    """A FINISHED run (or one that diverged: a result too) with this config, else None.
    A pruned run stopped before its epochs were done: not this config's result."""
    for run in runs_with_tag(client, exp_id, TAG_CONFIG_HASH, config_hash,
                             statuses=("FINISHED", "FAILED")):
        diverged = run.data.tags.get(TAG_FAILURE, "").startswith("diverged")
        if TAG_PRUNED in run.data.tags:
            continue
        if run.info.status == "FINISHED" or diverged:
            return run
    return None


REUSED_RUNS = "sweep/reused_runs.json"  # parent artifact: runs a sweep skipped to (reused)


def record_reused_runs(client: MlflowClient, parent_id: str, run_ids: list[str]) -> None:
    """Remember, on a sweep's parent, the runs whose results it reused instead of rerunning
    (skipped jobs). Some may be children of an earlier sweep; the report includes them all."""
    if not run_ids:
        return
    known = set(reused_runs(client, parent_id))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REUSED_RUNS).name
        path.write_text(json.dumps(sorted(known | set(run_ids)), indent=0))
        with_retry(client.log_artifact, parent_id, str(path), str(Path(REUSED_RUNS).parent))


def reused_runs(client: MlflowClient, parent_id: str) -> list[str]:
    """The run ids recorded by record_reused_runs, or []."""
    names = {a.path for a in client.list_artifacts(parent_id, str(Path(REUSED_RUNS).parent))}
    if REUSED_RUNS not in names:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(client.download_artifacts(parent_id, REUSED_RUNS, tmp)).read_text())
