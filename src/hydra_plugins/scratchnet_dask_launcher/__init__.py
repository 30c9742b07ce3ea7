"""``hydra/launcher=dask``: a sweep's jobs as tasks on a Dask cluster.

A launcher on Hydra's public Launcher plugin API, written the way hydra-submitit-launcher
is: each job's config is composed and run in the worker by ``hydra.core.utils.run_job``, the
sweep's context restored once per worker and launch (``scratchnet.sweep.launching``).
The cluster (a running scheduler, or a local cluster for the sweep) is scratchnet's
``sweep.cluster``; the sweep callback has usually connected to it already.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from scratchnet.sweep.launching import WorkerLauncher, execute_job


@dataclass
class DaskLauncherConf:
    _target_: str = "hydra_plugins.scratchnet_dask_launcher.DaskLauncher"
    # tcp://host:8786 of a running Dask scheduler; null: a local cluster for the sweep
    scheduler_address: str | None = None
    n_jobs: int = -1  # worker processes of a local cluster; -1 = all cores


ConfigStore.instance().store(group="hydra/launcher", name="scratchnet_dask",
                             node=DaskLauncherConf, provider="scratchnet")


class DaskLauncher(WorkerLauncher):
    def __init__(self, scheduler_address: str | None = None, n_jobs: int = -1) -> None:
        self.scheduler_address, self.n_jobs = scheduler_address, n_jobs

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from scratchnet.sweep import cluster

        client = cluster.start(self.scheduler_address, self.n_jobs)
        context = self.start("Dask", job_overrides)
        futures = [client.submit(execute_job, context, initial_job_idx + idx, list(overrides),
                                 pure=False)
                   for idx, overrides in enumerate(job_overrides)]
        return client.gather(futures)
