"""Everything MLflow: the store, runs, batched logging, and finding runs already done.

We use ``MlflowClient`` with explicit run ids rather than the fluent ``mlflow.start_run``
so no active-run state lives in the process: joblib reuses worker processes between jobs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from filelock import FileLock

# Our runs send nothing over the network; set MLFLOW_DISABLE_TELEMETRY=false to opt in.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow draws a progress bar on stderr for every artifact download; ours is one line.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# With a server, MLflow prints two "View run/experiment at" links per run; we print ours once.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
# A tracking server that has gone away fails a job within about 10 s (3 retries, backoff
# 0 + 2 + 4 s plus up to 1 s jitter each; a server that hangs: 4 x 10 s), not after the
# minutes of MLflow's defaults (7 retries, backoff factor 2, 120 s timeout). These are
# MLflow's own variables: set any of them in the environment to choose another budget.
for _name, _value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
                      ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
                      ("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")):
    os.environ.setdefault(_name, _value)
# mlflow itself (over a second to import) is imported where it is first used: a sweep's
# launching process then imports it while its workers start up (sweep.warm_up_workers).
if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

TAG_CONFIG_HASH = "scratchnet.config_hash"
TAG_FAILURE = "scratchnet.failure"  # why a run is FAILED or KILLED, one line
TAG_OVERRIDES = "scratchnet.overrides"  # the Hydra overrides of the job, JSON list
TAG_SWEEP_KEY = "scratchnet.sweep_key"  # on a parent run: identity of the sweep command
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own tag: nests a run under its sweep
SQLITE_MAGIC = b"SQLite format 3\x00"
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message names the URI or file."""


def with_retry(fn: Callable[..., T], *args: Any, attempts: int = 8, **kwargs: Any) -> T:
    """Call fn, retrying sqlite's transient 'database is locked' with jittered backoff."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # MLflow wraps the sqlite error in its own exceptions
            if "database is locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))
    raise AssertionError("unreachable")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (relative to the working directory), else None."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def check_uri(uri: str) -> None:
    """Fail fast, before any training, on a store that cannot work."""
    path = sqlite_path(uri)
    if path is not None:
        _check_sqlite_file(uri, path)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)
    else:
        raise TrackingError(f"tracking.uri: unsupported {strip_credentials(uri)!r}; "
                            "use sqlite:///path/to/mlflow.db "
                            "or http(s)://host:port of an MLflow server")


def _check_sqlite_file(uri: str, path: Path) -> None:
    if not path.parent.is_dir():
        raise TrackingError(f"tracking.uri: directory {str(path.parent)!r} does not exist ({uri})")
    if path.is_dir():
        raise TrackingError(f"tracking.uri: {str(path)!r} is a directory, not a sqlite database "
                            f"({uri})")
    if path.exists():
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(SQLITE_MAGIC))
        except OSError as error:
            raise TrackingError(f"tracking.uri: cannot read {str(path)!r}: {error.strerror} "
                                f"({uri})") from None
        if header and header != SQLITE_MAGIC:
            raise TrackingError(f"tracking.uri: {str(path)!r} is not a sqlite database ({uri})")
        if not os.access(path, os.W_OK):
            raise TrackingError(f"tracking.uri: {str(path)!r} is not writable ({uri})")
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        raise TrackingError(f"tracking.uri: directory {str(path.parent)!r} is not writable ({uri})")


def _check_server(uri: str, timeout: float = 3.0) -> None:
    """GET /health, which MLflow serves without authentication (also behind basic-auth):
    credentials in the URI are left out of the request and of the message."""
    address = strip_credentials(uri)
    try:
        with urllib.request.urlopen(address.rstrip("/") + "/health", timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(f"tracking.uri: no MLflow server answers at {address} "
                            f"({reason})") from None


_open_clients: dict[str, MlflowClient] = {}  # uri -> client, of this process


def open_store(uri: str) -> MlflowClient:
    """A client on a checked, fully migrated store.

    Two processes creating a new sqlite store at once both run MLflow's schema migration
    and one fails ('duplicate column name'); a file lock beside the database makes the
    first open of a store happen once. A process (and the job processes it forks) then
    keeps its client: opening and checking again cost about 12 ms of every sweep job, twice.
    """
    client = _open_clients.get(uri)
    if client is None:
        client = _open_clients[uri] = _open_new_store(uri)
    return client


def _open_new_store(uri: str) -> MlflowClient:
    check_uri(uri)
    for noisy in ("mlflow.store.db.utils", "alembic"):  # schema set-up chatter on stderr
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a line per HTTP retry to a server that is down: the sweep's summary says it once
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    from mlflow import MlflowClient

    path = sqlite_path(uri)
    lock = FileLock(str(path) + ".lock") if path is not None else contextlib.nullcontext()
    try:
        with lock:  # MlflowClient() builds the store, creating and migrating its schema
            if path is not None and not path.exists():
                _copy_store_template(path)
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as error:
        raise TrackingError(f"tracking.uri: cannot open store {strip_credentials(uri)}: "
                            f"{_first_line(error)}") from None
    return client


def _copy_store_template(path: Path) -> None:
    """Start a new sqlite store as a copy of an empty one that MLflow has already migrated.

    On an empty database MLflow's store creates its tables and runs every schema migration
    (1 to 2 s, on the path to a sweep's first job), then adds its Default experiment. The
    template is the state in between, made once per MLflow and SQLAlchemy version in the
    user's cache folder by the function MLflow itself runs there; opening the copy, MLflow
    finds its schema up to date and adds the Default experiment as it would have.
    tests/test_tracking.py compares such a store with one MLflow made alone. Best effort:
    the copy appears whole or not at all, and if anything fails MLflow makes the store."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(_store_template(), partial)
        os.replace(partial, path)
    except Exception:  # noqa: BLE001 (a cache that cannot be used is no error)
        with contextlib.suppress(OSError):
            partial.unlink()


def _store_template() -> Path:
    """The cached template (made first if missing): $XDG_CACHE_HOME or ~/.cache."""
    import mlflow
    import sqlalchemy
    from mlflow.store.db import utils as db_utils

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scratchnet"
    template = cache / f"mlflow-{mlflow.__version__}-sqlalchemy-{sqlalchemy.__version__}.db"
    if not template.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{template.name}.{os.getpid()}.partial"
        try:
            engine = db_utils.create_sqlalchemy_engine_with_retry(f"sqlite:///{partial}")
            try:
                db_utils._initialize_tables(engine)  # what SqlAlchemyStore() runs on an empty db
            finally:
                engine.dispose()
            os.replace(partial, template)  # whole, even with two processes making it at once
        finally:
            with contextlib.suppress(OSError):  # left only if making it failed
                partial.unlink()
    return template


def open_existing_store(uri: str) -> MlflowClient:
    """open_store for readers (report, reproduce): a sqlite store that is not there is an
    error, not a new empty store."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise TrackingError(f"no MLflow store at {strip_credentials(uri)}")
    return open_store(uri)


def refresh_query_statistics(uri: str) -> None:
    """Best effort, for readers of a sqlite store: give SQLite's query planner statistics
    (ANALYZE) so that it looks up a run's metric history through MLflow's (run_uuid, key,
    step) index. Without them it scans the metrics primary key instead, every run's rows of
    that metric: ~20 ms per get_metric_history call in a 540-run store, under 1 ms with
    them. analysis_limit samples each index, so this takes a few ms whatever the store's
    size. A store busy with writers is left as it is."""
    path = sqlite_path(uri)
    if path is None:
        return
    try:  # mode=rw: never create a database
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                                                timeout=0.5)) as connection:
            connection.execute("PRAGMA analysis_limit = 1000")
            connection.execute("ANALYZE")
            connection.commit()
    except sqlite3.Error:
        pass


def experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    """Id of the named experiment, created on first use (artifacts beside a sqlite file)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    path = sqlite_path(uri)
    location = None  # a server chooses its own artifact store
    if path is not None:  # keep artifacts beside the database: mlruns/<experiment>/<run>/
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        location = (path.resolve().parent / "mlruns" / folder).as_uri()
    try:
        # The MLflow 3 UI opens an experiment of this kind on its "Training runs" table
        # (params, metrics, sweeps as expandable parent rows) rather than the GenAI view.
        return with_retry(client.create_experiment, name, artifact_location=location,
                          tags={"mlflow.experimentKind": "custom_model_development"})
    except Exception:  # another process created it between our lookup and create
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def start_run(client: MlflowClient, exp_id: str, name: str, tags: dict[str, str],
              params: dict[str, Any]) -> str:
    """Create a run with its tags and params (string values are redacted: see redact)."""
    run = with_retry(client.create_run, exp_id, run_name=name, tags=tags)
    log_params(client, run.info.run_id, params)
    return run.info.run_id


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(key, redact(value) if isinstance(value, str) else str(value))
             for key, value in params.items()]
    for start in range(0, len(items), 100):  # MLflow's limit of params per batch
        with_retry(client.log_batch, run_id, params=items[start:start + 100])


def history_steps(epochs_run: int, log_every: int) -> list[int]:
    """1-based epochs to log: the first, every log_every-th, and the last."""
    steps = {1, epochs_run} | set(range(log_every, epochs_run + 1, log_every))
    return sorted(s for s in steps if 1 <= s <= epochs_run)


def log_metrics(client: MlflowClient, run_id: str, losses: np.ndarray, log_every: int,
                scalars: dict[str, float]) -> None:
    """The loss history (step = epoch) and the scalar metrics, in batched calls:
    one log_metric call per epoch costs ~4 ms, a batch of 1000 about the same as one."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric("loss", float(losses[step - 1]), now, step)
               for step in history_steps(len(losses), log_every)]
    metrics += [Metric(key, float(value), now, 0) for key, value in scalars.items()
                if np.isfinite(value)]
    for start in range(0, len(metrics), _BATCH):
        with_retry(client.log_batch, run_id, metrics=metrics[start:start + _BATCH])


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
    """The run ids recorded by record_reused_runs, or []. Here, beside it, rather than in
    sweep.py, so that the report reads them without importing Hydra."""
    names = {a.path for a in client.list_artifacts(parent_id, str(Path(REUSED_RUNS).parent))}
    if REUSED_RUNS not in names:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(client.download_artifacts(parent_id, REUSED_RUNS, tmp)).read_text())


def finished_run(client: MlflowClient, exp_id: str, config_hash: str):
    """A FINISHED run (or one that diverged: a result too) with this config, else None."""
    for run in runs_with_tag(client, exp_id, TAG_CONFIG_HASH, config_hash,
                             statuses=("FINISHED", "FAILED")):
        if run.info.status == "FINISHED" or run.data.tags.get(TAG_FAILURE, "").startswith("diverged"):
            return run
    return None


def describe_error(error: BaseException) -> str:
    """One line for an error, for a sweep's summary. MLflow's report of a tracking server
    that does not answer (a URL, urllib3's retry state, a nested exception) becomes e.g.
    'MLflow server http://127.0.0.1:5000 unreachable: Connection refused'."""
    text = f"{type(error).__name__}: {_first_line(error)}"
    match = re.search(r"API request to (https?://[^/\s]+)\S* failed with exception", text)
    if match and ("Max retries exceeded" in text or "ConnectionError" in text):
        causes = re.findall(r"\[Errno -?\d+\] ([^'\"()]+)|(Read timed out)", text)
        cause = next((a or b for a, b in reversed(causes)), "no answer")
        return f"MLflow server {strip_credentials(match.group(1))} unreachable: {cause.strip()}"
    return strip_credentials(text)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@functools.cache
def provenance() -> dict[str, str]:
    """Where the code came from: git commit and dirtiness of scratchnet's own checkout,
    and the versions of Python, numpy and scratchnet (tags, never environment values)."""
    import platform

    from . import __version__

    tags = {"scratchnet.version": __version__, "python_version": platform.python_version(),
            "numpy_version": np.__version__, "mlflow.source.name": "scratchnet.train",
            "mlflow.source.type": "LOCAL"}
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain",
                                 "--untracked-files=no"], check=True, capture_output=True,
                                text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return tags  # not a git checkout (an installed wheel): no commit to record
    tags["mlflow.source.git.commit"] = commit
    tags["scratchnet.git_dirty"] = str(bool(status.strip())).lower()
    return tags


def strip_credentials(text: str) -> str:
    """http://user:token@host -> http://host, anywhere in text."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def redact(text: str) -> str:
    """A value safe to record: no credentials in URLs, no absolute home path."""
    text = strip_credentials(text)
    home = os.path.expanduser("~")
    return text.replace(home, "~") if home not in ("", "/") else text


def dumps_overrides(overrides: Iterable[str]) -> str:
    return json.dumps([redact(o) for o in overrides])
