"""The Hydra callback around every multirun (``hydra.callbacks.sweep`` in conf/config.yaml),
in the launching process: every job's values checked before anything is written, the store
created once and a parent run made (or resumed) while the launcher starts its workers and
before any job trains, the progress line while they run, and the comparison report at the end."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .. import tracking
from ..cli import one_line
from ..config import overrides_config, to_config
from ..tracking import ui
from . import cluster, race, search
from .grid import job_grid, sweep_axes, sweep_key, sweep_name, value_probes
from .job import SWEEP_FILE
from .progress import PROGRESS_FILE, Progress, crash_message


class SweepFailed(RuntimeError):
    """Some jobs crashed (not diverged); the message names them."""


class SweepCallback(Callback):
    def __init__(self, fresh: bool = False, report_dir: str = "reports") -> None:
        self.fresh = bool(fresh)
        self.report_dir = report_dir
        self.progress: Progress | None = None
        self.failure: Exception | None = None  # why prepare() could make no parent run
        self.study_tags: dict[str, str] = {}  # a search's parent names its Optuna study

    def __getstate__(self) -> dict:
        # Hydra's launchers pickle the callbacks into every job; the store client and the
        # progress thread stay in the launching process.
        return {"fresh": self.fresh, "report_dir": self.report_dir, "progress": None}

    # Hydra turns an exception raised by a callback into a warning and carries on, so
    # errors here end the process with one line via SystemExit, which Hydra lets through.
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self.start(config)
        except Exception as error:  # noqa: BLE001 (one line, then exit)
            sys.exit(f"error: {one_line(error)}")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self.end()
        except Exception as error:  # noqa: BLE001 (one line, then exit)
            sys.exit(f"error: {one_line(error)}")

    def start(self, config: DictConfig) -> None:
        hydra_cfg = config.hydra
        base = to_config(config)
        jobs = job_grid(hydra_cfg)
        raced = race.plan(hydra_cfg.sweeper, list(hydra_cfg.overrides.task)) if race.is_race(
            hydra_cfg.sweeper) else None  # search=race: its keys checked, its full grid
        groups = set(hydra_cfg.runtime.choices)  # search=race: a group, not a value
        candidates = jobs or (race.all_jobs(raced) if raced else [])
        for job in value_probes(candidates) if candidates else []:  # every value checked
            values = [o for o in job if o.partition("=")[0].lstrip("+~") not in groups]
            to_config(overrides_config(config, values))  # before anything is written
        if cluster.is_dask_launcher(hydra_cfg.launcher):  # a cluster to run on, or stop here
            cluster.start(hydra_cfg.launcher.scheduler_address, hydra_cfg.launcher.n_jobs)
        tracking.check_uri(base.tracking.uri)  # a store that cannot work stops the sweep here
        key = sweep_key(base, hydra_cfg)
        if search.is_search(hydra_cfg.sweeper):  # its space, pruner and storage, checked
            self.study_tags = {
                search.TAG_STUDY: search.study_name(hydra_cfg.sweeper, key),
                search.TAG_STORAGE: tracking.redact(search.check(config, base))}
        self.base = base
        total = (len(jobs) if jobs is not None else raced.full_grid if raced
                 else int(hydra_cfg.sweeper.get("n_trials") or 0))
        sweep_dir = Path(str(hydra_cfg.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # The store is opened (created and migrated once) and the parent run made in the
        # background, while the launcher starts its workers, which import what jobs need
        # meanwhile; each job waits for the sweep file this writes (sweep.job).
        identity = (key, sweep_axes(hydra_cfg), total)
        print(grid_line(identity[1], total, jobs is not None, sweep_dir, raced is not None),
              file=sys.stderr)
        self.preparing = threading.Thread(target=self.prepare, name="sweep-parent",
                                          args=(sweep_dir / SWEEP_FILE, *identity), daemon=True)
        self.preparing.start()
        self.progress = Progress(sweep_dir / PROGRESS_FILE, total, at_most=raced is not None)
        self.progress.start()
        global _active
        _active = self  # from here Ctrl-C ends the parent KILLED

    def prepare(self, sweep_file: Path, key: str, axes: dict[str, str], total: int) -> None:
        """Open the store, resume or create the parent run, then write the sweep file: the
        parent's id and the results already recorded (config hash -> run, which the jobs
        reuse instead of training again; none with fresh=true), or the error that stopped
        this (jobs then fail with it)."""
        try:
            uri = self.base.tracking.uri
            self.client = tracking.open_store(uri)
            self.exp_id = tracking.experiment_id(self.client, self.base.tracking.experiment, uri)
            self.parent_id = self.resume_or_create_parent(key, axes, total)
            results = {} if self.fresh else tracking.recorded_results(
                self.client, self.exp_id, self.parent_id)
            info = {"parent_run_id": self.parent_id, "experiment_id": self.exp_id,
                    "total": total, "results": results}
        except Exception as error:  # noqa: BLE001 (reported by end(), and to every job)
            self.failure = error
            info = {"error": tracking.describe_error(error)}
        partial = sweep_file.with_name(sweep_file.name + ".partial")
        partial.write_text(json.dumps(info))
        partial.replace(sweep_file)  # whole or not at all, for the jobs that wait for it

    def resume_or_create_parent(self, key: str, axes: dict[str, str], total: int) -> str:
        client, exp_id = self.client, self.exp_id
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
        tags = {**tracking.provenance(), **self.study_tags, tracking.TAG_SWEEP_KEY: key,
                "scratchnet.sweep_size": str(total)}
        return tracking.start_run(client, exp_id, sweep_name(axes), tags,
                                  {"sweep.grid": json.dumps(axes), "sweep.size": total})

    def end(self) -> None:
        from ..report import analyse, write_report  # pandas, matplotlib: loaded at the end

        cluster.stop()  # hydra/launcher=dask: the jobs are done, a local cluster ends here
        summary = self.progress.stop()
        self.preparing.join()
        if self.failure is not None:  # no parent run: the jobs did not run
            raise self.failure
        crashed = summary.jobs_with("failed")
        reused = [r["run_id"] for r in summary.records if r["status"] == "skipped" and r["run_id"]]
        try:
            try:
                tracking.record_reused_runs(self.client, self.parent_id, reused)
                report = analyse(self.client, self.exp_id, self.parent_id)
                registered = self.register(report)
                write_report(self.client, report, Path(self.report_dir))
                print(report.console_text())
                print(f"Report: {report.folder}/report.html (also logged to the parent run "
                      "under report/)")
                tracking.record_outcome(self.client, self.parent_id, *report.outcome())
            finally:
                tracking.end_run(self.client, self.parent_id, "FAILED" if crashed else "FINISHED",
                                 f"{len(crashed)} jobs crashed" if crashed else None)
        except Exception as error:  # e.g. the tracking server went away mid-sweep
            if not crashed:
                raise
            raise SweepFailed(crash_message(summary) + "; no report: "
                              + tracking.describe_error(error)) from None
        self.print_where_to_look()
        for line, run_id in zip(report.best_run_lines(), (w.run_id for w in report.winners())):
            print(f"{line}\n  reproduce it: {reproduce_command(self.base.tracking.uri, run_id)}")
        for line in registered:
            print(line)
        if crashed:
            raise SweepFailed(crash_message(summary))

    def register(self, report) -> list[str]:
        """Each condition's winner as a version of tracking.registered_model (null: none),
        linked from the parent run and the report; what was done, a line per winner. A
        registry that refuses leaves the sweep and its report complete, said in one line."""
        from .registry import register_winners

        name = self.base.tracking.registered_model
        if name is None:
            return []
        try:
            tags, lines = register_winners(self.client, self.base.tracking.uri, self.exp_id,
                                           report, name)
            tracking.log_batch(self.client, self.parent_id, tags=tags)
        except Exception as error:  # noqa: BLE001 (the registry is optional: one line)
            print(f"[mlflow] registering the best runs as '{name}' failed: "
                  f"{tracking.describe_error(error)}; the sweep and its report are complete",
                  file=sys.stderr)
            return []
        report.models = report.model_lines(tags)
        return lines

    def print_where_to_look(self) -> None:
        print(f"Sweep parent run: {self.parent_id}  (experiment '{self.base.tracking.experiment}')")
        print(*ui.sweep_lines(self.base.tracking.uri, self.exp_id, self.parent_id), sep="\n")


def reproduce_command(uri: str, run_id: str) -> str:
    """The command that reruns a run and checks its loss history bit for bit."""
    store = "" if uri == tracking.DEFAULT_URI else f" --tracking-uri {tracking.redact(uri)}"
    return f"python -m scratchnet.reproduce {run_id}{store}"


def grid_line(axes: dict[str, str], total: int, is_grid: bool, sweep_dir: Path,
              is_race: bool = False) -> str:
    """What a sweep will run, in one line: '[sweep] 54 runs: model.hidden_size=8,16,32 x
    seed=1,2,3 ... (Hydra's folders: multirun/...)', for a race '[sweep] a race of at most
    360 runs: ...', for a search '[sweep] 20 trials of a search over train.lr=...'."""
    values = [f"{k}={v}" for k, v in axes.items()]
    what = (f"{total} runs: " + " x ".join(values) if is_grid
            else f"a race of at most {total} runs: " + " x ".join(values) if is_race
            else f"{total} trials of a search over " + ", ".join(values))
    return f"[sweep] {what} (Hydra's folders: {sweep_dir})"


_active: SweepCallback | None = None  # the sweep this process is running, for Ctrl-C


def interrupt_active_sweep() -> None:
    """After Ctrl-C: runs still RUNNING under the sweep's parent, and the parent, KILLED.
    (Jobs record their own run KILLED when they get the signal; this catches the rest.)"""
    sweep = _active
    if sweep is None:
        return
    if sweep.progress is not None:
        sweep.progress.stop()
    cluster.stop()
    sweep.preparing.join()
    if sweep.failure is not None:  # no parent run was made
        return
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
