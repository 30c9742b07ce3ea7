"""One resolved config, one loss history, bit for bit: run alone, as a job of a sweep with
2 workers, of a sweep with 1 worker that runs the jobs in the reverse order, and as DVC's
train stage. Each source is a real run recorded in its own sqlite store; the histories are
compared with tobytes(), so even a last-bit difference fails. The sweeps and DVC run in
subprocesses: the slow suite."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from conftest import compose_config, dvc, git_copy, ok, run_cli, store_uri
from scratchnet.config import config_hash
from scratchnet.nn.training import train_network
from scratchnet.run import run
from scratchnet.tracking import TAG_CONFIG_HASH, TAG_PARENT, TAG_SWEEP_KEY

# the config under test, and a 2 x 2 grid around it (it is the grid's last job)
FIXED = ["train.lr=0.1", "data.noise=0.06", "train.epochs=400", "tracking.log_every=50"]
TARGET = ["model.hidden_size=8", "seed=2", *FIXED]


def history(client: MlflowClient, run_id: str, folder: Path) -> np.ndarray:
    """The full-precision loss per epoch of a run, from its history.csv artifact."""
    path = client.download_artifacts(run_id, "history.csv", str(folder))
    return np.loadtxt(path, delimiter=",", skiprows=1)[:, 1]


def job_history(folder: Path, grid: list[str], n_jobs: int, tmp_path: Path) -> np.ndarray:
    """Run a sweep in a subprocess, return the history of its job with the target config.
    fresh=true: every job runs, although the store already holds runs of these configs."""
    done = run_cli(["--multirun", *grid, *FIXED, f"hydra.launcher.n_jobs={n_jobs}",
                    f"tracking.uri={store_uri(folder)}", "hydra.callbacks.sweep.fresh=true"],
                   tmp_path)
    assert done.returncode == 0, done.stderr
    client = MlflowClient(store_uri(folder))
    experiment = client.get_experiment_by_name("scratchnet")
    parent = client.search_runs([experiment.experiment_id], f"tags.`{TAG_SWEEP_KEY}` LIKE '%'",
                                order_by=["attributes.start_time DESC"], max_results=1)[0]
    jobs = client.search_runs([experiment.experiment_id],
                              f"tags.`{TAG_PARENT}` = '{parent.info.run_id}'")
    assert len(jobs) == 4 and {r.info.status for r in jobs} == {"FINISHED"}
    wanted = config_hash(compose_config(TARGET))
    target = [r for r in jobs if r.data.tags[TAG_CONFIG_HASH] == wanted]
    assert len(target) == 1
    return history(client, target[0].info.run_id, folder)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, new_store) -> Path:
    """One store for the run alone and both sweeps (a new sqlite store costs seconds)."""
    folder = tmp_path_factory.mktemp("store")
    new_store(folder)
    return folder


@pytest.fixture(scope="module")
def alone(folder) -> np.ndarray:
    outcome = run(compose_config([*TARGET, f"tracking.uri={store_uri(folder)}"]))
    recorded = history(MlflowClient(store_uri(folder)), outcome.run_id, folder)
    assert recorded.tobytes() == outcome.result.fit.losses.tobytes()  # the artifact is exact
    assert len(recorded) == 400
    return recorded


@pytest.mark.slow
def test_in_a_sweep_with_two_workers(alone, folder, tmp_path):
    in_sweep = job_history(folder, ["model.hidden_size=4,8", "seed=1,2"], 2, tmp_path)
    assert in_sweep.tobytes() == alone.tobytes()


@pytest.mark.slow
def test_in_a_sweep_with_one_worker_and_the_jobs_reversed(alone, folder, tmp_path):
    # the target now runs first, in the launching process, after no other job
    in_sweep = job_history(folder, ["model.hidden_size=8,4", "seed=2,1"], 1, tmp_path)
    assert in_sweep.tobytes() == alone.tobytes()


def test_other_configs_give_other_histories(alone):
    """The comparison can fail: one changed value changes the history."""
    for change in ("seed=3", "train.lr=0.1000000001"):
        other = train_network(compose_config([*TARGET, change])).fit.losses
        assert other.tobytes() != alone.tobytes()


@pytest.mark.slow
def test_as_the_dvc_train_stage(alone, tmp_path):
    repo = git_copy(tmp_path / "repo", grid=None)
    params = asdict(compose_config(TARGET))  # the same config, composed and resolved
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ok(dvc(repo, "repro", "train"))
    table = np.loadtxt(repo / "plots" / "train" / "loss.csv", delimiter=",", skiprows=1)
    # the DVC plot data: the same history at DVC's 10 significant digits
    assert table[:, 1].tolist() == [float(f"{loss:.10g}") for loss in alone]
    client = MlflowClient(store_uri(repo))
    (recorded,) = client.search_runs([client.get_experiment_by_name("scratchnet").experiment_id])
    assert history(client, recorded.info.run_id, tmp_path).tobytes() == alone.tobytes()
