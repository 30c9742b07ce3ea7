"""Faults during a sweep lose nothing: a dying job, Ctrl-C, SIGKILL, then the same command."""

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import start_sweep, store_uri
from scratchnet.tracking import TAG_CONFIG_HASH, TAG_FAILURE, TAG_PARENT, TAG_SWEEP_KEY

# Real sweeps in subprocesses, killed and resumed: the slow suite (pytest -m slow).
pytestmark = pytest.mark.slow

SMALL = ["model.hidden_size=4,16", "train.lr=0.05,0.1", "data.noise=0.06", "seed=1,2",
         "hydra.launcher.n_jobs=2"]


def jobs_done(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.glob("multirun/*/*/progress.jsonl"))


def wait_until(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def children(folder: Path):
    client = MlflowClient(store_uri(folder))
    experiment = client.get_experiment_by_name("scratchnet")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if TAG_PARENT in r.data.tags], [r for r in runs if TAG_SWEEP_KEY in r.data.tags]


def assert_complete_once(folder: Path, expected: int) -> None:
    """Every job FINISHED exactly once, nothing left RUNNING, one parent."""
    kids, parents = children(folder)
    finished = Counter(r.data.tags[TAG_CONFIG_HASH] for r in kids if r.info.status == "FINISHED")
    assert len(finished) == expected and set(finished.values()) == {1}
    assert not [r for r in kids if r.info.status == "RUNNING"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_a_job_whose_process_dies_is_failed_and_the_others_finish(tmp_path):
    process = start_sweep(tmp_path, *SMALL, "train.epochs=200",
                    "+hydra.callbacks.die._target_=fault_injection.DieInJob",
                    "+hydra.callbacks.die.when='train.lr=0.1'")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: 4 of 8 jobs crashed: ")
    kids, _ = children(tmp_path)
    by_lr = {lr: [r for r in kids if r.data.params["train.lr"] == lr] for lr in ("0.05", "0.1")}
    assert [r.info.status for r in by_lr["0.05"]] == ["FINISHED"] * 4
    assert [r.info.status for r in by_lr["0.1"]] == ["FAILED"] * 4
    assert {r.data.tags[TAG_FAILURE] for r in by_lr["0.1"]} == {
        "job process died with exit code 3"}
    assert "Crashed runs: 4" in out  # the report still comes out, counting them


def test_ctrl_c_stops_within_seconds_and_a_rerun_completes(tmp_path):
    process = start_sweep(tmp_path, *SMALL, "train.epochs=3000")
    wait_until(lambda: jobs_done(tmp_path) >= 2)
    stopped = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - stopped < 10
    assert process.returncode != 0
    assert err.strip().splitlines()[-1].startswith("interrupted")
    kids, parents = children(tmp_path)
    assert not [r for r in kids if r.info.status == "RUNNING"]
    killed = [r for r in kids if r.info.status == "KILLED"]
    assert all(r.data.tags[TAG_FAILURE].startswith("interrupted") for r in killed)
    assert parents[0].info.status == "KILLED"
    again = start_sweep(tmp_path, *SMALL, "train.epochs=3000")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert_complete_once(tmp_path, 8)


def sigkill_then_resume(folder: Path, after_jobs: int, extra_delay: float) -> None:
    process = start_sweep(folder, *SMALL, "train.epochs=3000")
    wait_until(lambda: jobs_done(folder) >= after_jobs)
    time.sleep(extra_delay)
    os.killpg(process.pid, signal.SIGKILL)  # the launcher, its workers and their jobs
    process.wait(timeout=30)
    again = start_sweep(folder, *SMALL, "train.epochs=3000")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert_complete_once(folder, 8)
    kids, _ = children(folder)
    assert all(r.info.status in ("FINISHED", "KILLED") for r in kids)


def test_sigkill_mid_sweep_then_the_same_command_finishes_it(tmp_path):
    sigkill_then_resume(tmp_path, after_jobs=2, extra_delay=0.2)


@pytest.mark.parametrize("attempt", range(5))
def test_sigkill_at_a_random_point(tmp_path, attempt):
    rng = random.Random(attempt)
    sigkill_then_resume(tmp_path, after_jobs=rng.randint(0, 6), extra_delay=rng.uniform(0, 1.5))
