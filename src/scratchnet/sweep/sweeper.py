"""What both of scratchnet's Hydra sweepers (``hydra/sweeper=grid`` and ``search=optuna``) do
around their jobs, on Hydra's public Sweeper API: the selected launcher made in ``setup()``,
and the sweep folder made with the sweep's config saved in it. Abstract (no ``sweep()``), so
Hydra's plugin scan does not take it for a sweeper of its own."""

from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class LaunchingSweeper(Sweeper):
    config: DictConfig | None = None
    hydra_context: HydraContext | None = None
    launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def make_sweep_dir(self) -> Path:
        """The sweep folder, made, with the sweep's config in it as ``multirun.yaml`` (as
        Hydra's own sweepers write it)."""
        assert self.config is not None and self.launcher is not None, "setup() first"
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        return sweep_dir
