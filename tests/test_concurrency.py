"""Concurrency on a store that does not exist yet: parallel workers, and two sweeps at once.

Measured before the store was created once, under a lock, before fan-out: two workers
migrating a new sqlite store together failed with 'duplicate column name: step' and
Hydra aborted the multirun."""

import pytest
from mlflow import MlflowClient

from conftest import start_sweep, store_uri
from scratchnet.tracking import TAG_PARENT, TAG_SWEEP_KEY

# Real sweeps in subprocesses (some started together): the slow suite (pytest -m slow).
pytestmark = pytest.mark.slow

GRID = ["model.hidden_size=4,8", "train.lr=0.05,0.1", "data.noise=0.06", "seed=1,2",
        "train.epochs=50", "tracking.log_every=10"]


def runs_in(folder):
    client = MlflowClient(store_uri(folder))
    experiment = client.get_experiment_by_name("scratchnet")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def fresh_store_sweep(folder, n_jobs: int) -> None:
    process = start_sweep(folder, *GRID, f"hydra.launcher.n_jobs={n_jobs}")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    runs = runs_in(folder)
    kids = [r for r in runs if TAG_PARENT in r.data.tags]
    assert len(kids) == 8 and {r.info.status for r in kids} == {"FINISHED"}
    assert len([r for r in runs if TAG_SWEEP_KEY in r.data.tags]) == 1


@pytest.mark.parametrize("n_jobs", [2, 4])
@pytest.mark.parametrize("attempt", range(20))
def test_fresh_store_sweeps_repeatedly_lose_nothing(tmp_path, n_jobs, attempt):
    fresh_store_sweep(tmp_path, n_jobs)


def test_two_sweeps_started_together_both_complete_under_their_own_parent(tmp_path):
    first = start_sweep(tmp_path, *GRID, "hydra.launcher.n_jobs=2")
    second = start_sweep(tmp_path, "model.hidden_size=32", "train.lr=0.01,0.02,0.03", "seed=5",
                   "data.noise=0.03", "train.epochs=50", "hydra.launcher.n_jobs=2")
    for process in (first, second):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    runs = runs_in(tmp_path)
    parents = {r.info.run_id: r for r in runs if TAG_SWEEP_KEY in r.data.tags}
    assert len(parents) == 2 and {p.info.status for p in parents.values()} == {"FINISHED"}
    sizes = sorted(int(p.data.params["sweep.size"]) for p in parents.values())
    assert sizes == [3, 8]
    for parent_id, parent in parents.items():
        kids = [r for r in runs if r.data.tags.get(TAG_PARENT) == parent_id]
        assert len(kids) == int(parent.data.params["sweep.size"])
        assert {r.info.status for r in kids} == {"FINISHED"}
