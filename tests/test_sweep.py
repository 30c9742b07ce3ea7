"""Sweeps: their records and the comparison report.

Fast: a 2 hidden sizes x 2 learning rates x 2 seeds grid recorded in this process (a parent
run and a real run per job under it, as a sweep records them); its report, built by
scratchnet.report.build_report, against a computation made directly from the runs the store
holds. Slow: the same grid as a real Hydra multirun, joblib with 2 workers, in a
subprocess: children, progress line, report, resume, reuse by a wider sweep."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy import stats

from conftest import call_main, recorded_sweep, run_cli, run_train, store_uri
from scratchnet.report import build_report
from scratchnet.report.__main__ import main as report_main
from scratchnet.report.stats import still_improving
from scratchnet.tracking import TAG_CONFIG_HASH, TAG_FAILURE, TAG_PARENT, TAG_SWEEP_KEY

AXES = {"model.hidden_size": [4, 16], "train.lr": [0.05, 0.1], "seed": [1, 2]}
FIXED = ["data.noise=0.06", "train.epochs=200", "tracking.log_every=25"]
GRID = ["model.hidden_size=4,16", "train.lr=0.05,0.1", "seed=1,2", *FIXED,
        "hydra.launcher.n_jobs=2"]
REPORT_FILES = {"sweep_summary.csv", "sweep_summary.md", "mse_vs_lr.png", "importance.csv",
                "heatmap_true_mse.png", "loss_best_worst.png", "importance.png", "report.html"}
T_975_DF1 = 12.706204736174707  # 97.5% quantile of Student's t, 1 degree of freedom (tables)


def report_folder(folder: Path, pattern: str = "*") -> Path:
    """The one report folder under folder/reports whose name matches pattern."""
    found = [p for p in (folder / "reports").glob(pattern) if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def by_setting(children, metric: str, hidden: int, lr: float) -> list[float]:
    return [r.data.metrics[metric] for r in children
            if r.data.params["model.hidden_size"] == str(hidden)
            and float(r.data.params["train.lr"]) == lr]


def assert_summary_is_the_runs(reports: Path, children) -> None:
    """The report's summary rows equal the geometric mean and its log-scale t interval, and
    the mean and sd, over seeds computed directly (SciPy) from the children's metrics as
    MLflow stores them."""
    summary = pd.read_csv(reports / "sweep_summary.csv")
    assert len(summary) == 4
    assert summary.true_mse_gmean.is_monotonic_increasing
    for row in summary.itertuples():
        assert row.finished == row.seeds == 2 and row.diverged == 0
        for metric in ("true_mse", "final_mse"):
            mine = by_setting(children, metric, row.hidden_size, row.lr)
            assert len(mine) == 2
            assert getattr(row, f"{metric}_mean") == pytest.approx(np.mean(mine), rel=1e-12)
            assert getattr(row, f"{metric}_sd") == pytest.approx(np.std(mine, ddof=1), rel=1e-9)
            assert getattr(row, f"{metric}_gmean") == pytest.approx(stats.gmean(mine), rel=1e-12)
            logs = np.log(mine)
            half = T_975_DF1 * np.std(logs, ddof=1) / np.sqrt(2)
            assert getattr(row, f"{metric}_ci_low") == pytest.approx(np.exp(logs.mean() - half))
            assert getattr(row, f"{metric}_ci_high") == pytest.approx(np.exp(logs.mean() + half))
    assert summary.verdict.iloc[0] == "best" and summary.p_vs_best.iloc[1:].notna().all()
    markdown = (reports / "sweep_summary.md").read_text()
    assert markdown.count("\n| ") == 5  # header and 4 settings


# ---------------------------------------------------------------- fast: recorded in-process


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, new_store):
    folder = tmp_path_factory.mktemp("recorded-sweep")
    sweep = recorded_sweep(new_store(folder), AXES, FIXED)
    report = build_report(sweep.client, sweep.exp_id, sweep.parent_id, folder / "reports")
    return sweep, report, report.folder


def test_report_rows_equal_a_direct_computation(recorded):
    sweep, report, reports = recorded
    assert_summary_is_the_runs(reports, sweep.children)
    best = report.summary[report.summary.verdict == "best"].iloc[0]
    assert best.true_mse_gmean == min(
        stats.gmean(by_setting(sweep.children, "true_mse", h, lr))
        for h in AXES["model.hidden_size"] for lr in AXES["train.lr"])


def test_still_improving_from_the_recorded_metric_equals_the_loss_history(recorded):
    """Each run records loss_at_90pct, so the report need not read every loss history (one
    query per run, slower the bigger the store): it is the loss at 90% of the epochs in the
    run's every-epoch history.csv, and the verdict from it equals still_improving over that
    history (how runs recorded before the metric are judged, on their logged points)."""
    sweep, report, _ = recorded
    improving = report.runs.set_index("run_id").improving
    for run in sweep.children:
        path = sweep.client.download_artifacts(run.info.run_id, "history.csv")
        losses = pd.read_csv(path).set_index("epoch").loss
        at_90 = int(0.9 * int(run.data.params["train.epochs"]))
        assert run.data.metrics["loss_at_90pct"] == losses[at_90]
        assert improving[run.info.run_id] == still_improving(losses)


def test_report_files_are_also_artifacts_of_the_parent(recorded):
    sweep, _, reports = recorded
    assert {p.name for p in reports.iterdir()} == REPORT_FILES
    names = {a.path for a in sweep.client.list_artifacts(sweep.parent_id, "report")}
    assert names == {f"report/{name}" for name in REPORT_FILES}
    local = Path(sweep.client.download_artifacts(sweep.parent_id, "report/sweep_summary.csv"))
    assert local.read_bytes() == (reports / "sweep_summary.csv").read_bytes()


def test_every_report_figure_shows_what_the_runs_say(recorded):
    """The plotted numbers, read back off the matplotlib artists, equal a computation made
    directly from the runs in the store."""
    sweep, report, _ = recorded
    client, children = sweep.client, sweep.children

    def direct(metric, hidden, lr):
        """The geometric mean and the sd of the logs over the setting's seeds."""
        values = by_setting(children, metric, hidden, lr)
        return stats.gmean(values), np.std(np.log(values), ddof=1)

    # mse_vs_lr: row 0 true_mse, row 1 final_mse; one errorbar line per hidden size, drawn
    # a little apart (the same factor on every point); bars: the 95% t interval of the logs
    # over 2 seeds, transformed back
    axes = report.figures["mse_vs_lr.png"][0].axes
    for ax, metric in ((axes[0], "true_mse"), (axes[1], "final_mse")):
        containers = ax.containers
        assert len(containers) == 2  # hidden sizes 4 and 16
        for container, hidden in zip(containers, (4, 16)):
            line = container.lines[0]
            shift = np.asarray(line.get_xdata()) - [0.05, 0.1]  # a linear axis: 2 lrs, x2
            assert shift[0] == pytest.approx(shift[1]) and abs(shift[0]) < 0.001
            for lr, plotted in zip((0.05, 0.1), line.get_ydata()):
                gmean, sd = direct(metric, hidden, lr)
                assert plotted == pytest.approx(gmean, rel=1e-12)
            bar_segments = container.lines[2][0].get_segments()
            for lr, ((_, low), (_, high)) in zip((0.05, 0.1), bar_segments):
                gmean, sd = direct(metric, hidden, lr)
                assert np.log(high / low) == pytest.approx(2 * T_975_DF1 * sd / np.sqrt(2),
                                                           rel=1e-9)
                assert 0 < low < gmean < high
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["0.05", "0.1"]

    # heatmap: the image's cells are the geometric mean true_mse per hidden size x lr
    image = report.figures["heatmap_true_mse.png"][0].axes[0].images[0].get_array()
    for i, hidden in enumerate((4, 16)):
        for j, lr in enumerate((0.05, 0.1)):
            assert image[i, j] == pytest.approx(direct("true_mse", hidden, lr)[0], rel=1e-12)

    # loss curves: best and worst settings by geometric mean true_mse, every seed's history
    means = {(h, lr): direct("true_mse", h, lr)[0] for h in (4, 16) for lr in (0.05, 0.1)}
    best, worst = min(means, key=means.get), max(means, key=means.get)
    lines = report.figures["loss_best_worst.png"][0].axes[0].lines
    assert len(lines) == 4  # 2 settings x 2 seeds
    for line, (hidden, lr) in zip(lines, [best, best, worst, worst]):
        histories = [[m.value for m in client.get_metric_history(r.info.run_id, "loss")]
                     for r in children if r.data.params["model.hidden_size"] == str(hidden)
                     and float(r.data.params["train.lr"]) == lr]
        assert list(line.get_ydata()) in histories


def test_report_html_holds_everything_and_fetches_nothing(recorded):
    _, report, reports = recorded
    page = (reports / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(report.figures) == 4
    for fetching in ("<script", "<link", "src=\"http", "href=\"http", "@import", "url("):
        assert fetching not in page
    assert page.count('<tr class="best">') == 1 and "What to try next" in page


def test_each_sweep_reports_to_its_own_folder_and_the_command_finds_any(
        recorded, tmp_path, monkeypatch, capsys):
    sweep, _, reports = recorded
    before = {p.name: p.read_bytes() for p in reports.iterdir()}
    other = recorded_sweep(sweep.uri, {"train.lr": [0.07], "seed": [1, 2]},
                           ["model.hidden_size=4", "train.epochs=50"], name="sweep lr=0.07 seed=1,2")
    second = build_report(other.client, other.exp_id, other.parent_id, reports.parent)
    assert second.folder != reports and second.folder.name.startswith("lr=0.07_seed=1,2-")
    assert {p.name: p.read_bytes() for p in reports.iterdir()} == before  # untouched
    monkeypatch.chdir(tmp_path)
    for args, parent in ((["--sweep", "lr=0.07"], other.parent_id),
                         (["--sweep", reports.name], sweep.parent_id),
                         ([], other.parent_id)):  # the latest by default
        done = call_main(report_main, ["--tracking-uri", sweep.uri, *args, "--out", "out"],
                         capsys=capsys)
        assert done.returncode == 0, done.stderr
        assert f"(parent run {parent})" in done.stdout
    missing = call_main(report_main, ["--tracking-uri", sweep.uri, "--sweep", "no such"],
                        capsys=capsys)
    assert missing.returncode == 1 and "--sweep: no sweep named like 'no such'" in missing.stderr


def test_diverged_runs_are_counted_apart_and_not_averaged(tmp_path, new_store):
    sweep = recorded_sweep(new_store(tmp_path), {"train.lr": [0.05, 5], "seed": [1, 2]},
                           ["model.hidden_size=4", "data.noise=0.06", "train.epochs=150"])
    report = build_report(sweep.client, sweep.exp_id, sweep.parent_id, tmp_path / "reports",
                          log_to_parent=False)
    by_lr = {lr: [c for c in sweep.children if c.data.params["train.lr"] == lr]
             for lr in ("0.05", "5.0")}
    assert [c.info.status for c in by_lr["0.05"]] == ["FINISHED"] * 2
    assert [c.info.status for c in by_lr["5.0"]] == ["FAILED"] * 2
    assert all(c.data.tags[TAG_FAILURE].startswith("diverged at epoch ") for c in by_lr["5.0"])
    summary = pd.read_csv(report.folder / "sweep_summary.csv")
    assert summary.lr.tolist() == [0.05, 5.0]  # the diverged setting sorts last
    diverged, finished = summary.iloc[1], summary.iloc[0]
    assert (diverged.diverged, diverged.finished, diverged.crashed) == (2, 0, 0)
    assert np.isnan(diverged.true_mse_gmean) and np.isnan(diverged.final_mse_mean)
    assert (finished.diverged, finished.finished) == (0, 2)
    assert finished.true_mse_mean == pytest.approx(
        np.mean([c.data.metrics["true_mse"] for c in by_lr["0.05"]]), rel=1e-12)
    assert "Diverged runs: 2" in report.console_text()
    assert summary.verdict.tolist() == ["best", "no finished seed"]


def test_a_bad_value_on_a_sweep_axis_stops_before_anything_runs(tmp_path, monkeypatch, capsys):
    result = run_train(["--multirun", "train.lr=0.1,-1", "model.hidden_size=4", "seed=1",
                        f"tracking.uri={store_uri(tmp_path)}"], tmp_path, monkeypatch, capsys)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: train.lr: must be > 0 and finite, got -1.0"]
    assert not (tmp_path / "mlflow.db").exists()
    assert "Initial MSE" not in result.stdout


# ---------------------------------------------------------------- slow: a real multirun


def sweep(folder: Path, *extra: str):
    return run_cli(["--multirun", *GRID, f"tracking.uri={store_uri(folder)}", *extra], folder)


def all_runs(uri: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("scratchnet")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    first = sweep(folder)
    assert first.returncode == 0, first.stderr
    client, runs = all_runs(store_uri(folder))
    return folder, first, client, runs


@pytest.mark.slow
def test_eight_finished_children_under_one_parent(swept):
    _, _, client, runs = swept
    parents = [r for r in runs if TAG_SWEEP_KEY in r.data.tags]
    children = [r for r in runs if TAG_PARENT in r.data.tags]
    assert len(parents) == 1 and len(children) == 8 and len(runs) == 9
    parent = parents[0]
    assert {c.data.tags[TAG_PARENT] for c in children} == {parent.info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.size"] == "8"
    assert len({c.data.tags[TAG_CONFIG_HASH] for c in children}) == 8
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "loss")]
        assert steps[0] == 1 and steps[-1] == 200 and len(steps) == 9


@pytest.mark.slow
def test_summary_and_progress_are_printed(swept):
    _, first, _, _ = swept
    assert "[sweep] 8/8 done, 0 skipped, 0 diverged, 0 failed" in first.stderr
    assert "Best at noise=0.06: hidden_size=" in first.stdout  # pinned on the grid: a condition
    ui_line = next(line for line in first.stdout.splitlines() if "In the MLflow UI" in line)
    assert "#/experiments/" in ui_line and "tags.mlflow.parentRunId" in ui_line
    assert ui_line.endswith("workflowType=machine_learning")


@pytest.mark.slow
def test_the_sweeps_report_is_its_runs_and_an_artifact_of_its_parent(swept):
    folder, _, client, runs = swept
    reports = report_folder(folder)
    assert_summary_is_the_runs(reports, [r for r in runs if TAG_PARENT in r.data.tags])
    parent = next(r for r in runs if TAG_SWEEP_KEY in r.data.tags)
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {p.name for p in reports.iterdir()} == REPORT_FILES
    assert names == {f"report/{name}" for name in REPORT_FILES}


@pytest.mark.slow
def test_rerun_skips_everything_and_adds_nothing(swept):
    folder, _, _, runs = swept
    again = sweep(folder)
    assert again.returncode == 0, again.stderr
    assert "[sweep] 8/8 done, 8 skipped, 0 diverged, 0 failed" in again.stderr
    assert "resuming parent run" in again.stderr
    _, runs_after = all_runs(store_uri(folder))
    assert sorted(r.info.run_id for r in runs_after) == sorted(r.info.run_id for r in runs)


@pytest.mark.slow
def test_diverging_runs_are_failed_results_and_the_sweep_goes_on(tmp_path):
    result = run_cli(["--multirun", "model.hidden_size=4", "train.lr=0.05,5", "seed=1,2",
                      "data.noise=0.06", "train.epochs=150", "hydra.launcher.n_jobs=2",
                      f"tracking.uri={store_uri(tmp_path)}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 diverged, 0 failed" in result.stderr
    assert "Diverged runs: 2" in result.stdout
    _, runs = all_runs(store_uri(tmp_path))
    children = [r for r in runs if TAG_PARENT in r.data.tags]
    by_lr = {lr: [c for c in children if c.data.params["train.lr"] == lr] for lr in ("0.05", "5.0")}
    assert [c.info.status for c in by_lr["0.05"]] == ["FINISHED"] * 2
    assert [c.info.status for c in by_lr["5.0"]] == ["FAILED"] * 2
    assert all(c.data.tags[TAG_FAILURE].startswith("diverged at epoch ") for c in by_lr["5.0"])
    summary = pd.read_csv(report_folder(tmp_path) / "sweep_summary.csv")
    diverged_row = summary[summary.lr == 5.0].iloc[0]
    assert diverged_row.diverged == 2 and diverged_row.finished == 0


@pytest.mark.slow
def test_a_wider_sweep_reuses_earlier_runs_and_reports_them(tmp_path):
    pinned = ["model.hidden_size=4", "train.lr=0.05", "data.noise=0.06", "train.epochs=60",
              "hydra.launcher.n_jobs=2", f"tracking.uri={store_uri(tmp_path)}"]
    assert run_cli(["--multirun", *pinned, "seed=1,2"], tmp_path).returncode == 0
    wider = run_cli(["--multirun", *pinned, "seed=1,2,3"], tmp_path)
    assert wider.returncode == 0, wider.stderr
    assert "[sweep] 3/3 done, 2 skipped" in wider.stderr
    summary = pd.read_csv(report_folder(tmp_path, "*seed=1,2,3-*") / "sweep_summary.csv")
    assert summary.finished.tolist() == [3]  # seeds 1 and 2 from the first sweep, 3 new
    _, runs = all_runs(store_uri(tmp_path))
    assert len([r for r in runs if TAG_PARENT in r.data.tags]) == 3
