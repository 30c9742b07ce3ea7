"""search=race end to end: its keys checked before anything is written (in this process),
and real races in subprocesses (slow): ordinary child runs with a grid job's config hash,
what it prints and tags, the report's section, a grid's runs reused, resume after SIGKILL."""

import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import compose_config, one_error_line, run_train, start_sweep, store_uri
from scratchnet.config import config_hash
from scratchnet.sweep import race
from scratchnet.tracking import TAG_CONFIG_HASH, TAG_PARENT, TAG_SWEEP_KEY
from test_faults import jobs_done, wait_until
from test_grid import multirun_hydra

# A race of one condition over 8 seeds (first test at 5): lr=0.01 is far behind
SMALL = ["model.hidden_size=8,16", "train.lr=0.01,0.1", "data.noise=0.06", "seed=range(1,9)",
         "hydra.launcher.n_jobs=2"]


# ---------------------------------------------------------------- the plan and its checks

def test_the_default_race_is_the_default_grid_over_a_pool_of_20_seeds():
    hydra = multirun_hydra(["search=race"])
    plan = race.plan(hydra.sweeper, [])
    assert plan.pool == tuple(range(1, 21)) and plan.first_test == 5 and plan.alpha == 0.05
    assert [c for c in plan.conditions] == [("data.noise=0.03",), ("data.noise=0.06",)]
    assert len(plan.conditions[("data.noise=0.06",)]) == 9 and plan.full_grid == 360
    assert plan.overrides((("data.noise=0.06",), ("model.hidden_size=8", "train.lr=0.1"), 3)) \
        == ["data.noise=0.06", "model.hidden_size=8", "train.lr=0.1", "seed=3"]


def test_a_race_job_has_the_config_hash_of_the_same_grid_job():
    plan = race.plan(multirun_hydra(["search=race"]).sweeper, [])
    job = plan.overrides((("data.noise=0.03",), ("model.hidden_size=16", "train.lr=0.05"), 7))
    grid_job = ["model.hidden_size=16", "train.lr=0.05", "data.noise=0.03", "seed=7"]
    assert config_hash(compose_config(job)) == config_hash(compose_config(grid_job))


def test_the_command_line_replaces_the_races_axes():
    hydra = multirun_hydra(["search=race", "model.hidden_size=4,8", "seed=range(1,7)"])
    plan = race.plan(hydra.sweeper, list(hydra.overrides.task))
    assert plan.pool == tuple(range(1, 7)) and plan.full_grid == 2 * 3 * 2 * 6


@pytest.mark.parametrize("override,names", [
    ("hydra.sweeper.first_test=1", ["hydra.sweeper.first_test", ">= 2", "1"]),
    ("hydra.sweeper.first_test=21", ["hydra.sweeper.first_test", "<= 20", "21"]),
    ("hydra.sweeper.alpha=0", ["hydra.sweeper.alpha", "(0, 1)", "0"]),
    ("hydra.sweeper.alpha=1.5", ["hydra.sweeper.alpha", "(0, 1)", "1.5"]),
    ("hydra.sweeper.max_runs=0", ["hydra.sweeper.max_runs", ">= 1"]),
    ("~hydra.sweeper.params.seed", ["hydra.sweeper.params.seed", "needs a seed axis"]),
    ("seed=1", ["hydra.sweeper.params.seed", "a pool of 1 seed"]),
    ("seed=1,1,2", ["hydra.sweeper.params.seed", "distinct"]),
    ("train.lr=0.1,-1", ["train.lr", "-1"]),
], ids=["first_test-low", "first_test-high", "alpha-0", "alpha-1.5", "max_runs", "no-seed",
        "one-seed", "repeated-seed", "bad-value"])
def test_bad_race_input_stops_with_one_line_before_anything_is_written(
        tmp_path, monkeypatch, capsys, override, names):
    result = run_train(["--multirun", "search=race", override], tmp_path, monkeypatch, capsys,
                       seconds=30)
    one_error_line(result, *names)
    assert list(tmp_path.iterdir()) == []  # no store, no sweep folder


# ---------------------------------------------------------------- real races (slow suite)

def sweep_records(folder: Path):
    """(children, parents) in the folder's store."""
    client = MlflowClient(store_uri(folder))
    experiment = client.get_experiment_by_name("scratchnet")
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    return ([r for r in runs if TAG_PARENT in r.data.tags],
            [r for r in runs if TAG_SWEEP_KEY in r.data.tags])


def finished_hashes(children) -> Counter:
    return Counter(r.data.tags[TAG_CONFIG_HASH] for r in children if r.info.status == "FINISHED")


def run_race(folder: Path, *args: str) -> tuple[str, str]:
    process = start_sweep(folder, "search=race", *SMALL, *args)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return out, err


@pytest.mark.slow
def test_a_race_runs_ordinary_children_prints_rounds_and_reports_what_it_found(tmp_path):
    out, err = run_race(tmp_path)
    (first,) = [line for line in err.splitlines() if line.startswith("[race] round 1 at 5 seeds")]
    assert "2 of 4 left; dropped hidden_size=8 lr=0.01 (p=" in first
    assert "hidden_size=16 lr=0.01 (p=" in first
    kids, parents = sweep_records(tmp_path)
    (parent,) = parents
    tags = parent.data.tags
    used = int(tags[race.TAG_RUNS])
    assert tags[race.TAG_FULL] == "32" and used == len(kids) < 32
    assert f"[race] {used} of 32 runs" in err
    assert tags[race.TAG_BEST].startswith("all: hidden_size=")
    # every run an ordinary child: its parent, and the config hash of the same grid job
    for kid in kids:
        assert kid.data.tags[TAG_PARENT] == parent.info.run_id
        params = kid.data.params
        job = [f"model.hidden_size={params['model.hidden_size']}",
               f"train.lr={params['train.lr']}", "data.noise=0.06", f"seed={params['seed']}"]
        assert kid.data.tags[TAG_CONFIG_HASH] == config_hash(compose_config(job))
    assert set(finished_hashes(kids).values()) == {1}
    # the report's section and figure
    assert f"Race: {used} of 32 runs" in out and "dropped hidden_size=8 lr=0.01 at round 1" in out
    (folder,) = (tmp_path / "reports").iterdir()
    assert (folder / "race.png").stat().st_size > 10_000
    page = (folder / "report.html").read_text()
    assert "<h2>The race</h2>" in page and "Dropped:" in page


@pytest.mark.slow
def test_a_grids_runs_answer_the_race_without_training_again(tmp_path):
    grid = start_sweep(tmp_path, *[a for a in SMALL if not a.startswith(("seed", "hydra.sw"))],
                       "seed=1,2,3")
    _, err = grid.communicate(timeout=300)
    assert grid.returncode == 0, err
    _, err = run_race(tmp_path)
    assert "12 skipped" in err  # the grid's 4 settings x 3 seeds, in the race's first test
    kids, parents = sweep_records(tmp_path)
    assert len(parents) == 2 and set(finished_hashes(kids).values()) == {1}


@pytest.mark.slow
def test_a_race_killed_and_rerun_ends_as_an_uninterrupted_race(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir()
    killed.mkdir()
    run_race(whole)
    process = start_sweep(killed, "search=race", *SMALL)
    wait_until(lambda: jobs_done(killed) >= 21)  # into the rounds after the first test
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    run_race(killed)
    (done,), (again,) = sweep_records(whole)[1], sweep_records(killed)[1]
    for tag in (race.TAG_RUNS, race.TAG_BEST, race.TAG_STOPPED):
        assert again.data.tags[tag] == done.data.tags[tag], tag
    kids_whole, kids_killed = sweep_records(whole)[0], sweep_records(killed)[0]
    assert finished_hashes(kids_killed) == finished_hashes(kids_whole)  # no run twice
    assert not [r for r in kids_killed if r.info.status == "RUNNING"]


def test_a_races_progress_line_gives_its_total_and_eta_as_bounds():
    from scratchnet.sweep.progress import Summary

    records = [{"status": "done", "time": float(t)} for t in range(10)]
    assert Summary(records, 360, at_most=True).line(12.0).startswith(
        "[sweep] 10/at most 360 done, ")
    assert Summary(records, 360, at_most=True).line(12.0).endswith("ETA at most 5:50")
    assert Summary(records, 360, at_most=True).line(12.0, final=True).endswith("elapsed 0:12")
    assert Summary(records, 360).line(12.0).endswith("ETA 5:50")  # a grid's: as before
