"""``hydra/sweeper=grid``, the default: Hydra's grid sweep on its public Sweeper plugin API.

The jobs are those of Hydra's basic sweeper (``scratchnet.sweep.grid.expand``), launched in
one batch. Hydra's basic sweeper composes every job's config in the launching process
before any job starts (about 0.1 s a job, one after another), and the launcher composes
each again where it runs; here only the first job is composed up front, which catches an
error in the config groups. The sweep callback checks every job's values against the
schema before anything is written.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.scratchnet_sweeper.GridSweeper"
    params: dict[str, str] = field(default_factory=dict)  # key -> its values, Hydra's syntax


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf,
                             provider="scratchnet")


class GridSweeper(Sweeper):
    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from scratchnet.sweep.grid import expand

        assert self.config is not None and self.launcher is not None
        jobs = expand(self.params, arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's sweepers do
        self.validate_batch_is_legal(jobs[:1])
        returns = self.launcher.launch(jobs, initial_job_idx=0)
        for job in returns:
            _ = job.return_value  # re-raises the error of a job that raised
        return [returns]
