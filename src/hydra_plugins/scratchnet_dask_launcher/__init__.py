"""Hydra's joblib launcher on a Dask cluster (``hydra/launcher=dask``).

Hydra finds launchers only in the ``hydra_plugins`` namespace package, hence this folder
beside ``scratchnet``. The launcher is Hydra's joblib launcher with one difference: that
one always runs joblib's loky backend (it overwrites ``backend``), this one passes
``backend: dask`` to ``joblib.Parallel``, which submits the jobs to the sweep's
``distributed.Client`` (``scratchnet.cluster``).
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher._core import execute_job, process_joblib_cfg
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

log = logging.getLogger(__name__)


@dataclass
class DaskLauncherConf(JobLibLauncherConf):
    _target_: str = "hydra_plugins.scratchnet_dask_launcher.DaskLauncher"
    backend: str | None = "dask"
    # tcp://host:8786 of a running Dask scheduler; null: a local cluster for the sweep
    scheduler_address: str | None = None


# The schema; conf/hydra/launcher/dask.yaml extends it with this project's values.
ConfigStore.instance().store(group="hydra/launcher", name="scratchnet_dask",
                             node=DaskLauncherConf, provider="scratchnet")


class DaskLauncher(JoblibLauncher):
    def __init__(self, scheduler_address: str | None = None, **joblib_kwargs) -> None:
        super().__init__(**joblib_kwargs)  # every other key goes to joblib.Parallel
        self.scheduler_address = scheduler_address

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        """As hydra_joblib_launcher._core.launch, with the configured backend kept."""
        from joblib import Parallel, delayed, parallel_config

        from scratchnet import cluster

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        # the sweep callback has usually started it already; the same client then
        cluster.start(self.scheduler_address, self.joblib.get("n_jobs", -1))
        joblib_cfg = dict(self.joblib)
        process_joblib_cfg(joblib_cfg)
        log.info(f"Joblib.Parallel({joblib_cfg}) is launching {len(job_overrides)} jobs")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        singleton_state = Singleton.get_state()
        # joblib's documented way to use its dask backend: parallel_config, which also
        # registers it (Parallel alone knows only its built-in backends)
        with parallel_config(backend=joblib_cfg.pop("backend") or "dask"):
            runs = Parallel(**joblib_cfg)(
                delayed(execute_job)(initial_job_idx + idx, overrides, self.hydra_context,
                                     self.config, self.task_function, singleton_state)
                for idx, overrides in enumerate(job_overrides))
        assert all(isinstance(run, JobReturn) for run in runs)
        return runs
