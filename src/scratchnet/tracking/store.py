"""The MLflow store: a tracking URI checked before any work, a store opened (created and
migrated once), the experiment, retries of sqlite's transient locks, errors in one line.

``mlflow`` itself takes over a second to import: it is imported where it is first used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from filelock import FileLock

from .provenance import strip_credentials

if TYPE_CHECKING:
    from mlflow import MlflowClient

SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every sqlite database

T = TypeVar("T")

DEFAULT_URI = "sqlite:///mlflow.db"  # the embedded store in the working folder


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


def sqlite_under(folder: Path, uri: str) -> str:
    """A relative sqlite URI taken relative to ``folder`` rather than the working
    directory; any other URI as it is."""
    path = sqlite_path(uri)
    if path is None or path.is_absolute():
        return uri
    return f"sqlite:///{folder.resolve() / path}"


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
    """A client on a checked, fully migrated store; a process keeps the client of a store
    it has opened (and the job processes it forks inherit it)."""
    client = _open_clients.get(uri)
    if client is None:
        client = _open_clients[uri] = _open_new_store(uri)
    return client


def _open_new_store(uri: str) -> MlflowClient:
    """Two processes creating a new sqlite store at once would both run MLflow's schema
    migration and one would fail ('duplicate column name'): a file lock beside the database
    makes the first open of a store happen once."""
    check_uri(uri)
    for noisy in ("mlflow.store.db.utils", "alembic"):  # schema set-up chatter on stderr
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a line per HTTP retry to a server that is down: the sweep's summary says it once
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    from mlflow import MlflowClient

    path = sqlite_path(uri)
    lock = FileLock(str(path) + ".lock") if path is not None else contextlib.nullcontext()
    try:
        with lock:  # the store's first query creates and migrates its schema
            new = path is not None and not path.exists()
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as error:  # noqa: BLE001 (MLflow's errors vary by store; one line)
        raise TrackingError(f"tracking.uri: cannot open store {strip_credentials(uri)}: "
                            f"{_first_line(error)}") from None
    if new:  # a misspelt tracking.uri would otherwise start a new notebook unnoticed
        print(f"[mlflow] created a new store {path.resolve()} (tracking.uri={uri})",
              file=sys.stderr)
    return client


def open_existing_store(uri: str) -> MlflowClient:
    """open_store for readers (report, reproduce): a sqlite store that is not there is an
    error, not a new empty store."""
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise TrackingError(f"no MLflow store at {strip_credentials(uri)}")
    return open_store(uri)


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


