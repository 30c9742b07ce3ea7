"""python -m scratchnet.report (or scratchnet-report): rebuild the comparison report of a
sweep recorded in MLflow (by default the latest sweep in ./mlflow.db) in the sweep's own
folder under --out, log it to the sweep's parent run, and print the sweep's address in the
MLflow UI."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import tracking
from ..cli import exit_on, set_mlflow_defaults
from ..tracking import ui
from . import build_report, report_folder


class ReportError(RuntimeError):
    """Nothing to report on: unknown store, experiment or parent run."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scratchnet-report", description=__doc__)
    parser.add_argument("--tracking-uri", default=tracking.DEFAULT_URI,
                        help="the MLflow store the sweep is in: a sqlite:/// file or an "
                             "http(s):// tracking server (default: %(default)s)")
    parser.add_argument("--experiment", default="scratchnet",
                        help="the MLflow experiment the sweep is in (default: %(default)s)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--parent-run-id", help="the id of the sweep's parent run (default: the "
                       "latest sweep in the experiment)")
    which.add_argument("--sweep", metavar="NAME",
                       help="the latest sweep whose name or report folder contains NAME")
    parser.add_argument("--out", default="reports", type=Path,
                        help="folder under which each sweep's report gets its own folder "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    set_mlflow_defaults()
    with exit_on(ReportError, tracking.TrackingError):
        client = tracking.open_existing_store(args.tracking_uri)
        exp_id = experiment_id(client, args.experiment, args.tracking_uri)
        if args.sweep is not None:
            parent_id = sweep_named(client, exp_id, args.sweep)
        else:
            parent_id = args.parent_run_id or latest_sweep(client, exp_id)
        check_parent(client, exp_id, parent_id)
        report = build_report(client, exp_id, parent_id, args.out)
    print(report.console_text())
    print(f"Report written to {report.folder}/ (open report.html) and logged to run "
          f"{parent_id} under report/")
    print(*ui.sweep_lines(args.tracking_uri, exp_id, parent_id), sep="\n")


def experiment_id(client, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise ReportError(f"--experiment: no experiment named {name!r} in {uri}")
    return experiment.experiment_id


def latest_sweep(client, exp_id: str) -> str:
    runs = tracking.with_retry(client.search_runs, [exp_id],
                               f"tags.`{tracking.TAG_SWEEP_KEY}` LIKE '%'", max_results=1,
                               order_by=["attributes.start_time DESC"])
    if not runs:
        raise ReportError(f"experiment {exp_id} has no sweep (parent) runs")
    return runs[0].info.run_id


def sweep_named(client, exp_id: str, name: str) -> str:
    """The latest sweep whose parent run name or report folder name contains ``name``."""
    runs = tracking.with_retry(client.search_runs, [exp_id],
                               f"tags.`{tracking.TAG_SWEEP_KEY}` LIKE '%'", max_results=1000,
                               order_by=["attributes.start_time DESC"])
    for run in runs:
        run_name = run.info.run_name or ""
        folder = report_folder(run_name, run.info.run_id, run.data.tags.get(tracking.TAG_STUDY))
        if name in run_name or name in folder:
            return run.info.run_id
    raise ReportError(f"--sweep: no sweep named like {name!r} in experiment {exp_id}")


def check_parent(client, exp_id: str, run_id: str) -> None:
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 (MLflow raises its own error for an unknown id)
        raise ReportError(f"--parent-run-id: no run {run_id!r} in this store") from None
    if run.info.experiment_id != exp_id:
        raise ReportError(f"--parent-run-id: run {run_id} is not in experiment {exp_id}")


if __name__ == "__main__":
    main()
