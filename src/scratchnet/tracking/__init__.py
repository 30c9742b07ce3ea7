"""Everything MLflow, through ``MlflowClient`` with explicit run ids (no active-run state
in the process: joblib reuses worker processes between jobs).

- ``store``: check a tracking URI, open a store (created and migrated once, under a file
  lock), the experiment, retries of sqlite's transient locks, one-line error text.
- ``runs``: create, record and close runs; find runs by tag; the runs a sweep reused.
- ``provenance``: where the code came from, and values made safe to record.
- ``ui``: the address in the MLflow UI of what a command just recorded.
"""

from .provenance import dumps_overrides, provenance, redact, strip_credentials
from .runs import (
    TAG_CONFIG_HASH,
    TAG_FAILURE,
    TAG_OVERRIDES,
    TAG_PARENT,
    TAG_PRUNED,
    TAG_STUDY,
    TAG_SWEEP_KEY,
    answering_runs,
    end_run,
    history_steps,
    is_result,
    log_batch,
    rate_steps,
    record_outcome,
    record_reused_runs,
    recorded_results,
    reused_runs,
    run_metrics,
    runs_with_tag,
    start_run,
)
from .store import (
    DEFAULT_URI,
    TrackingError,
    check_uri,
    describe_error,
    experiment_id,
    open_existing_store,
    open_store,
    sqlite_path,
    sqlite_under,
    with_retry,
)

__all__ = [
    "DEFAULT_URI",
    "TAG_CONFIG_HASH", "TAG_FAILURE", "TAG_OVERRIDES", "TAG_PARENT", "TAG_PRUNED", "TAG_STUDY",
    "TAG_SWEEP_KEY",
    "TrackingError", "answering_runs", "check_uri", "describe_error", "dumps_overrides", "end_run",
    "experiment_id", "history_steps", "is_result", "log_batch",
    "open_existing_store", "open_store", "provenance", "rate_steps", "record_outcome", "record_reused_runs",
    "recorded_results",
    "redact", "reused_runs", "run_metrics", "runs_with_tag", "sqlite_path", "sqlite_under",
    "start_run", "strip_credentials", "with_retry",
]
