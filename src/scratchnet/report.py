"""The comparison report of a sweep: its runs read back from MLflow into pandas, one row
per setting aggregated over seeds, plots (drawn by plots.py), written to reports/ and logged
to the parent.

``python -m scratchnet.report`` (``scratchnet-report``) rebuilds it for any sweep.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import math
import multiprocessing
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from . import tracking

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SETTING = ["hidden_size", "lr", "noise"]  # what a row compares; seeds are aggregated
PARAMS = {"hidden_size": "model.hidden_size", "lr": "train.lr", "noise": "data.noise",
          "seed": "seed"}


class ReportError(RuntimeError):
    """Nothing to report on: unknown store, experiment or parent run."""


@dataclass
class Report:
    runs: pd.DataFrame  # one row per child run: setting, seed, status, metrics
    summary: pd.DataFrame  # one row per setting, sorted by mean true_mse
    figures: dict[str, Figure]  # file name -> figure; empty when drawn in a process pool
    parent_run_id: str

    @property
    def best(self) -> pd.Series | None:
        finished = self.summary.dropna(subset=["true_mse_mean"])
        return finished.iloc[0] if len(finished) else None

    def console_text(self) -> str:
        lines = [f"Sweep {self.parent_run_id}: {len(self.runs)} runs, "
                 f"{len(self.summary)} settings (mean and sd over seeds)", "",
                 self.summary.to_string(index=False, float_format=lambda v: f"{v:.6f}"), ""]
        best = self.best
        if best is not None:
            lines.append(f"Best setting: hidden_size={int(best.hidden_size)} lr={best.lr:g} "
                         f"noise={best.noise:g}  true_mse={best.true_mse_mean:.6f} "
                         f"(sd {best.true_mse_sd:.6f} over {int(best.finished)} finished seeds)")
        diverged = self.runs[self.runs.outcome == "diverged"]
        if len(diverged):
            lines.append(f"Diverged runs: {len(diverged)} ("
                         + ", ".join(sorted(set(diverged.setting_label))) + ")")
        return "\n".join(lines)


def sweep_runs(client, exp_id: str, parent_id: str, reused: list[str] = ()) -> pd.DataFrame:
    """The runs of a sweep, one row per run: the parent's children, and the runs it reused
    from earlier sweeps (skipped jobs). Read with MlflowClient.search_runs and tabulated
    here: mlflow.search_runs' DataFrame of every param, tag and metric costs more to build
    (~0.15 s at 540 runs) than the report's columns, and it sets the global tracking URI."""
    found = tracking.runs_with_tag(client, exp_id, tracking.TAG_PARENT, parent_id)
    for start in range(0, len(reused), 100):
        ids = ", ".join(f"'{run_id}'" for run_id in reused[start:start + 100])
        found += tracking.with_retry(client.search_runs, [exp_id],
                                     f"attributes.run_id IN ({ids})", max_results=100)
    raw = pd.DataFrame([run_record(run) for run in found])
    if raw.empty:
        return pd.DataFrame(columns=["run_id", *SETTING, "seed", "outcome", "final_mse",
                                     "true_mse", "setting_label"])
    raw = raw.drop_duplicates("run_id").reset_index(drop=True)
    runs = pd.DataFrame({"run_id": raw["run_id"]})
    for name in PARAMS:
        runs[name] = pd.to_numeric(raw[name])
    runs["outcome"] = np.select(
        [raw["status"] == "FINISHED", raw["failure"].str.startswith("diverged")],
        ["finished", "diverged"], default="crashed")
    for metric in ("final_mse", "true_mse"):
        runs[metric] = pd.to_numeric(raw[metric])
    runs.loc[runs.outcome != "finished", ["final_mse", "true_mse"]] = np.nan
    runs["setting_label"] = [f"h={h:g} lr={lr:g} noise={n:g}"
                             for h, lr, n in zip(runs.hidden_size, runs.lr, runs.noise)]
    return runs.sort_values(SETTING + ["seed"]).reset_index(drop=True)


def run_record(run) -> dict:
    """What the report reads of a run; params as MLflow stores them, strings."""
    record = {"run_id": run.info.run_id, "status": run.info.status,
              "failure": run.data.tags.get(tracking.TAG_FAILURE, "")}
    record.update({name: run.data.params.get(key) for name, key in PARAMS.items()})
    record.update({metric: run.data.metrics.get(metric, np.nan)
                   for metric in ("final_mse", "true_mse")})
    return record


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting: run counts by outcome, mean and sd over seeds of the metrics
    (finished runs only), sorted by mean true_mse (settings with no finished run last)."""
    grouped = runs.groupby(SETTING)
    summary = pd.DataFrame({
        "finished": grouped.outcome.apply(lambda s: int((s == "finished").sum())),
        "diverged": grouped.outcome.apply(lambda s: int((s == "diverged").sum())),
        "crashed": grouped.outcome.apply(lambda s: int((s == "crashed").sum())),
    })
    for metric in ("true_mse", "final_mse"):
        summary[f"{metric}_mean"] = grouped[metric].mean()
        summary[f"{metric}_sd"] = grouped[metric].std(ddof=1)
    summary = summary.reset_index()
    summary["hidden_size"] = summary["hidden_size"].astype(int)
    return summary.sort_values(["true_mse_mean", *SETTING], na_position="last").reset_index(drop=True)


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.6g}"
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def loss_histories(client, runs: pd.DataFrame, summary: pd.DataFrame) -> dict:
    ranked = summary.dropna(subset=["true_mse_mean"])
    if ranked.empty:
        return {}
    picks = {"best": ranked.iloc[0], "worst": ranked.iloc[-1]}
    histories = {}
    for name, row in picks.items():
        chosen = runs[(runs.hidden_size == row.hidden_size) & (runs.lr == row.lr)
                      & (runs.noise == row.noise) & (runs.outcome == "finished")]
        label = f"{name}: {chosen.setting_label.iloc[0]}"
        histories[label] = [metric_history(client, r.run_id, "loss") for r in chosen.itertuples()]
    return histories


def metric_history(client, run_id: str, key: str) -> pd.DataFrame:
    points = tracking.with_retry(client.get_metric_history, run_id, key)
    return pd.DataFrame({"step": [p.step for p in points], "value": [p.value for p in points]}
                        ).sort_values("step")


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector off, then as it was. A report allocates some 10^5
    short-lived objects (MLflow's ORM rows, matplotlib artists), all freed by reference
    counting, and their allocation keeps starting collections that traverse every object of
    the ~2000 modules MLflow imports: ~1 s of CPU at 540 runs. Cycles made meanwhile are
    collected after. Usable as a decorator."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@gc_paused()
def build_report(client, exp_id: str, parent_id: str, out_dir: Path,
                 log_to_parent: bool = True, pool: Executor | None = None) -> Report:
    """Read the sweep back, write reports/ and log the same files to the parent run.

    pool: a process pool to draw the figures in (see figure_process), each as soon as its
    data is read, the summary's two while the loss histories are read here. Without one
    they are drawn here and kept in ``Report.figures``."""
    reused = tracking.reused_runs(client, parent_id)
    runs = sweep_runs(client, exp_id, parent_id, reused)
    summary = summarise(runs) if len(runs) else pd.DataFrame(columns=[*SETTING, "true_mse_mean"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # written once, copied to both places
        from . import plots  # matplotlib: imported here, or already in the pool's process

        with FigureDrawer(Path(tmp), pool) as draw:
            if len(runs):
                draw("mse_vs_lr.png", plots.mse_vs_lr_figure, summary)
                draw("heatmap_true_mse.png", plots.heatmap_figure, summary)
                # few-ms ANALYZE that makes each metric-history lookup ~20x cheaper (see there)
                tracking.refresh_query_statistics(client.tracking_uri)
                histories = loss_histories(client, runs, summary)
                if histories:
                    draw("loss_best_worst.png", plots.loss_curves_figure, histories)
        report = Report(runs, summary, draw.figures, parent_id)
        write_tables(report, Path(tmp))
        for written in sorted(Path(tmp).iterdir()):
            shutil.copyfile(written, out_dir / written.name)
        if log_to_parent:
            tracking.with_retry(client.log_artifacts, parent_id, tmp, "report")
    return report


class FigureDrawer:
    """Draws figures to PNG files in a folder: here, keeping each Figure in ``figures``, or
    in a process pool. Leaving the ``with`` block waits for the pool's drawings, whatever
    happened (nothing may still be writing into the folder then), and raises what drawing
    raised."""

    def __init__(self, folder: Path, pool: Executor | None = None):
        self.folder, self.pool = folder, pool
        self.figures: dict[str, Figure] = {}
        self.pending: list[Future] = []

    def __call__(self, name: str, make: Callable[[Any], Figure], data: Any) -> None:
        from .plots import draw_png, save_png

        if self.pool is None:
            self.figures[name] = make(data)
            save_png(self.figures[name], self.folder / name)
        else:
            self.pending.append(self.pool.submit(draw_png, make, data, self.folder / name))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        futures.wait(self.pending)
        if error is None:
            for drawn in self.pending:
                drawn.result()


@contextlib.contextmanager
def figure_process():
    """A process pool of one process, forked now, to draw the report's figures in while this
    one reads the runs (``build_report(pool=...)``). Forked before MLflow is imported (no
    thread, no store connection yet); it imports matplotlib (scratchnet.plots) while this
    process imports MLflow (about 2 s here), and draws while this one reads the loss
    histories."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        # the first task forks the process (a fork-context pool forks then) and imports there
        pool.submit(importlib.import_module, f"{__package__}.plots")
        yield pool


def write_tables(report: Report, folder: Path) -> None:
    report.summary.to_csv(folder / "sweep_summary.csv", index=False)
    (folder / "sweep_summary.md").write_text(
        f"# Sweep {report.parent_run_id}\n\n{len(report.runs)} runs; mean and sd over seeds, "
        "sorted by mean true_mse.\n\n" + markdown_table(report.summary))


def latest_sweep(client, exp_id: str) -> str:
    runs = tracking.with_retry(client.search_runs, [exp_id],
                               f"tags.`{tracking.TAG_SWEEP_KEY}` LIKE '%'", max_results=1,
                               order_by=["attributes.start_time DESC"])
    if not runs:
        raise ReportError(f"experiment {exp_id} has no sweep (parent) runs")
    return runs[0].info.run_id


@gc_paused()  # from opening the store (importing MLflow's SQL store) on
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scratchnet-report", description=__doc__)
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="scratchnet")
    parser.add_argument("--parent-run-id", help="the sweep's parent run (default: latest sweep)")
    parser.add_argument("--out", default="reports", type=Path, help="output folder")
    args = parser.parse_args(argv)
    with figure_process() as pool:
        report = report_from_store(args, pool)
    print(report.console_text())
    print(f"Report written to {args.out}/ and logged to run {report.parent_run_id} under report/")
    gc.freeze()  # as train.main: no exit-time collections over MLflow's objects (0.3-1 s here)


def report_from_store(args: argparse.Namespace, pool: Executor) -> Report:
    try:
        client = tracking.open_existing_store(args.tracking_uri)
        experiment = client.get_experiment_by_name(args.experiment)
        if experiment is None:
            raise ReportError(f"--experiment: no experiment named {args.experiment!r} "
                              f"in {args.tracking_uri}")
        exp_id = experiment.experiment_id
        parent_id = args.parent_run_id or latest_sweep(client, exp_id)
        parent = parent_run(client, exp_id, parent_id)
        return build_report(client, exp_id, parent.info.run_id, args.out, pool=pool)
    except (ReportError, tracking.TrackingError) as error:
        sys.exit(f"error: {error}")


def parent_run(client, exp_id: str, run_id: str):
    try:
        run = client.get_run(run_id)
    except Exception:
        raise ReportError(f"--parent-run-id: no run {run_id!r} in this store") from None
    if run.info.experiment_id != exp_id:
        raise ReportError(f"--parent-run-id: run {run_id} is not in experiment {exp_id}")
    return run


if __name__ == "__main__":
    main()
