"""hydra/launcher=local (src/hydra_plugins/scratchnet_joblib_launcher): Hydra's joblib
launcher whose workers find Hydra's plugins once, not once per job.

A tiny Hydra app, run as a real multirun in real loky workers, marks the plugin registry
each job sees and prints how many jobs of its worker have marked it. With the local
launcher the registry persists through a worker's jobs; with Hydra's own joblib launcher
every job gets a newly discovered one, which this test also checks so that it can fail."""

import subprocess
import sys
import textwrap
from pathlib import Path

APP = textwrap.dedent('''
    import os
    import hydra
    from hydra.core.plugins import Plugins

    @hydra.main(version_base="1.3", config_path=None, config_name="app")
    def main(cfg):
        registry = Plugins.instance()
        registry.jobs_seen = getattr(registry, "jobs_seen", 0) + 1
        print(f"job {cfg.x} pid {os.getpid()} registry seen by {registry.jobs_seen} jobs",
              flush=True)

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
    counts = counts_per_worker(run_app(tmp_path, "scratchnet_local"))
    assert sum(map(len, counts.values())) == 6
    assert max(map(len, counts.values())) >= 3  # 6 jobs on 2 workers
    for seen in counts.values():
        assert seen == list(range(1, len(seen) + 1))


def test_hydra_joblib_launcher_finds_them_again_for_every_job(tmp_path):
    counts = counts_per_worker(run_app(tmp_path, "joblib"))
    assert sum(map(len, counts.values())) == 6
    assert max(map(len, counts.values())) >= 3
    assert all(seen == [1] * len(seen) for seen in counts.values())
