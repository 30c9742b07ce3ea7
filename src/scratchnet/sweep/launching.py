"""A job of a sweep in a launcher's worker, for scratchnet's launchers (``hydra/launcher=local``
and ``dask``), on Hydra's public Launcher API.

Each job is what Hydra's own joblib launcher makes of it: its config composed by Hydra's
config loader (``load_sweep_config``), its number and id set, then ``hydra.core.utils.run_job``
(job folder, ``.hydra/`` files, logging, callbacks, the task function). What is not done for
every job is carrying the sweep's context to the worker: Hydra's context, the sweep's config,
the task function and Hydra's global state (``Singleton.get_state``: the config store, the
plugins, OmegaConf's resolvers) are pickled once per launch, and a worker restores them only
when they differ from what it restored last (``Singleton.set_state`` rescans every
``hydra_plugins`` module, about 20 ms; the context unpickles in about 50 ms), then runs any
number of jobs: a search's batches, each a launch, restore once per worker.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepContext:
    """What every job of one launch needs, pickled once in the launching process."""

    token: str  # the payload's digest: a worker restores a state it does not hold yet
    payload: bytes  # cloudpickle of (hydra_context, config, task_function, Singleton state)


def pack(hydra_context: HydraContext, config: DictConfig,
         task_function: TaskFunction) -> SweepContext:
    # cloudpickle: the task function may be a closure (Hydra's test suites) or decorated
    state = Singleton.get_state()
    payload = cloudpickle.dumps((hydra_context, config, task_function, state))
    return SweepContext(hashlib.sha256(payload).hexdigest(), payload)


_restored: tuple[str, tuple[HydraContext, DictConfig, TaskFunction]] | None = None


def restore(context: SweepContext) -> tuple[HydraContext, DictConfig, TaskFunction]:
    """The launch's Hydra context, config and task function, with Hydra's global state set
    as in the launching process: unpickled and set on this worker's first job with it."""
    global _restored
    if _restored is None or _restored[0] != context.token:
        hydra_context, config, task_function, state = pickle.loads(context.payload)
        setup_globals()
        Singleton.set_state(state)
        _restored = (context.token, (hydra_context, config, task_function))
    return _restored[1]


def execute_job(context: SweepContext, idx: int, overrides: Sequence[str]) -> JobReturn:
    """Job number ``idx`` of the sweep, with these overrides, in this worker."""
    hydra_context, config, task_function = restore(context)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    # run_job makes sweep_config Hydra's config (HydraConfig) first thing
    return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


class WorkerLauncher(Launcher):
    """What scratchnet's launchers share: ``setup()`` keeps what Hydra gives, and ``start()``
    does what Hydra's launchers do before their jobs and packs the sweep's context for them.
    Abstract (no ``launch()``), so Hydra's plugin scan does not take it for a launcher."""

    config: DictConfig | None = None
    hydra_context: HydraContext | None = None
    task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def start(self, where: str, job_overrides: Sequence[Sequence[str]]) -> SweepContext:
        assert self.config is not None and self.hydra_context is not None, "setup() first"
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"{where} is launching {len(job_overrides)} jobs, sweep output dir: {sweep_dir}")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        return pack(self.hydra_context, self.config, self.task_function)
