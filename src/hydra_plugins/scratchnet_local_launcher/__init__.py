"""``hydra/launcher=local``, the default: a sweep's jobs in parallel worker processes on this
machine, through joblib (``joblib.Parallel``, loky workers), as Hydra's joblib launcher runs
them; but the sweep's context is carried to each worker once per launch rather than with every
job (``scratchnet.sweep.launching``). Hydra's own launcher stays ``hydra/launcher=joblib``.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from scratchnet.sweep.launching import WorkerLauncher, execute_job


@dataclass
class LocalLauncherConf:
    _target_: str = "hydra_plugins.scratchnet_local_launcher.LocalLauncher"
    n_jobs: int = -1  # worker processes; -1 = all cores


ConfigStore.instance().store(group="hydra/launcher", name="scratchnet_local",
                             node=LocalLauncherConf, provider="scratchnet")


class LocalLauncher(WorkerLauncher):
    def __init__(self, n_jobs: int = -1) -> None:
        self.n_jobs = n_jobs

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from joblib import Parallel, delayed

        context = self.start(f"joblib with {self.n_jobs} workers", job_overrides)
        return Parallel(n_jobs=self.n_jobs, backend="loky")(
            delayed(execute_job)(context, initial_job_idx + idx, overrides)
            for idx, overrides in enumerate(job_overrides))
