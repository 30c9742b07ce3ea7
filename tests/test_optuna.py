"""search=optuna as a user runs it, in subprocesses: a TPE search that minimises true_mse,
pruning, a search killed and run again, a search warm-started from a grid. What it did is
read back from the MLflow store and from the Optuna storage beside it."""

import os
import signal
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from conftest import run_cli, start_sweep, store_uri
from scratchnet import tracking
from scratchnet.sweep import search

# Real searches in subprocesses: the slow suite (pytest -m slow).
pytestmark = pytest.mark.slow


def children_of_sweeps(folder):
    client = MlflowClient(store_uri(folder))
    experiment = client.get_experiment_by_name("scratchnet")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if tracking.TAG_SWEEP_KEY in r.data.tags]
    return parents, [r for r in runs if tracking.TAG_PARENT in r.data.tags]


def the_study(folder):
    storage = search.open_storage(str(folder / search.JOURNAL_FILE))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def test_tpe_search_minimises_the_true_mse_the_runs_record(tmp_path):
    result = run_cli(["--multirun", "search=optuna", "hydra.sweeper.n_trials=4",
                      "hydra.sweeper.n_jobs=2", "train.epochs=60",
                      f"tracking.uri={store_uri(tmp_path)}"], tmp_path)
    assert result.returncode == 0, result.stderr
    parents, children = children_of_sweeps(tmp_path)
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    # the search space of conf/search/optuna.yaml was used
    assert {r.data.params["model.hidden_size"] for r in children} <= {"4", "8", "16", "32", "64"}
    assert all(0.005 <= float(r.data.params["train.lr"]) <= 0.2 for r in children)
    # the objective Optuna minimised is the true_mse recorded in MLflow, trial by trial
    study = the_study(tmp_path)
    assert parents[0].data.tags[search.TAG_STUDY] == study.study_name
    assert parents[0].data.tags[search.TAG_STORAGE] == str(tmp_path / search.JOURNAL_FILE)
    by_run = {r.info.run_id: r for r in children}
    for trial in study.trials:
        assert trial.value == by_run[trial.user_attrs[search.RUN_ATTR]].data.metrics["true_mse"]
    assert study.best_value == min(r.data.metrics["true_mse"] for r in children)
    assert f"optuna-dashboard {tmp_path / search.JOURNAL_FILE}" in result.stderr


def parents_id(folder: Path) -> str:
    parents, _ = children_of_sweeps(folder)
    assert len(parents) == 1
    return parents[0].info.run_id


def test_a_search_of_24_trials_prunes_some_and_says_how_many(tmp_path):
    result = run_cli(["--multirun", "search=optuna", "hydra.sweeper.n_trials=24",
                      "train.epochs=600", "hydra.sweeper.prune_after=200",
                      "hydra.sweeper.report_every=50", f"tracking.uri={store_uri(tmp_path)}"],
                     tmp_path)
    assert result.returncode == 0, result.stderr
    study = the_study(tmp_path)
    pruned_trials = study.get_trials(states=(TrialState.PRUNED,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(pruned_trials) + len(complete) == 24 and 0 < len(pruned_trials) < 24
    _, children = children_of_sweeps(tmp_path)
    pruned_runs = [r for r in children if tracking.TAG_PRUNED in r.data.tags]
    assert {r.info.run_id for r in pruned_runs} \
        == {t.user_attrs[search.RUN_ATTR] for t in pruned_trials}
    for run in pruned_runs:  # FINISHED, with its metrics up to the epoch it stopped at
        epoch = int(run.data.tags[tracking.TAG_PRUNED])
        assert run.info.status == "FINISHED" and 200 <= epoch < 600 and epoch % 50 == 0
        assert run.data.metrics["epochs_run"] == epoch
    last_line = [line for line in result.stderr.splitlines() if line.startswith("[sweep] ")][-1]
    assert f"24/24 done, 0 skipped, {len(pruned_trials)} pruned," in last_line
    # the report: a folder named after the study, each pruned trial's row says where it
    # stopped, and "no test" is worded one way
    folders = list((tmp_path / "reports").iterdir())
    assert [f.name for f in folders] == [f"optuna-{study.study_name}-{parents_id(tmp_path)[:8]}"]
    summary = pd.read_csv(folders[0] / "sweep_summary.csv")
    stopped = summary[summary.pruned > 0]
    assert sorted(stopped.verdict) == sorted(
        f"pruned at epoch {r.data.tags[tracking.TAG_PRUNED]}" for r in pruned_runs)
    no_test = [v for v in summary.verdict if "test" in v and v not in ("tied", "worse")]
    assert all(v.startswith("no test: ") for v in no_test)
    assert f"Pruned trials: {len(pruned_runs)}, stopped after epoch" in result.stdout


def test_a_killed_search_run_again_completes_exactly_n_trials_under_one_parent(tmp_path):
    args = ["search=optuna", "hydra.sweeper.n_trials=8", "train.epochs=1500"]
    sweep = start_sweep(tmp_path, *args)
    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("multirun/*/*/progress.jsonl"))) == 0 or len(
            next(tmp_path.glob("multirun/*/*/progress.jsonl")).read_text().splitlines()) < 3:
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # the search, its workers and their job processes
    sweep.wait()
    before = the_study(tmp_path).get_trials()
    assert sum(search.counted(t) for t in before) < 8

    result = run_cli(["--multirun", *args, f"tracking.uri={store_uri(tmp_path)}"], tmp_path)
    assert result.returncode == 0, result.stderr
    parents, children = children_of_sweeps(tmp_path)
    assert len(parents) == 1 and {r.data.tags[tracking.TAG_PARENT] for r in children} \
        == {parents[0].info.run_id}
    # a result: a FINISHED run, or a FAILED one that diverged (a trial's point may diverge)
    finished = [r for r in children if r.info.status == "FINISHED"
                or r.data.tags.get(tracking.TAG_FAILURE, "").startswith("diverged")]
    assert len(finished) == 8
    others = {r.info.run_id for r in children} - {r.info.run_id for r in finished}
    assert all(r.info.status == "KILLED" for r in children if r.info.run_id in others)
    assert len({r.data.tags[tracking.TAG_CONFIG_HASH] for r in finished}) == 8  # none twice
    study = the_study(tmp_path)
    counted = [t for t in study.get_trials() if search.counted(t)]
    assert len(counted) == 8
    assert {t.user_attrs[search.RUN_ATTR] for t in counted} == {r.info.run_id for r in finished}
    # every trial the kill interrupted in its run was run again at the same point (one killed
    # while it was being asked, before all its parameters were drawn, never ran: not rerun)
    interrupted = [t for t in study.get_trials() if t.user_attrs.get(search.INTERRUPTED_ATTR)
                   and set(t.params) == set(counted[0].params)]
    assert all(any(c.params == t.params for c in counted) for t in interrupted)
    assert f"{sum(search.counted(t) for t in before)} skipped" in result.stderr


def test_a_warm_started_search_begins_with_the_grids_runs(tmp_path):
    uri = f"tracking.uri={store_uri(tmp_path)}"
    grid = run_cli(["--multirun", "model.hidden_size=8,16", "train.lr=0.01,0.05",
                    "data.noise=0.06", "seed=1", "train.epochs=200", uri], tmp_path)
    assert grid.returncode == 0, grid.stderr
    _, grid_runs = children_of_sweeps(tmp_path)
    result = run_cli(["--multirun", "search=optuna", "hydra.sweeper.warm_start=true",
                      "hydra.sweeper.n_trials=2", "train.epochs=200", uri], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4 runs of earlier sweeps added (warm start)" in result.stderr
    trials = the_study(tmp_path).trials
    assert len(trials) == 4 + 2
    grid_by_id = {r.info.run_id: r for r in grid_runs}
    for trial in trials[:4]:  # the grid's runs, as the first trials
        run = grid_by_id[trial.user_attrs[search.RUN_ATTR]]
        assert trial.value == run.data.metrics["true_mse"]
        assert {k: str(v) for k, v in trial.params.items()} \
            == {k: run.data.params[k] for k in trial.params}
    assert {t.user_attrs[search.RUN_ATTR] for t in trials[:4]} == set(grid_by_id)
    assert all(search.counted(t) for t in trials[4:])
