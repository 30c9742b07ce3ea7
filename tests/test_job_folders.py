"""Hydra's own job-folder options work with a sweep: each job in a folder of its own and
running there (hydra.job.chdir), its runs still recorded in the store the command names,
relative to where it was started, as Hydra's released launchers run them."""

import pytest
from mlflow import MlflowClient

from conftest import run_cli
from scratchnet.tracking import TAG_PARENT


@pytest.mark.slow
def test_a_sweep_with_a_folder_per_job_and_chdir(tmp_path):
    result = run_cli(["--multirun", "model.hidden_size=8,16", "train.lr=0.05", "seed=1,2",
                      "data.noise=0.06", "train.epochs=50", "hydra.launcher.n_jobs=2",
                      "hydra.sweep.subdir=job_${hydra.job.num}", "hydra.job.chdir=True"],
                     tmp_path)  # tracking.uri: the default, sqlite:///mlflow.db
    assert result.returncode == 0, result.stderr
    assert "[sweep] 4/4 done, 0 skipped, 0 diverged, 0 failed" in result.stderr
    [sweep_dir] = (tmp_path / "multirun").glob("*/*")
    assert sorted(p.name for p in sweep_dir.glob("job_*")) == [f"job_{k}" for k in range(4)]
    assert not list(sweep_dir.rglob("mlflow.db"))  # no store inside a job's folder
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("scratchnet")
    children = [r for r in client.search_runs([experiment.experiment_id])
                if TAG_PARENT in r.data.tags]
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
