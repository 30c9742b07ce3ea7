"""Hydra's joblib launcher, finding Hydra's plugins once per worker instead of once per job
(``hydra/launcher=local``, the default).

Hydra's joblib launcher sends each job Hydra's global state without its plugin registry,
and restoring that state runs Hydra's plugin discovery again, which executes every
installed plugin's module (Optuna's and submitit's config classes among them): about 50 ms
of every job, a second and a half of a 54-run sweep on 2 workers. Here each worker keeps
the registry it found for its first job; the rest of the state is restored for every job
as Hydra does it. Same keys as the joblib launcher (n_jobs, ...), the same loky workers.

``launch_jobs`` is also the Dask launcher's (scratchnet_dask_launcher), with its backend.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
import contextlib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

log = logging.getLogger(__name__)


@dataclass
class LocalLauncherConf(JobLibLauncherConf):
    _target_: str = "hydra_plugins.scratchnet_joblib_launcher.LocalLauncher"


# The schema; conf/hydra/launcher/local.yaml selects it.
ConfigStore.instance().store(group="hydra/launcher", name="scratchnet_local",
                             node=LocalLauncherConf, provider="scratchnet")


class LocalLauncher(JoblibLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        return launch_jobs(self, job_overrides, initial_job_idx, loky_parallel_kwargs(self.joblib),
                           contextlib.nullcontext())


def loky_parallel_kwargs(joblib_settings: dict) -> dict:
    """joblib.Parallel's keyword arguments for a joblib launcher's settings, made as Hydra's
    joblib launcher makes them: loky (its threading backend cannot run Hydra jobs), numbers
    parsed. The sweep's worker warm-up (scratchnet.sweep) passes the same arguments, which is
    what makes the launcher's Parallel call reuse the warm workers."""
    kwargs = {**joblib_settings, "backend": "loky"}
    _core.process_joblib_cfg(kwargs)
    return kwargs


def launch_jobs(launcher: JoblibLauncher, job_overrides: Sequence[Sequence[str]],
                initial_job_idx: int, parallel_kwargs: dict,
                backend_context: contextlib.AbstractContextManager) -> list[JobReturn]:
    """hydra_joblib_launcher._core.launch with this module's execute_job: the jobs go to
    ``joblib.Parallel(**parallel_kwargs)``, called inside ``backend_context``."""
    from joblib import Parallel, delayed

    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    settings = ",".join(f"{k}={v}" for k, v in parallel_kwargs.items())
    log.info(f"Joblib.Parallel({settings}) is launching {len(job_overrides)} jobs")
    log.info(f"Launching jobs, sweep output dir : {sweep_dir}")
    for idx, overrides in enumerate(job_overrides):
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
    singleton_state = Singleton.get_state()
    with backend_context:
        runs = Parallel(**parallel_kwargs)(
            delayed(execute_job)(initial_job_idx + idx, overrides, launcher.hydra_context,
                                 launcher.config, launcher.task_function, singleton_state)
            for idx, overrides in enumerate(job_overrides))
    assert all(isinstance(run, JobReturn) for run in runs)
    return runs


def execute_job(idx: int, overrides: Sequence[str], hydra_context, config, task_function,
                singleton_state: dict) -> JobReturn:
    """Hydra's joblib execute_job, given this worker's plugin registry with the state, so
    that restoring the state does not discover the plugins again."""
    instances = {**singleton_state["instances"], Plugins: _plugins_of_this_worker()}
    return _core.execute_job(idx, overrides, hydra_context, config, task_function,
                             {**singleton_state, "instances": instances})


@functools.cache
def _plugins_of_this_worker() -> Plugins:
    """Hydra's plugin registry, discovered once in this process (as set_state would)."""
    return Plugins.instance()
