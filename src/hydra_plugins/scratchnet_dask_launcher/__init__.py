"""``hydra/launcher=dask``: a sweep's jobs as tasks on a Dask cluster.

A launcher on Hydra's public Launcher plugin API, written the way hydra-submitit-launcher
is: each job's config is composed and run in the worker by ``hydra.core.utils.run_job``.
The cluster (a running scheduler, or a local cluster for the sweep) is scratchnet's
``sweep.cluster``; the sweep callback has usually connected to it already.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


@dataclass
class DaskLauncherConf:
    _target_: str = "hydra_plugins.scratchnet_dask_launcher.DaskLauncher"
    # tcp://host:8786 of a running Dask scheduler; null: a local cluster for the sweep
    scheduler_address: str | None = None
    n_jobs: int = -1  # worker processes of a local cluster; -1 = all cores


ConfigStore.instance().store(group="hydra/launcher", name="scratchnet_dask",
                             node=DaskLauncherConf, provider="scratchnet")


class DaskLauncher(Launcher):
    def __init__(self, scheduler_address: str | None = None, n_jobs: int = -1) -> None:
        self.scheduler_address, self.n_jobs = scheduler_address, n_jobs
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from scratchnet.sweep import cluster

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        client = cluster.start(self.scheduler_address, self.n_jobs)
        log.info(f"Dask is launching {len(job_overrides)} jobs, sweep output dir: {sweep_dir}")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        state = Singleton.get_state()
        futures = [client.submit(execute_job, initial_job_idx + idx, list(overrides),
                                 self.hydra_context, self.config, self.task_function, state,
                                 pure=False)
                   for idx, overrides in enumerate(job_overrides)]
        return client.gather(futures)


def execute_job(idx: int, overrides: list, hydra_context: HydraContext, config: DictConfig,
                task_function: TaskFunction, singleton_state: dict[Any, Any]) -> JobReturn:
    """One job in a Dask worker: its config composed from the sweep's, then Hydra's run_job
    (job folder, .hydra/ files, logging, callbacks), as Hydra's own launchers do."""
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
