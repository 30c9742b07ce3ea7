"""Hydra's joblib launcher on a Dask cluster (``hydra/launcher=dask``).

Hydra finds launchers only in the ``hydra_plugins`` namespace package, hence this folder
beside ``scratchnet``. The launcher is the local one (scratchnet_joblib_launcher, Hydra's
joblib launcher) with one difference: that one always runs joblib's loky backend, this one
passes ``backend: dask`` to ``joblib.Parallel``, which submits the jobs to the sweep's
``distributed.Client`` (``scratchnet.cluster``).
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

from hydra_plugins.scratchnet_joblib_launcher import launch_jobs


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
        """As the local launcher's, with the configured backend kept."""
        from joblib import parallel_config

        from scratchnet import cluster

        # the sweep callback has usually started it already; the same client then
        cluster.start(self.scheduler_address, self.joblib.get("n_jobs", -1))
        parallel_kwargs = dict(self.joblib)
        process_joblib_cfg(parallel_kwargs)
        # joblib's documented way to use its dask backend: parallel_config, which also
        # registers it (Parallel alone knows only its built-in backends)
        backend = parallel_config(backend=parallel_kwargs.pop("backend") or "dask")
        # Dask workers can outlive a sweep and serve the next one, whose conf/ may have
        # changed: every job is composed in full (no ReusingConfigLoader).
        return launch_jobs(self, job_overrides, initial_job_idx, parallel_kwargs, backend)
