"""A Hydra multirun as one MLflow sweep: a parent run made before the jobs fan out,
resume by config hash, a progress line, and the comparison report at the end.

The callback runs in the launching process; ``run_job`` runs in each joblib worker.
They talk through two files in the sweep folder: ``sweep.json`` (parent run id, flags),
written before fan-out, and ``progress.jsonl``, one line appended per finished job.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from . import cluster, tracking
from .config import Config, config_hash
from .configure import one_line, overrides_config, to_config

SWEEP_FILE, PROGRESS_FILE = "sweep.json", "progress.jsonl"


class SweepFailed(RuntimeError):
    """Some jobs crashed (not diverged); the message names them."""


# Hydra's basic sweeper and ours (hydra_plugins/scratchnet_sweeper), which launches the
# same jobs: the first is the one sweep identities were made with.
GRID_SWEEPERS = ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                 "hydra_plugins.scratchnet_sweeper.GridSweeper")


def job_grid(hydra_cfg: DictConfig) -> list[list[str]] | None:
    """The override list of every job a basic-sweeper multirun will launch, or None when
    another sweeper (Optuna) chooses the jobs as it goes."""
    if str(hydra_cfg.sweeper.get("_target_")) not in GRID_SWEEPERS:
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{k}={v}" for k, v in (hydra_cfg.sweeper.params or {}).items()]
    arguments += list(hydra_cfg.overrides.task)
    overrides = OverridesParser.create().parse_overrides(arguments)
    return BasicSweeper.split_arguments(overrides, None)[0]


def sweep_axes(hydra_cfg: DictConfig) -> dict[str, str]:
    """Swept key -> its sweep expression, command line over conf/ (as Hydra merges them)."""
    axes = {str(k): str(v) for k, v in (hydra_cfg.sweeper.params or {}).items()}
    for override in hydra_cfg.overrides.task:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        is_sweep = "," in value or value.startswith(("range(", "choice(", "interval(", "tag(", "glob("))
        if is_sweep or key in axes:  # a single value on the command line pins that axis
            axes[key] = value
    return axes


def sweep_key(base: Config, hydra_cfg: DictConfig) -> str:
    """Identity of a sweep command: the base config (tracking excluded), the sweeper and its
    axes. The same command run again has the same key, so it resumes the same parent."""
    axes = {k: v for k, v in sweep_axes(hydra_cfg).items() if not k.startswith("tracking.")}
    sweeper = str(hydra_cfg.sweeper.get("_target_"))
    identity = {"base": config_hash(base),
                "sweeper": GRID_SWEEPERS[0] if sweeper in GRID_SWEEPERS else sweeper,
                "axes": axes, "n_trials": hydra_cfg.sweeper.get("n_trials")}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def sweep_name(axes: dict[str, str]) -> str:
    return ("sweep " + " ".join(f"{k.split('.')[-1]}={v}" for k, v in axes.items()))[:240]


class SweepCallback(Callback):
    def __init__(self, fresh: bool = False, report_dir: str = "reports") -> None:
        self.fresh = bool(fresh)
        self.report_dir = report_dir
        self._progress: Progress | None = None

    def __getstate__(self) -> dict:
        # Hydra's joblib launcher pickles the callbacks into every job; the store client and
        # the progress thread stay in the launching process.
        return {"fresh": self.fresh, "report_dir": self.report_dir, "_progress": None}

    # Hydra turns an exception raised by a callback into a warning and carries on, so
    # errors here end the process with one line via SystemExit, which Hydra lets through.
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except Exception as error:
            sys.exit(f"error: {one_line(error)}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._end()
        except Exception as error:
            sys.exit(f"error: {one_line(error)}")

    def _start(self, config: DictConfig) -> None:
        hydra_cfg = config.hydra
        base = to_config(config)
        # Workers start importing now, on the core this process leaves idle while it checks
        # the jobs; they write nothing, so a sweep stopped by a check leaves nothing behind.
        workers = warm_up_workers(hydra_cfg.launcher)
        jobs = job_grid(hydra_cfg)
        for job in jobs or []:  # every job's values checked before anything is written
            to_config(overrides_config(config, job))
        if cluster.is_dask_launcher(hydra_cfg.launcher):  # a cluster to run on, or stop here
            cluster.start(hydra_cfg.launcher.scheduler_address, hydra_cfg.launcher.n_jobs)
        tracking.check_uri(base.tracking.uri)  # a store that cannot work fails before anything
        client = tracking.open_store(base.tracking.uri)  # created and migrated once, here
        exp_id = tracking.experiment_id(client, base.tracking.experiment, base.tracking.uri)
        key, axes = sweep_key(base, hydra_cfg), sweep_axes(hydra_cfg)
        total = len(jobs) if jobs is not None else int(hydra_cfg.sweeper.get("n_trials") or 0)
        parent_id = self._resume_or_create_parent(client, exp_id, key, axes, total)
        sweep_dir = Path(str(hydra_cfg.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(
            {"parent_run_id": parent_id, "experiment_id": exp_id, "fresh": self.fresh,
             "total": total}))
        self.client, self.exp_id, self.parent_id, self.base = client, exp_id, parent_id, base
        self._progress = Progress(sweep_dir / PROGRESS_FILE, total)
        self._progress.start()
        global _active
        _active = self  # from here Ctrl-C ends the parent KILLED
        if workers is not None:
            workers.join()  # warm: the launcher's jobs go to these workers

    def _resume_or_create_parent(self, client, exp_id: str, key: str, axes: dict[str, str],
                                 total: int) -> str:
        parents = [] if self.fresh else tracking.runs_with_tag(
            client, exp_id, tracking.TAG_SWEEP_KEY, key)
        if parents:
            parent_id = parents[0].info.run_id
            killed = mark_stale_children_killed(client, exp_id, parent_id)
            tracking.with_retry(client.update_run, parent_id, status="RUNNING")
            print(f"[sweep] resuming parent run {parent_id}"
                  + (f"; marked {killed} stale RUNNING runs KILLED" if killed else ""),
                  file=sys.stderr)
            return parent_id
        tags = {**tracking.provenance(), tracking.TAG_SWEEP_KEY: key,
                "scratchnet.sweep_size": str(total)}
        return tracking.start_run(client, exp_id, sweep_name(axes), tags,
                                  {"sweep.grid": json.dumps(axes), "sweep.size": total})

    def _end(self) -> None:
        from .report import build_report  # pandas and matplotlib: loaded once, at the end

        cluster.stop()  # hydra/launcher=dask: the jobs are done, a local cluster ends here
        progress = self._progress
        progress.stop()
        summary = progress.read()
        if progress.shown != len(summary.records):  # the final count, unless just logged
            print(summary.line(time.monotonic() - progress.started), file=sys.stderr)
        crashed = summary.jobs_with("failed")
        reused = [r["run_id"] for r in summary.records if r["status"] == "skipped"]
        try:
            try:
                tracking.record_reused_runs(self.client, self.parent_id, reused)
                report = build_report(self.client, self.exp_id, self.parent_id,
                                      Path(self.report_dir))
                print(report.console_text())
            finally:
                tracking.end_run(self.client, self.parent_id, "FAILED" if crashed else "FINISHED",
                                 f"{len(crashed)} jobs crashed" if crashed else None)
        except Exception as error:  # e.g. the tracking server went away mid-sweep
            if not crashed:
                raise
            raise SweepFailed(crash_message(summary) + "; no report: "
                              + tracking.describe_error(error)) from None
        uri = self.base.tracking.uri
        print(f"Sweep parent run: {self.parent_id}  (experiment '{self.base.tracking.experiment}')")
        print(f"Compare it in the MLflow UI: mlflow ui --backend-store-uri {uri}"
              if uri.startswith("sqlite") else f"Compare it in the MLflow UI at {uri}")
        if crashed:
            raise SweepFailed(crash_message(summary))


# Hydra's joblib launcher and ours (hydra/launcher=local), which runs the same loky workers
LOCAL_LAUNCHER = "hydra_plugins.scratchnet_joblib_launcher.LocalLauncher"
JOBLIB_LAUNCHERS = ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                    LOCAL_LAUNCHER)


def warm_up_workers(launcher_cfg: DictConfig) -> threading.Thread | None:
    """Start the joblib launcher's workers now, in a background thread, each importing what
    jobs need (about 3 s of CPU) while this process creates the store and the parent run. On
    ``hydra/launcher=local`` they are forks of one server that does those imports once.

    Hydra's joblib launcher would start them only when it dispatches the first job. Its
    Parallel call then reuses these workers: joblib keeps one reusable loky executor per
    process and reuses it for a call configured the same way, so the same keys are passed.
    """
    if str(launcher_cfg.get("_target_")) not in JOBLIB_LAUNCHERS:
        return None
    from joblib import Parallel, delayed, effective_n_jobs
    from omegaconf import OmegaConf

    from hydra_plugins.scratchnet_joblib_launcher import (
        fork_workers_from_warm_server,
        loky_parallel_kwargs,
    )

    settings = OmegaConf.to_container(launcher_cfg, resolve=True)
    if settings.pop("_target_") == LOCAL_LAUNCHER:
        fork_workers_from_warm_server()
    parallel_kwargs = loky_parallel_kwargs(settings)  # as the launcher makes them
    tasks = effective_n_jobs(parallel_kwargs["n_jobs"])

    def warm_up() -> None:
        with contextlib.suppress(Exception):  # the jobs themselves report any real problem
            Parallel(**parallel_kwargs)(delayed(prepare_worker)() for _ in range(tasks))

    thread = threading.Thread(target=warm_up, name="warm-up-workers", daemon=True)
    thread.start()
    return thread


def crash_message(summary: Summary) -> str:
    """'3 of 8 jobs crashed: <reason>: [job] [job]; <reason>: [job]', jobs grouped by reason."""
    by_reason: dict[str, list[str]] = {}
    for record in summary.records:
        if record["status"] == "failed":
            job = "[" + " ".join(record["overrides"]) + "]"
            by_reason.setdefault(record.get("error") or "unknown error", []).append(job)
    return (f"{sum(map(len, by_reason.values()))} of {summary.total} jobs crashed: "
            + "; ".join(f"{reason}: {' '.join(jobs)}" for reason, jobs in by_reason.items()))


_active: SweepCallback | None = None  # the sweep this process is running, for Ctrl-C


def interrupt_active_sweep() -> None:
    """After Ctrl-C: runs still RUNNING under the sweep's parent, and the parent, KILLED.
    (Jobs record their own run KILLED when they get the signal; this catches the rest.)"""
    sweep = _active
    if sweep is None:
        return
    if sweep._progress is not None:
        sweep._progress.stop()
    cluster.stop()
    mark_stale_children_killed(sweep.client, sweep.exp_id, sweep.parent_id, "interrupted (SIGINT)")
    tracking.end_run(sweep.client, sweep.parent_id, "KILLED", "interrupted (SIGINT)")


def mark_stale_children_killed(client, exp_id: str, parent_id: str,
                               reason: str = "left RUNNING by an interrupted sweep") -> int:
    """Runs a killed sweep left RUNNING under this parent: mark them KILLED."""
    stale = tracking.runs_with_tag(client, exp_id, tracking.TAG_PARENT, parent_id,
                                   statuses=("RUNNING",))
    for run in stale:
        tracking.end_run(client, run.info.run_id, "KILLED", reason)
    return len(stale)


DAEMON_WORKER = ("this worker is a daemon process, which may not start the job's process: "
                 "start Dask workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")


def run_job(config: Config, overrides: list[str], sweep_dir: str) -> float:
    """One sweep job, in a joblib worker. Returns the objective (true_mse) for sweepers; a
    diverged run returns inf, a crashed one nan. Errors are recorded, not raised, so one bad
    job does not abort the sweep; the callback reports crashed jobs at the end.

    The job itself runs in the worker's job process (JobProcess), so a job that kills its
    process (os._exit, a segfault, the OOM killer) is recorded FAILED instead of breaking the
    worker pool, which would abort every other job of the sweep.
    """
    # Fork-safe store: MLflow's documented switch to a pool that keeps no sqlite connection
    # open, so a forked child never shares one with the worker.
    os.environ["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
    info = json.loads((Path(sweep_dir) / SWEEP_FILE).read_text())
    progress = Path(sweep_dir) / PROGRESS_FILE
    try:
        client = tracking.open_store(config.tracking.uri)  # the worker's, for the check below
        previous = None if info["fresh"] else tracking.finished_run(
            client, info["experiment_id"], config_hash(config))
    except Exception as error:
        append_progress(progress, "failed", overrides, None, tracking.describe_error(error))
        return math.nan
    if previous is not None:  # already done: answered here, no job process needed
        append_progress(progress, "skipped", overrides, previous.info.run_id)
        return previous.data.metrics.get("true_mse", math.inf)
    if multiprocessing.current_process().daemon:  # it could not start the job's process
        append_progress(progress, "failed", overrides, None, DAEMON_WORKER)
        return math.nan
    objective, exitcode = _job_process().run((config, overrides, info, progress))
    if exitcode is None:
        return objective
    reason = f"job process died with exit code {exitcode}"
    _record_death(client, info, config, reason)
    append_progress(progress, "failed", overrides, None, reason)
    return math.nan


class JobProcess:
    """A child forked from the worker that runs the worker's jobs one after another.

    Forked once and reused while it lives, rather than once per job: a fresh fork paid about
    0.15 s a job in copy-on-write page faults and cold caches (a 54-run sweep took 29.7 s
    forking per job, 25.0 s with the jobs run in the worker itself). A job that kills the process
    fails alone; the next job gets a new one. The child sees the worker as it was when
    forked: patch modules before the first job (see tests/fault_injection.py).
    """

    def __init__(self) -> None:
        prepare_worker()
        context = multiprocessing.get_context("fork")
        self.connection, child_end = context.Pipe()
        # daemonic: ended with the worker, which would otherwise wait for it at exit
        self.process = context.Process(target=_serve_jobs, args=(child_end,), daemon=True)
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


_job_process_of_worker: JobProcess | None = None


def _job_process() -> JobProcess:
    """This worker's live job process, forked anew when there is none."""
    global _job_process_of_worker
    if _job_process_of_worker is None or not _job_process_of_worker.process.is_alive():
        _job_process_of_worker = JobProcess()
    return _job_process_of_worker


@functools.cache
def prepare_worker() -> None:
    """Once per worker, what each job process would otherwise pay again: importing the
    pipeline (matplotlib, MLflow's artifact code), building the fit figure and matplotlib's
    text caches. Then the worker's heap is frozen out of the garbage collector (Python's
    documented recipe before fork): a collection in a job process would otherwise touch
    every inherited object and copy the whole heap page by page (~0.3 s a job)."""
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (the store's code, 0.7 s)

    from . import pipeline  # noqa: F401
    from .plots import warm_up

    warm_up()
    tracking.provenance()  # git commit and status: asked once, not by every job process
    gc.collect()
    gc.freeze()


def _serve_jobs(connection) -> None:
    """Body of the job process: run each job the worker sends; answer its objective."""
    _die_with_parent()
    # SIGTERM ends this process, whatever handler the worker has (submitit's ignores it):
    # multiprocessing ends a daemonic child with it when the worker exits, then waits for it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        while True:
            try:
                job = connection.recv()
            except EOFError:  # the worker closed its end: no more jobs
                return
            connection.send(_job(*job))
    except KeyboardInterrupt:  # Ctrl-C: a job in flight recorded its run KILLED (pipeline.run)
        with contextlib.suppress(OSError):
            connection.send(math.nan)


def _job(config: Config, overrides: list[str], info: dict, progress: Path) -> float:
    from threadpoolctl import threadpool_limits

    from .pipeline import run

    try:
        with threadpool_limits(limits=1):  # one BLAS thread per worker: no oversubscription
            outcome = run(config, parent_run_id=info["parent_run_id"], overrides=overrides)
    except Exception as error:
        append_progress(progress, "failed", overrides, None, tracking.describe_error(error))
        return math.nan
    status = "diverged" if outcome.failure else "done"
    append_progress(progress, status, overrides, outcome.run_id)
    return math.inf if outcome.failure else outcome.result.true_mse


def _die_with_parent() -> None:
    """Linux: SIGKILL this job process if its worker dies, so no orphan trains on."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _record_death(client, info: dict, config: Config, reason: str) -> None:
    """Mark the RUNNING run the dead job process left under this sweep as FAILED."""
    for run in tracking.runs_with_tag(client, info["experiment_id"], tracking.TAG_CONFIG_HASH,
                                      config_hash(config), statuses=("RUNNING",)):
        if run.data.tags.get(tracking.TAG_PARENT) == info["parent_run_id"]:
            tracking.end_run(client, run.info.run_id, "FAILED", reason)


def append_progress(path: Path, status: str, overrides: list[str], run_id: str | None,
                    error: str | None = None) -> None:
    line = json.dumps({"status": status, "overrides": list(overrides), "run_id": run_id,
                       "error": error}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:  # one write of a short line with O_APPEND: atomic between worker processes
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Summary:
    def __init__(self, records: list[dict], total: int):
        self.records, self.total = records, total

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r["status"] == status)

    def jobs_with(self, status: str) -> list[list[str]]:
        return [r["overrides"] for r in self.records if r["status"] == status]

    def line(self, elapsed: float) -> str:
        done = len(self.records)
        eta = "?"
        ran = done - self.count("skipped")
        if 0 < ran and done < self.total:
            eta = _clock(elapsed / ran * (self.total - done))
        elif done >= self.total:
            eta = "0:00"
        return (f"[sweep] {done}/{self.total or '?'} done, {self.count('skipped')} skipped, "
                f"{self.count('diverged')} diverged, {self.count('failed')} failed, "
                f"elapsed {_clock(elapsed)}, ETA {eta}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


class Progress:
    """A background thread that redraws one progress line from the jobs' progress file."""

    def __init__(self, path: Path, total: int, interval: float = 1.0):
        self.path, self.total, self.interval = path, total, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()
        self._tty = sys.stderr.isatty()
        self.shown = -1  # jobs counted in the last line logged to a file or pipe

    def read(self) -> Summary:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        return Summary([json.loads(line) for line in lines if line.strip()], self.total)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._tty:
            sys.stderr.write("\n")

    def _loop(self, log_every: float = 10.0) -> None:
        last_logged = -log_every
        while not self._stop.wait(self.interval):
            summary = self.read()
            now = time.monotonic()
            line = summary.line(now - self.started)
            if self._tty:  # redraw in place
                sys.stderr.write("\r" + line)
                sys.stderr.flush()
            elif len(summary.records) != self.shown and now - last_logged >= log_every:
                print(line, file=sys.stderr, flush=True)  # logs and pipes: a line now and then
                self.shown, last_logged = len(summary.records), now
