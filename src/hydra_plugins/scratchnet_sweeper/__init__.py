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
from typing import Any

from hydra.core.config_store import ConfigStore

from scratchnet.sweep.sweeper import LaunchingSweeper


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.scratchnet_sweeper.GridSweeper"
    params: dict[str, str] = field(default_factory=dict)  # key -> its values, Hydra's syntax


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf,
                             provider="scratchnet")


class GridSweeper(LaunchingSweeper):
    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.params = dict(params or {})

    def sweep(self, arguments: list[str]) -> Any:
        from scratchnet.sweep.grid import expand

        jobs = expand(self.params, arguments)
        self.make_sweep_dir()
        self.validate_batch_is_legal(jobs[:1])
        returns = self.launcher.launch(jobs, initial_job_idx=0)
        for job in returns:
            _ = job.return_value  # re-raises the error of a job that raised
        return [returns]
