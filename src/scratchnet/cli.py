"""What every command-line entry point shares: the process's MLflow settings, and errors
ended with one line on stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

# MLflow's own variables, as defaults: set any of them in the environment to choose otherwise.
MLFLOW_DEFAULTS = {
    # our runs send nothing over the network
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # MLflow draws a progress bar on stderr for every artifact download; ours is one line
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # with a server, MLflow prints two "View run/experiment at" links per run; we print ours
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # A tracking server that has gone away fails a job within about 10 s (3 retries, backoff
    # 0 + 2 + 4 s plus jitter; a server that hangs: 4 x 10 s), not after the minutes of
    # MLflow's defaults (7 retries, backoff factor 2, 120 s timeout).
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # A sqlite store's connections are opened per use, never pooled: a sweep job's process
    # is forked from its worker, and the two must not share a sqlite connection.
    "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
}


def set_mlflow_defaults() -> None:
    """Called first by every entry point; worker processes inherit the environment."""
    for name, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)


def one_line(error: BaseException) -> str:
    """The first line of an error and of its cause, e.g. Hydra's composition errors."""
    def first(e: BaseException) -> str:
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        return lines[0].strip() if lines else type(e).__name__

    text = first(error)
    override = getattr(error, "override", None)  # Hydra's OverrideParseException
    if override:
        text = f"malformed override {override!r}: {text}"
    cause = error.__cause__
    if cause is not None and first(cause) not in text:
        text += " " + first(cause)
        key = getattr(cause, "full_key", None)
        if key and key not in text:
            text = f"{key}: {text}"
    return text


@contextlib.contextmanager
def exit_on(*errors: type[BaseException], code: int = 1) -> Iterator[None]:
    """Any of ``errors`` ends the process with 'error: <one line>' on stderr and ``code``."""
    try:
        yield
    except errors as error:
        message = f"error: {one_line(error)}"
        if code == 1:
            sys.exit(message)  # SystemExit carries the line: callers and tests can read it
        print(message, file=sys.stderr)
        sys.exit(code)
