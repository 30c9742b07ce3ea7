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
TAG_STUDY = "scratchnet.optuna_study"  # on a search's parent run: its Optuna study's name
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own tag: nests a run under its sweep
# MLflow's limits per log_batch call: params, tags, and all entities (metrics included)
PARAMS_PER_BATCH, TAGS_PER_BATCH, ENTITIES_PER_BATCH = 100, 100, 1000


def start_run(client: MlflowClient, exp_id: str, name: str, tags: dict[str, str],
              params: dict[str, Any] | None = None) -> str:
    """Create a run with its tags (and params, if given); its id."""
    run = with_retry(client.create_run, exp_id, run_name=name, tags=tags)
    if params:
        log_batch(client, run.info.run_id, params=params)
    return run.info.run_id


def log_batch(client: MlflowClient, run_id: str, params: dict[str, Any] | None = None,
              metrics: list | None = None, tags: dict[str, str] | None = None) -> None:
    """Params (string values redacted), metrics and tags of a run in one MLflow log_batch
    call, or in as few as its limits per call allow: a run's whole record is one call (each
    call costs a transaction; a log_metric call per epoch would cost one each)."""
    from mlflow.entities import Param, RunTag

    params_left = [Param(key, redact(value) if isinstance(value, str) else str(value))
                   for key, value in (params or {}).items()]
    tags_left = [RunTag(key, value) for key, value in (tags or {}).items()]
    metrics_left = list(metrics or [])
    while params_left or tags_left or metrics_left:
        params_now, params_left = params_left[:PARAMS_PER_BATCH], params_left[PARAMS_PER_BATCH:]
        tags_now, tags_left = tags_left[:TAGS_PER_BATCH], tags_left[TAGS_PER_BATCH:]
        room = ENTITIES_PER_BATCH - len(params_now) - len(tags_now)
        metrics_now, metrics_left = metrics_left[:room], metrics_left[room:]
        with_retry(client.log_batch, run_id, metrics=metrics_now, params=params_now,
                   tags=tags_now)


def record_outcome(client: MlflowClient, run_id: str, metrics: dict[str, float],
                   tags: dict[str, str]) -> None:
    """A sweep's outcome on its parent run, in one call: scalar metrics (step 0) and tags."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    log_batch(client, run_id, metrics=[Metric(key, value, now, 0)
                                       for key, value in metrics.items()], tags=tags)


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


def run_metrics(losses: np.ndarray, log_every: int, scalars: dict[str, float],
                rates: np.ndarray | None = None) -> list:
    """A run's metrics for log_batch: the loss history (metric ``loss``, step = epoch), the
    learning rate's (``lr``, at ``rate_steps``) and the finite scalar metrics."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)  # ms since the epoch, MLflow's timestamp unit
    metrics = [Metric("loss", float(losses[step - 1]), now, step)
               for step in history_steps(len(losses), log_every)]
    if rates is not None:
        metrics += [Metric("lr", float(rates[step - 1]), now, step) for step in rate_steps(rates)]
    return metrics + [Metric(key, float(value), now, 0) for key, value in scalars.items()
                      if np.isfinite(value)]


def end_run(client: MlflowClient, run_id: str, status: str, reason: str | None = None,
            params: dict[str, Any] | None = None) -> None:
    """Close a run as FINISHED, FAILED or KILLED, recording the reason (and ``params``: those
    of a run that ended before recording its results) first."""
    if reason or params:
        log_batch(client, run_id, params=params, tags={TAG_FAILURE: reason} if reason else None)
    with_retry(client.set_terminated, run_id, status)


def runs_with_tag(client: MlflowClient, exp_id: str, key: str, value: str,
                  statuses: Iterable[str] | None = None, like: bool = False) -> list:
    """Runs of the experiment whose tag ``key`` equals ``value`` (matches it as an SQL LIKE
    pattern, with ``like``), newest first, optionally only those in the given statuses
    (filtered here: MLflow's search has no IN on status)."""
    query = f"tags.`{key}` {'LIKE' if like else '='} '{value}'"
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


def is_result(run) -> bool:
    """Whether a run answers its config: FINISHED, or FAILED because it diverged (a result
    too). A pruned run stopped before its epochs were done: not its config's result."""
    if TAG_PRUNED in run.data.tags:
        return False
    return run.info.status == "FINISHED" or (
        run.info.status == "FAILED" and run.data.tags.get(TAG_FAILURE, "").startswith("diverged"))


def answering_runs(runs: Iterable, parent_id: str | None = None) -> dict[str, Any]:
    """Config hash -> the one run that answers it among ``runs`` (results only, see is_result):
    a child of ``parent_id`` where there is one, else the newest. The resume lookup and the
    report share this rule, so a (setting, seed) counts once however often it was recorded."""
    chosen: dict[str, Any] = {}
    # newest first; the run id breaks a tie of start times (milliseconds), so the order is fixed
    for run in sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id), reverse=True):
        config_hash = run.data.tags.get(TAG_CONFIG_HASH)
        if config_hash is None or not is_result(run):
            continue
        mine = parent_id is not None and run.data.tags.get(TAG_PARENT) == parent_id
        held = chosen.get(config_hash)
        if held is None or (mine and held.data.tags.get(TAG_PARENT) != parent_id):
            chosen[config_hash] = run
    return chosen


def recorded_results(client: MlflowClient, exp_id: str, parent_id: str | None = None
                     ) -> dict[str, dict[str, Any]]:
    """Config hash -> the run that answers it in the experiment, ``{"run_id": ..., "true_mse":
    ... or None if it diverged}`` (answering_runs' rule). One query for the whole experiment,
    so that a sweep's jobs need none."""
    runs = runs_with_tag(client, exp_id, TAG_CONFIG_HASH, "%", like=True)
    return {config_hash: {"run_id": run.info.run_id, "true_mse": run.data.metrics.get("true_mse")}
            for config_hash, run in answering_runs(runs, parent_id).items()}


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
