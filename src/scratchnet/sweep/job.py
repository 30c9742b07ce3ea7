"""One job of a sweep, in a launcher's worker process.

A job whose config already has a result in the experiment is skipped (answered from that
run). Otherwise it runs in the worker's *job process*, a child forked from the worker and
reused for its later jobs, so that a job that kills its process (os._exit, a segfault, the
OOM killer) is recorded FAILED alone, instead of breaking the worker pool and with it every
other job of the sweep. A daemonic worker (Dask's, by default) may not have children: there
the job runs in the worker itself, and a job that kills it is Dask's to retry or report.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import multiprocessing
import signal
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from .. import tracking
from ..config import Config, config_hash, flatten
from .progress import PROGRESS_FILE, append_progress
from .search import StudyRef, TrialReporter

SWEEP_FILE = "sweep.json"  # written by the callback as workers start: parent run id, flags


def run_job(config: Config, overrides: list[str], sweep_dir: str,
            trial: int | None = None) -> float:
    """Run one job; its objective for sweepers: true_mse, inf if it diverged, nan if it
    crashed. Errors are recorded in the progress file, not raised, so one bad job does not
    abort the sweep; the callback reports crashed jobs at the end. ``trial``: the number of
    the Optuna trial this job is (search=optuna), which it reports to and tells."""
    progress = Path(sweep_dir) / PROGRESS_FILE
    try:
        preload()
        study = None if trial is None else (StudyRef.read(Path(sweep_dir)), trial)
        info = sweep_info(Path(sweep_dir))
        previous = info["results"].get(config_hash(config))
        if previous is not None:  # recorded before the sweep started: reused, not retrained
            objective = previous["true_mse"]
            objective = math.inf if objective is None else objective  # it diverged
            if study is not None:
                TrialReporter(*study).tell(objective, previous["run_id"], pruned=False)
    except Exception as error:  # noqa: BLE001 (recorded as this job's failure)
        append_progress(progress, "failed", overrides, None, tracking.describe_error(error))
        return math.nan
    if previous is not None:
        append_progress(progress, "skipped", overrides, previous["run_id"])
        return objective
    job = (config, overrides, info["parent_run_id"], info["experiment_id"], progress, study)
    if multiprocessing.current_process().daemon:
        return train_and_record(*job)
    objective, exitcode = job_process().run(job)
    if exitcode is None:
        return objective
    reason = f"job process died with exit code {exitcode}"
    record_death(info, config, reason)
    append_progress(progress, "failed", overrides, None, reason)
    return math.nan


def preload() -> None:
    """Import what a job needs (MLflow alone takes over a second) in the worker, before it
    waits for the sweep file and forks its job process: the import overlaps the launching
    process's creation of the store, and the job process starts with it done."""
    import mlflow

    from .. import run  # noqa: F401 (matplotlib, the network)

    with contextlib.suppress(ImportError):  # MLflow's sqlite store: half a second to import
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


_sweep_infos: dict[Path, dict] = {}  # sweep folder -> its sweep file, read by this worker


def sweep_info(sweep_dir: Path) -> dict:
    """The sweep file of this sweep (written once, whole, by the launching process), read
    once per worker: a 5,400-run sweep's holds thousands of recorded results."""
    if sweep_dir not in _sweep_infos:
        _sweep_infos[sweep_dir] = wait_for_sweep_file(sweep_dir / SWEEP_FILE)
    return _sweep_infos[sweep_dir]


def wait_for_sweep_file(path: Path, seconds: float = 600.0) -> dict:
    """The sweep file's contents, once the launching process has written it (it opens the
    store and makes the parent run while the workers start): the parent run's id, the
    results recorded before the sweep."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: not written within {seconds:g} s")
        time.sleep(0.02)
    info = json.loads(path.read_text())
    if "error" in info:
        raise RuntimeError(f"no parent run: {info['error']}")
    return info


def train_and_record(config: Config, overrides: list[str], parent_run_id: str,
                     experiment_id: str, progress: Path,
                     study: tuple[StudyRef, int] | None = None) -> float:
    """The job itself: one recorded run under the sweep's parent; its objective. In a search,
    its loss goes to its trial every tracking.log_every epochs and the pruner may stop it."""
    from ..run import run

    try:
        reporter = TrialReporter(*study) if study is not None else None
        with threadpool_limits(limits=1):  # one BLAS thread per worker: no oversubscription
            outcome = run(config, parent_run_id=parent_run_id, overrides=overrides,
                          experiment_id=experiment_id,
                          should_stop=reporter.should_stop if reporter and reporter.prunes
                          else None)
        objective = math.inf if outcome.failure else outcome.result.true_mse
        if reporter is not None:
            reporter.tell(objective, outcome.run_id, pruned=outcome.pruned_at is not None)
    except Exception as error:  # noqa: BLE001 (recorded; the sweep goes on)
        append_progress(progress, "failed", overrides, None, tracking.describe_error(error))
        return math.nan
    status = ("pruned" if outcome.pruned_at is not None
              else "diverged" if outcome.failure else "done")
    append_progress(progress, status, overrides, outcome.run_id)
    return objective


class JobProcess:
    """A child forked from the worker that runs the worker's jobs one after another: forked
    once and reused while it lives (a fork per job would pay the copy-on-write of the
    worker's heap every time). A job that kills it fails alone; the next job gets a new one."""

    def __init__(self) -> None:
        # Python's documented recipe before a fork: the worker's objects so far are left out
        # of the child's garbage collections, which would otherwise walk (and so copy, page by
        # page) the whole inherited heap, MLflow's and Hydra's modules included.
        gc.freeze()
        context = multiprocessing.get_context("fork")
        self.connection, child_end = context.Pipe()
        # daemonic: ended with the worker, which would otherwise wait for it at exit
        self.process = context.Process(target=serve_jobs, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()

    def run(self, job: tuple) -> tuple[float, int | None]:
        """(objective, None) for a job that ran, (nan, exit code) if the process died in it."""
        try:
            self.connection.send(job)
            return self.connection.recv(), None
        except KeyboardInterrupt:
            self.process.join(timeout=10)  # let the job record its run as KILLED
            raise
        except (EOFError, OSError):  # the process died before answering
            self.process.join()
            return math.nan, self.process.exitcode


_job_process: JobProcess | None = None  # this worker's


def job_process() -> JobProcess:
    """This worker's live job process, forked anew when there is none."""
    global _job_process
    if _job_process is None or not _job_process.process.is_alive():
        _job_process = JobProcess()
    return _job_process


def serve_jobs(connection) -> None:
    """Body of the job process: run each job the worker sends; answer its objective."""
    die_with_parent()
    # SIGTERM ends this process, whatever handler the worker has (submitit's ignores it):
    # multiprocessing ends a daemonic child with it when the worker exits, then waits for it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        while True:
            try:
                job = connection.recv()
            except EOFError:  # the worker closed its end: no more jobs
                return
            connection.send(train_and_record(*job))
    except KeyboardInterrupt:  # Ctrl-C: a job in flight recorded its run KILLED (run.run)
        with contextlib.suppress(OSError):
            connection.send(math.nan)


def die_with_parent() -> None:
    """Linux: SIGKILL this job process if its worker dies, so no orphan trains on."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def record_death(info: dict, config: Config, reason: str) -> None:
    """Mark the RUNNING run the dead job process left under this sweep as FAILED."""
    client = tracking.open_store(config.tracking.uri)
    for run in tracking.runs_with_tag(client, info["experiment_id"], tracking.TAG_CONFIG_HASH,
                                      config_hash(config), statuses=("RUNNING",)):
        if run.data.tags.get(tracking.TAG_PARENT) == info["parent_run_id"]:
            tracking.end_run(client, run.info.run_id, "FAILED", reason, flatten(config))
