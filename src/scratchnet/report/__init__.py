"""The comparison report of a sweep: its runs read back from MLflow (``runs``), statistics
over seeds and ties with the best (``stats``), what matters (``importance``), what to try
next (``suggest``), tables (``tables``), figures (``figures``) and one self-contained page
(``html``), written to the sweep's own folder under the report root and logged to its
parent run under ``report/``.

``python -m scratchnet.report`` (``scratchnet-report``) rebuilds it for any sweep.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import tracking
from ..plots import save_png
from . import race_report
from . import runs as read
from .importance import importance
from .stats import (
    Design,
    best_and_worst,
    drawn_runs_of,
    finished_runs_of,
    summarise,
    sweep_design,
)
from .suggest import suggestions
from .tables import (
    by_condition,
    console_tables,
    csv_frame,
    interval_words,
    markdown_tables,
    number,
    pruned_line,
    setting_words,
    short,
)


@dataclass(frozen=True)
class Winner:
    """The named best setting of one condition, and the run that stands for it."""

    condition: dict  # swept data.* key -> value, e.g. {"data.noise": 0.06}; {} without one
    setting: dict  # swept choice key -> value, e.g. {"model.hidden_size": 16, "train.lr": 0.05}
    run_id: str  # its finished run of lowest true_mse (ties: the lowest seed)
    row: pd.Series  # its summary row (stats.summarise): seeds, intervals, verdict
    tied: int  # how many other settings of the condition are tied with it


@dataclass
class Report:
    runs: pd.DataFrame  # one row per run: swept keys, seed, outcome, metrics, improving
    summary: pd.DataFrame  # one row per setting (stats.summarise)
    design: Design
    parent_run_id: str
    name: str  # the parent run's name, e.g. 'sweep hidden_size=8,16,32 lr=...'
    swept: dict[str, list] = field(default_factory=dict)  # key -> the values its runs took
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)
    suggestions: list[str] = field(default_factory=list)
    histories: dict[str, pd.Series] = field(default_factory=dict)  # run id -> loss by epoch
    figures: dict = field(default_factory=dict)  # file name -> (Figure, caption)
    folder: Path | None = None  # where it was written
    reused: list[str] = field(default_factory=list)  # run ids answering a config, not children
    study: str | None = None  # a search's Optuna study (the parent's tag)
    race: race_report.RaceFindings | None = None  # search=race: what the race found
    models: list[str] = field(default_factory=list)  # where each winner is registered

    @property
    def pruned(self) -> int:
        return int((self.runs.outcome == "pruned").sum())

    @property
    def kind(self) -> str:
        """What the sweep was: a grid, a search, or a race (a grid of uneven seed counts)."""
        return "race" if self.race is not None else self.design.kind

    def console_text(self) -> str:
        summary, design = self.summary, self.design
        lines = [(f"{self.name} (parent run {self.parent_run_id}): {len(self.runs)} runs, "
                 f"{len(summary)} settings, a {self.kind}; settings are compared within "
                 f"each {' and '.join(short(k) for k in design.conditions) or 'sweep'}, "
                 "over the seeds that finished"), ""]
        if len(summary):
            lines += [console_tables(summary, design), "", *self.best_lines()]
        if len(self.importance):
            shares = ", ".join(f"{short(p)} {100 * s:.0f}%" for p, s in
                               zip(self.importance.parameter, self.importance.share))
            lines.append(f"What matters ({self.importance.method.iloc[0]}, share of the "
                         f"variance of true_mse): {shares}")
        lines += self.models
        if self.race is not None:
            lines += race_report.console_lines(self.race, design)
        if self.suggestions:
            lines += ["What to try next:", *(f"  - {line}" for line in self.suggestions)]
        if self.pruned:
            lines.append(pruned_line(self.runs))
        diverged, crashed = (int((self.runs.outcome == o).sum()) for o in ("diverged", "crashed"))
        if diverged:
            lines.append(f"Diverged runs: {diverged} (a result: left out of the statistics)")
        if crashed:
            lines.append(f"Crashed runs: {crashed} (left out; the same command runs them again)")
        if self.reused:
            lines.append(f"Reused runs: {len(self.reused)} recorded outside this sweep answer "
                         f"their (setting, seed) (one run each: the sweep's own child where "
                         f"there is one, else the newest finished): {', '.join(self.reused)}")
        return "\n".join(lines)

    def winners(self) -> list[Winner]:
        """The best setting of each condition that has one, in the tables' order."""
        found = []
        for _, rows in by_condition(self.summary, self.design):
            best = rows[rows.verdict == "best"]
            if best.empty:
                continue
            row = best.iloc[0]
            runs = finished_runs_of(self.runs, row, self.design)
            run_id = runs.sort_values(["true_mse", "seed"]).run_id.iloc[0]
            found.append(Winner({k: row[k] for k in self.design.conditions},
                                {k: row[k] for k in self.design.choices}, run_id, row,
                                int((rows.verdict == "tied").sum())))
        return found

    def outcome(self) -> tuple[dict[str, float], dict[str, str]]:
        """What the parent run records of the outcome, per condition (``-noise-0.06`` on each
        name; nothing when no condition was swept): the metric ``best_true_mse_gmean`` and
        the tags ``scratchnet.best.setting``, ``.run_id``, ``.true_mse`` (geometric mean and
        interval) and ``.tied``, so the runs table can sort and compare sweeps."""
        metrics, tags = {}, {}
        for winner in self.winners():
            metrics[f"best_true_mse_gmean{condition_slug(winner.condition)}"] = float(
                winner.row.true_mse_gmean)
            tags[outcome_tag(winner.condition, "setting")] = setting_words(winner.row,
                                                                           self.design.choices)
            tags[outcome_tag(winner.condition, "run_id")] = winner.run_id
            tags[outcome_tag(winner.condition, "true_mse")] = true_mse_words(winner.row)
            tags[outcome_tag(winner.condition, "tied")] = str(winner.tied)
        return metrics, tags

    def model_lines(self, tags: dict[str, str]) -> list[str]:
        """'Registered model at noise=0.06: models:/scratchnet/3 (run <id>; alias
        best-noise-0_06 when the sweep ended)', from the parent run's tags."""
        lines = []
        for winner in self.winners():
            uri = tags.get(outcome_tag(winner.condition, "model"))
            if uri:
                at = (f" at {setting_words(winner.row, self.design.conditions)}"
                      if winner.condition else "")
                alias = tags.get(outcome_tag(winner.condition, "model_alias"), "")
                lines.append(f"Registered model{at}: {uri} (run {winner.run_id}; alias "
                             f"{alias} when the sweep ended)")
        return lines

    def best_run_lines(self) -> list[str]:
        """'Best run at noise=0.06: <id> (hidden_size=8 lr=0.1 seed=2, true_mse 0.0213)'."""
        lines = []
        for winner in self.winners():
            run = self.runs.set_index("run_id").loc[winner.run_id]
            at = (f" at {setting_words(winner.row, self.design.conditions)}"
                  if winner.condition else "")
            lines.append(f"Best run{at}: {winner.run_id} "
                         f"({setting_words(winner.row, self.design.choices)} seed={run.seed}, "
                         f"true_mse {number(run.true_mse)}: its setting's lowest seed)")
        return lines

    def best_lines(self) -> list[str]:
        lines = []
        for title, rows in by_condition(self.summary, self.design):
            best = rows[rows.verdict == "best"]
            if best.empty:
                lines.append(f"Best at {title}: none (no setting finished a seed)"
                             if self.design.conditions else "Best: none (nothing finished)")
                continue
            row = best.iloc[0]
            tied = int((rows.verdict == "tied").sum())
            tested = int(rows.p_vs_best.notna().sum())
            at = f" at {title}" if self.design.conditions else ""
            seeds = f"{row.seeds} seed{'' if row.seeds == 1 else 's'}"
            ties = (f"{tied} of {tested} settings tested are tied with it" if tested else
                    "no test: no other setting shares 2 finished seeds with it")
            lines.append(f"Best{at}: {setting_words(row, self.design.choices)}  "
                         f"true_mse {interval_words(row, 'true_mse')} over {seeds}; {ties}")
        return lines


def condition_slug(condition: dict) -> str:
    """{'data.noise': 0.06} -> '-noise-0.06' (letters, digits, '.', '_' and '-': what MLflow
    allows in a metric's name); '' for no condition."""
    return "".join(f"-{short(key)}-{number(value)}" for key, value in condition.items())


def outcome_tag(condition: dict, field: str) -> str:
    """The parent run's tag of a condition's outcome: 'scratchnet.best-noise-0.06.run_id'."""
    return f"scratchnet.best{condition_slug(condition)}.{field}"


def true_mse_words(row: pd.Series) -> str:
    """'0.0239 [0.0142, 0.0401] over 3 seeds': a setting's geometric mean true_mse and its
    log-scale interval, as the parent run's tag and a registered version's say it."""
    seeds = f" over {row.seeds} seeds" if row.seeds > 1 else ""
    return interval_words(row, "true_mse") + seeds


def report_folder(name: str, parent_id: str, study: str | None = None) -> str:
    """A sweep's own folder under the report root: a grid's name made safe for a path (a
    search's: optuna-<its study's name>), and the start of its parent run id (two sweeps
    with one name get two folders)."""
    title = f"optuna-{study}" if study else name.removeprefix("sweep ")
    slug = re.sub(r"[^\w.,=+-]+", "_", title).strip("_")[:80]
    return f"{slug}-{parent_id[:8]}" if slug else parent_id


def analyse(client, exp_id: str, parent_id: str) -> Report:
    """Read a sweep back from MLflow and compute its statistics (no figures yet)."""
    parent = tracking.with_retry(client.get_run, parent_id)
    found = read.sweep_runs(client, exp_id, parent_id, tracking.reused_runs(client, parent_id))
    expressions = read.swept_keys(parent, found)
    runs = read.runs_frame(found, list(expressions))
    # one MLflow query per history, each slower the bigger the store: read only the runs
    # recorded before loss_at_90pct, and later those the loss figure draws
    older = runs[(runs.outcome == "finished") & runs.loss_at_90pct.isna()].run_id.tolist()
    runs = read.mark_improving(runs, read.loss_histories(client, older))
    design = sweep_design(runs, list(expressions))
    summary = summarise(runs, design)
    shown = [drawn_runs_of(runs, setting, design).run_id
             for _, rows in by_condition(summary, design)
             for _, setting in best_and_worst(rows)]
    swept = {key: sorted(runs[key].dropna().unique().tolist()) for key in expressions}
    epochs = runs.epochs.dropna().unique()
    report = Report(runs, summary, design, parent_id, parent.info.run_name or parent_id, swept)
    report.importance = importance(runs, design, expressions)
    report.suggestions = suggestions(summary, design, swept,
                                     int(epochs[0]) if len(epochs) == 1 else None)
    report.histories = read.loss_histories(client, [run_id for ids in shown for run_id in ids])
    report.reused = sorted(run.info.run_id for run in found
                           if run.data.tags.get(tracking.TAG_PARENT) != parent_id)
    report.study = parent.data.tags.get(tracking.TAG_STUDY)
    report.race = race_report.replay(parent.data.tags, runs, design, swept)
    report.models = report.model_lines(parent.data.tags)
    return report


def draw(report: Report) -> None:
    """The report's figures, chosen to suit the sweep."""
    from . import figures  # matplotlib: imported when a report is drawn

    summary, design, swept = report.summary, report.design, report.swept
    if summary.true_mse_gmean.notna().any():  # something finished
        if design.kind == "grid":
            x = figures.x_axis(design, swept)
            if x is not None:
                report.figures[f"mse_vs_{short(x)}.png"] = (
                    figures.lines_figure(summary, design, swept, x),
                    f"MSE against {figures.words(x)}, per condition")
            others = [k for k in design.choices if k != x and len(swept[k]) > 1]
            if x is not None and others:
                y = max(others, key=lambda key: len(swept[key]))
                report.figures["heatmap_true_mse.png"] = (
                    figures.heatmap_figure(summary, design, swept, x, y),
                    f"geometric mean true_mse over {figures.words(y)} and {figures.words(x)}")
        elif design.choices:
            report.figures["true_mse_vs_searched.png"] = (
                figures.search_figure(report.runs, summary, design, swept),
                "true_mse against each searched key")
            report.figures["best_settings.png"] = (
                figures.best_settings_figure(summary, design), "the best settings")
        if report.histories:
            report.figures["loss_best_worst.png"] = (
                figures.loss_curves_figure(report.runs, summary, design, report.histories),
                "training loss of the best and worst settings")
    if report.race is not None:
        report.figures["race.png"] = (race_report.race_figure(report.race, report.runs,
                                                              design),
                                      "the race: settings against seeds, where each was dropped")
    if len(report.importance):
        report.figures["importance.png"] = (figures.importance_figure(report.importance),
                                            "share of the variance of true_mse")


def build_report(client, exp_id: str, parent_id: str, root: Path,
                 log_to_parent: bool = True) -> Report:
    """Read the sweep back, write its folder under ``root`` and log the same files to the
    parent run under report/."""
    return write_report(client, analyse(client, exp_id, parent_id), root, log_to_parent)


def write_report(client, report: Report, root: Path, log_to_parent: bool = True) -> Report:
    """Draw an analysed report, write its folder under ``root`` and log the same files to
    the parent run under report/. The files are written to a temporary folder first, so
    neither place is half-written if anything fails."""
    parent_id = report.parent_run_id
    draw(report)
    report.folder = root / report_folder(report.name, parent_id, report.study)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_files(report, folder)
        report.folder.mkdir(parents=True, exist_ok=True)
        for written in sorted(folder.iterdir()):
            shutil.copyfile(written, report.folder / written.name)
        if log_to_parent:
            tracking.with_retry(client.log_artifacts, parent_id, tmp, "report")
    return report


def write_files(report: Report, folder: Path) -> None:
    from .html import report_page

    pngs = {}
    for name, (figure, _) in report.figures.items():
        buffer = io.BytesIO()
        save_png(figure, buffer)
        pngs[name] = buffer.getvalue()
        (folder / name).write_bytes(pngs[name])
    csv_frame(report.summary, report.design).to_csv(folder / "sweep_summary.csv", index=False)
    report.importance.to_csv(folder / "importance.csv", index=False)
    (folder / "sweep_summary.md").write_text(markdown_text(report))
    captions = {name: caption for name, (_, caption) in report.figures.items()}
    page = report_page(report, pngs, captions)
    if report.race is not None:  # the race's section, before the end of the page
        page = page.replace("</body>", "\n".join(race_report.html_sections(
            report.race, report.summary, report.design)) + "\n</body>")
    (folder / "report.html").write_text(page)


def markdown_text(report: Report) -> str:
    lines = [f"# {report.name}", "", (f"Parent run {report.parent_run_id}: {len(report.runs)} "
             f"runs. Per condition, each setting's geometric mean true_mse over the seeds "
             "that finished with its 95% t interval on the log scale, its ratio to the best, "
             "and the Holm-adjusted p of a paired t-test of log true_mse against the best."),
             ""]
    if len(report.summary):
        lines.append(markdown_tables(report.summary, report.design))
    if report.race is not None:
        lines += [race_report.markdown_section(report.race, report.summary, report.design), ""]
    if report.models:
        lines += ["## Registered models", "", *(f"- {line}" for line in report.models), ""]
    if report.suggestions:
        lines += ["## What to try next", "", *(f"- {line}" for line in report.suggestions), ""]
    if len(report.importance):
        lines += ["## What matters", "", *(f"- {p}: {100 * s:.0f}% ({m})" for p, s, m in
                                           report.importance.itertuples(index=False)), ""]
    return "\n".join(lines)


__all__ = ["Report", "Winner", "analyse", "build_report", "outcome_tag", "report_folder",
           "true_mse_words", "write_report"]
