"""Hydra's joblib launcher, doing once what it does for every worker or job
(``hydra/launcher=local``, the default). Same keys as the joblib launcher (n_jobs, ...),
the same loky workers, the same job configs.

- Imports. Each loky worker would start a fresh interpreter and import what jobs need:
  MLflow's ~2,000 modules, matplotlib, Hydra, about 3 s of CPU a worker, while the launching
  process imports MLflow too, three processes on this project's 2 cores. Here the workers
  are forked from one server that has done those imports and a worker's warm-up once
  (``fork_workers_from_warm_server``).

- Plugins. Hydra's joblib launcher sends each job Hydra's global state without its plugin
  registry, and restoring that state runs Hydra's plugin discovery again, which executes
  every installed plugin's module: about 50 ms a job. Here each worker keeps the registry
  it found for its first job; the rest of the state is restored for every job.
- Composition. Each job's config is composed from conf/ anew: about 100 ms a job of YAML
  and OmegaConf merges, while a sweep's jobs differ only in a few values. Here a worker
  composes a job in full once per shape of overrides (``ReusingConfigLoader``; not on the
  Dask launcher, whose workers can outlive a sweep).

``launch_jobs`` is also the Dask launcher's (scratchnet_dask_launcher), with its backend.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
import contextlib
import copy
import functools
import logging
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from omegaconf import DictConfig, OmegaConf

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
        fork_workers_from_warm_server()  # as the sweep's warm-up did, if it ran
        # Loky workers end with the launching process, so a cached composition never
        # outlives the sweep (and its conf/) it was made for.
        return launch_jobs(self, job_overrides, initial_job_idx, loky_parallel_kwargs(self.joblib),
                           contextlib.nullcontext(), reuse_compositions=True)


WORKER_PRELOAD = "scratchnet.worker_preload"  # a worker's imports and warm-up


def fork_workers_from_warm_server() -> None:
    """Make this process's loky workers start as forks of a server that imported
    ``WORKER_PRELOAD`` once: Python's forkserver start method with its documented preload
    (``multiprocessing.set_forkserver_preload``), chosen for loky with its
    ``set_start_method``. The server is a fresh single-threaded interpreter, so forking it is
    safe where forking the launching process (threads, an open store) would not be.

    Called before the first worker starts (the sweep's warm-up, or the launch): the server
    starts with the first worker and imports meanwhile, beside the launching process. Loky's
    per-worker environment (BLAS thread caps) applies only to workers it starts itself; jobs
    cap BLAS threads themselves (sweep._job). Where there is no forkserver (Windows), the
    workers start as loky starts them."""
    from joblib.externals.loky.backend.context import set_start_method

    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.set_forkserver_preload([WORKER_PRELOAD])
        set_start_method("forkserver", force=True)


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
                backend_context: contextlib.AbstractContextManager,
                reuse_compositions: bool = False) -> list[JobReturn]:
    """hydra_joblib_launcher._core.launch with this module's execute_job: the jobs go to
    ``joblib.Parallel(**parallel_kwargs)``, called inside ``backend_context``; with
    ``reuse_compositions``, through a ReusingConfigLoader."""
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
                                 launcher.config, launcher.task_function, singleton_state,
                                 reuse_compositions)
            for idx, overrides in enumerate(job_overrides))
    assert all(isinstance(run, JobReturn) for run in runs)
    return runs


def execute_job(idx: int, overrides: Sequence[str], hydra_context, config, task_function,
                singleton_state: dict, reuse_compositions: bool = False) -> JobReturn:
    """Hydra's joblib execute_job, given this worker's plugin registry with the state, so
    that restoring the state does not discover the plugins again, and, with
    ``reuse_compositions``, a config loader that reuses this worker's compositions."""
    instances = {**singleton_state["instances"], Plugins: _plugins_of_this_worker()}
    if reuse_compositions:
        loader = ReusingConfigLoader(hydra_context.config_loader)
        hydra_context = replace(hydra_context, config_loader=loader)
    return _core.execute_job(idx, overrides, hydra_context, config, task_function,
                             {**singleton_state, "instances": instances})


@functools.cache
def _plugins_of_this_worker() -> Plugins:
    """Hydra's plugin registry, discovered once in this process (as set_state would)."""
    return Plugins.instance()


# A worker's full compositions: (config name, shape of the overrides) -> an untouched copy.
_composed: dict[tuple, DictConfig] = {}
_top_groups: frozenset[str] | None = None  # the config groups at the top of conf/


class ReusingConfigLoader(ConfigLoader):
    """Hydra's config loader, except that ``load_sweep_config`` composes a job's config in
    full only for the first job of each shape this worker runs. A job whose overrides differ
    from that one's only in the values they set (``key=value`` on a task key, a scalar) gets
    a copy of its config with the values changed as Hydra changes them, and with Hydra's
    record of them (``hydra.overrides.task``, ``hydra.job.override_dirname``) rewritten.
    Anything else (a config group, ``+key``, ``~key``, ``key@pkg``, a list or dict value,
    a hydra key) is part of the shape, so such a job is composed in full.
    tests/test_launcher.py checks the result against Hydra's own composition."""

    def __init__(self, loader: ConfigLoader) -> None:
        self._loader = loader

    def load_sweep_config(self, master_config: DictConfig,
                          sweep_overrides: list[str]) -> DictConfig:
        lines = [*master_config.hydra.overrides.hydra, *sweep_overrides]  # as Hydra's
        overrides = OverridesParser.create().parse_overrides(lines)
        values = [o for o in overrides if self._is_value(o)]  # the rest make the shape
        shape = (master_config.hydra.job.config_name,
                 *(o.key_or_group if o in values else o.input_line for o in overrides))
        composed = _composed.get(shape)
        if composed is None:
            config = self._loader.load_sweep_config(master_config, sweep_overrides)
            _composed[shape] = copy.deepcopy(config)
            return config
        config = copy.deepcopy(composed)
        for override in values:  # as ConfigLoaderImpl._apply_overrides_to_config does
            OmegaConf.update(config, override.key_or_group, override.value(), merge=True)
        task = [o for o in overrides if not o.is_hydra_override()]
        for index, override in enumerate(task):
            config.hydra.overrides.task[index] = override.input_line
        dirname = config.hydra.job.config.override_dirname
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task, exclude_keys=dirname.exclude_keys, item_sep=dirname.item_sep,
            kv_sep=dirname.kv_sep)
        config.hydra.runtime.cwd = os.getcwd()
        OmegaConf.copy_cache(from_config=master_config, to_config=config)
        return config

    def _is_value(self, override: Override) -> bool:
        """A plain ``key=value`` on a task key that no config group is named like."""
        key = override.key_or_group
        return (override.type == OverrideType.CHANGE and override.package is None
                and override.value_type == ValueType.ELEMENT and not override.is_hydra_override()
                and isinstance(override.value(), (str, int, float, bool, type(None)))
                and "/" not in key and ("." in key or key not in self._groups()))

    def _groups(self) -> frozenset[str]:
        global _top_groups
        if _top_groups is None:  # the same conf/ for every job of this worker
            _top_groups = frozenset(self._loader.list_groups(""))
        return _top_groups

    # The rest is Hydra's loader as it is.
    def load_configuration(self, *args, **kwargs):
        return self._loader.load_configuration(*args, **kwargs)

    def get_search_path(self):
        return self._loader.get_search_path()

    def get_sources(self):
        return self._loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self._loader.list_groups(parent_name)

    def get_group_options(self, *args, **kwargs) -> list[str]:
        return self._loader.get_group_options(*args, **kwargs)

    def compute_defaults_list(self, *args, **kwargs):
        return self._loader.compute_defaults_list(*args, **kwargs)
