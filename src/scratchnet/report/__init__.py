"""The comparison report of a sweep: its runs read back from MLflow into pandas
(``tables``), one row per setting over seeds, figures (``figures``), written to a folder and
logged to the sweep's parent run under ``report/``.

``python -m scratchnet.report`` (``scratchnet-report``) rebuilds it for any sweep.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .. import tracking
from ..plots import save_png
from .tables import SETTING, loss_histories, markdown_table, summarise, sweep_runs

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Report:
    runs: pd.DataFrame  # one row per child run: setting, seed, status, metrics
    summary: pd.DataFrame  # one row per setting, sorted by mean true_mse
    parent_run_id: str
    figures: dict[str, Figure] = field(default_factory=dict)  # file name -> figure

    @property
    def best(self) -> pd.Series | None:
        finished = self.summary.dropna(subset=["true_mse_mean"])
        return finished.iloc[0] if len(finished) else None

    def console_text(self) -> str:
        heading = (f"Sweep {self.parent_run_id}: {len(self.runs)} runs, "
                   f"{len(self.summary)} settings (mean and sd over seeds)")
        lines = [heading, "",
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


def build_report(client, exp_id: str, parent_id: str, out_dir: Path,
                 log_to_parent: bool = True) -> Report:
    """Read the sweep back, write ``out_dir`` and log the same files to the parent run.
    The files are written to a temporary folder first, so neither place is half-written
    if anything fails."""
    from . import figures  # matplotlib: imported when a report is drawn

    runs = sweep_runs(client, exp_id, parent_id, tracking.reused_runs(client, parent_id))
    summary = summarise(runs) if len(runs) else pd.DataFrame(columns=[*SETTING, "true_mse_mean"])
    report = Report(runs, summary, parent_id)
    if len(runs):
        report.figures["mse_vs_lr.png"] = figures.mse_vs_lr_figure(summary)
        report.figures["heatmap_true_mse.png"] = figures.heatmap_figure(summary)
        histories = loss_histories(client, runs, summary)
        if histories:
            report.figures["loss_best_worst.png"] = figures.loss_curves_figure(histories)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, figure in report.figures.items():
            save_png(figure, folder / name)
        write_tables(report, folder)
        out_dir.mkdir(parents=True, exist_ok=True)
        for written in sorted(folder.iterdir()):
            shutil.copyfile(written, out_dir / written.name)
        if log_to_parent:
            tracking.with_retry(client.log_artifacts, parent_id, tmp, "report")
    return report


def write_tables(report: Report, folder: Path) -> None:
    report.summary.to_csv(folder / "sweep_summary.csv", index=False)
    (folder / "sweep_summary.md").write_text(
        f"# Sweep {report.parent_run_id}\n\n{len(report.runs)} runs; mean and sd over seeds, "
        "sorted by mean true_mse.\n\n" + markdown_table(report.summary))
