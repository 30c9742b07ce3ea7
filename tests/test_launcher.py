"""hydra/launcher=local (src/hydra_plugins/scratchnet_joblib_launcher): Hydra's joblib
launcher whose workers are forked from a server that did their imports once, find Hydra's
plugins once, not once per job, and compose a job's config in full once per shape of
overrides.

A tiny Hydra app, run as a real multirun in real loky workers, marks the plugin registry
each job sees and prints how many jobs of its worker have marked it, and whether its worker
started with scratchnet's worker imports done. With the local launcher the registry persists
through a worker's jobs and the imports were done; with Hydra's own joblib launcher every job
gets a newly discovered registry in a fresh worker, which these tests also check so that they
can fail.

The reused compositions are checked against Hydra's own: in-process, job by job, over
overrides of every kind; and end to end, every job's .hydra/ files of a real sweep on the
local launcher against the same sweep on Hydra's joblib launcher."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from conftest import CONF
from hydra_plugins import scratchnet_joblib_launcher as local

APP = textwrap.dedent('''
    import os
    import sys
    import hydra
    from hydra.core.plugins import Plugins

    @hydra.main(version_base="1.3", config_path=None, config_name="app")
    def main(cfg):
        registry = Plugins.instance()
        registry.jobs_seen = getattr(registry, "jobs_seen", 0) + 1
        preloaded = "scratchnet.worker_preload" in sys.modules
        print(f"job {cfg.x} pid {os.getpid()} preloaded {preloaded} "
              f"registry seen by {registry.jobs_seen} jobs", flush=True)

    if __name__ == "__main__":
        from hydra.core.config_store import ConfigStore
        ConfigStore.instance().store(name="app", node={"x": 0})
        main()
''')


def run_app(folder: Path, launcher: str) -> list[str]:
    (folder / "app.py").write_text(APP)
    # two workers: with n_jobs=1 joblib runs the jobs in the launching process itself
    done = subprocess.run([sys.executable, "app.py", "--multirun", "x=1,2,3,4,5,6",
                           f"hydra/launcher={launcher}", "hydra.launcher.n_jobs=2"],
                          cwd=folder, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("job ")]


def counts_per_worker(lines: list[str]) -> dict[str, list[int]]:
    """worker pid -> for each of its jobs in order, how many jobs had seen its registry."""
    counts: dict[str, list[int]] = {}
    for line in lines:
        counts.setdefault(line.split()[3], []).append(int(line.split()[-2]))
    return counts


def test_a_worker_keeps_the_plugins_it_found(tmp_path):
    lines = run_app(tmp_path, "scratchnet_local")
    assert all(" preloaded True " in line for line in lines)  # forked from the warm server
    counts = counts_per_worker(lines)
    assert sum(map(len, counts.values())) == 6
    assert max(map(len, counts.values())) >= 3  # 6 jobs on 2 workers
    for seen in counts.values():
        assert seen == list(range(1, len(seen) + 1))


def test_hydra_joblib_launcher_finds_them_again_for_every_job(tmp_path):
    lines = run_app(tmp_path, "joblib")
    assert all(" preloaded False " in line for line in lines)  # fresh interpreters
    counts = counts_per_worker(lines)
    assert sum(map(len, counts.values())) == 6
    assert max(map(len, counts.values())) >= 3
    assert all(seen == [1] * len(seen) for seen in counts.values())


MASTER = ["hydra/launcher=local", "hydra.launcher.n_jobs=2", "train.epochs=100",
          "hydra.job.config.override_dirname.exclude_keys=[seed]"]
JOBS = [  # a grid, then overrides of other kinds, each kind twice so that it is reused
    *([f"model.hidden_size={h}", f"train.lr={lr}", f"seed={s}"]
      for h in (8, 16) for lr in (0.01, 0.5) for s in (1, 2)),
    ["train.lr=0.001234", "data.rng=numpy"], ["train.lr=7e-05", "data.rng=r"],  # Optuna-like
    ["tracking.experiment=a b", "seed=3"], ["tracking.experiment='x=y,z'", "seed=4"],
    ["tracking.experiment=null", "seed=5"], ["tracking.experiment=true", "seed=6"],
    ["+extra=1", "seed=2"], ["+extra=2", "seed=3"], ["++seed=7"], ["++seed=8"],
    ["search=optuna", "seed=1"], ["search=optuna", "seed=2"], ["~seed"], ["~seed"],
    ["data={noise: 0.1}"], ["data={noise: 0.2}"],
]


@pytest.fixture(scope="module")
def loader():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def test_a_reused_composition_is_hydras_own(loader):
    master = loader.load_configuration("config", MASTER, RunMode.MULTIRUN)
    local._composed.clear()
    for job in JOBS:
        want = loader.load_sweep_config(master, job)
        got = local.ReusingConfigLoader(loader).load_sweep_config(master, job)
        assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(want), job
        assert OmegaConf.is_struct(got) and not OmegaConf.is_readonly(got.hydra)
    # one composition each for: the grid's 8 jobs; the two Optuna-like; the four
    # tracking.experiment ones; +extra=1; +extra=2; ++seed=7; ++seed=8; the two
    # search=optuna (same group choice, seeds differ); the two ~seed; data={noise: 0.1};
    # data={noise: 0.2}
    assert len(local._composed) == 11


def test_a_composition_is_reused_only_for_the_same_shape(loader):
    master = loader.load_configuration("config", MASTER, RunMode.MULTIRUN)
    local._composed.clear()
    reusing = local.ReusingConfigLoader(loader)
    for job in (["seed=1"], ["seed=2"], ["train.lr=0.1"], ["seed=1", "train.lr=0.1"],
                ["train.lr=0.1", "seed=1"], ["+seed2=1"], ["search=optuna"]):
        reusing.load_sweep_config(master, job)
    assert len(local._composed) == 6  # ["seed=2"] reuses ["seed=1"]; order is a shape


def hydra_files(folder: Path) -> dict[str, str]:
    """job number/file -> text of every job's .hydra/ files, with the sweep's folder and
    timestamp and the test's folder taken out (they differ between any two sweeps)."""
    files = {}
    for path in sorted(folder.glob("multirun/*/*/*/.hydra/*.yaml")):
        job_dir = path.parent.parent
        text = path.read_text().replace(str(job_dir.parent), "<sweep>").replace(str(folder), "")
        files[f"{job_dir.name}/{path.name}"] = text
    return files


def test_every_job_of_a_sweep_gets_the_config_hydras_launcher_gives(tmp_path):
    grid = ["model.hidden_size=4,8", "train.lr=0.05,0.1", "seed=1,2", "data.noise=0.06",
            "train.epochs=20",
            "hydra.callbacks.sweep.report_dir=reports"]
    texts = {}
    for launcher in ("local", "joblib"):
        folder = tmp_path / launcher
        folder.mkdir()
        done = subprocess.run([sys.executable, "-m", "scratchnet.train", "--multirun", *grid,
                               f"hydra/launcher={launcher}", "hydra.launcher.n_jobs=2",
                               f"tracking.uri=sqlite:///{folder / 'mlflow.db'}"],
                              cwd=folder, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        texts[launcher] = hydra_files(folder)
    assert len(texts["local"]) == 8 * 3  # config.yaml, hydra.yaml, overrides.yaml a job
    for name, text in texts["joblib"].items():  # the launcher's own names aside
        for joblib_name, local_name in LAUNCHER_NAMES:
            text = text.replace(joblib_name, local_name)
        assert texts["local"][name] == text, name


LAUNCHER_NAMES = [("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                   "hydra_plugins.scratchnet_joblib_launcher.LocalLauncher"),
                  ("hydra/launcher=joblib", "hydra/launcher=local"),
                  ("launcher: joblib", "launcher: local")]
