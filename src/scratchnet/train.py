"""Entry point: ``python -m scratchnet.train`` / ``scratchnet-train``.

One run by default; ``--multirun`` runs a sweep (the grid in conf/config.yaml, or
``search=optuna``). Bad input and a diverged run end with one line on stderr and exit 1.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .cli import conf_dir, exit_on, set_mlflow_defaults
from .config import ConfigError, to_config
from .tracking import TrackingError, sqlite_under, ui


class RunDiverged(RuntimeError):
    """Training stopped on a non-finite loss."""


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="config")
def hydra_app(cfg: DictConfig) -> float:
    """One run, or one job of a sweep; returns true_mse, the objective of a search."""
    # SystemExit passes through Hydra's job wrapper, which would add its own lines
    with exit_on(ConfigError, TrackingError, RunDiverged):
        config = to_config(cfg)
        hydra_cfg = HydraConfig.get()
        overrides = list(hydra_cfg.overrides.task)
        # Paths are relative to where the command was started, also when hydra.job.chdir
        # moved this job into its own folder
        launched_in = Path(hydra_cfg.runtime.cwd)
        if launched_in != Path.cwd():
            config.tracking.uri = sqlite_under(launched_in, config.tracking.uri)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            from .sweep.job import run_job

            return run_job(config, overrides, str(launched_in / hydra_cfg.sweep.dir),
                           hydra_cfg.sweeper.get("trial"))  # search=optuna: its trial
        return single_run(config, overrides)


def single_run(config, overrides: list[str]) -> float:
    from .run import run

    outcome = run(config, overrides=overrides)
    result = outcome.result
    if outcome.failure:
        raise RunDiverged(f"training {outcome.failure}; run {outcome.run_id} recorded as FAILED")
    print(f"Initial MSE: {result.initial_mse:.6f}")
    print(f"Final MSE:   {result.final_mse:.6f}")
    print(f"True MSE:    {result.true_mse:.6f}  (fit against the noise-free curve)")
    print(f"MLflow run:  {outcome.run_id}  (experiment '{config.tracking.experiment}')")
    print(*ui.run_lines(config.tracking.uri, outcome.experiment_id, outcome.run_id), sep="\n")
    return result.true_mse


def main() -> None:
    set_mlflow_defaults()
    # Let errors reach us instead of Hydra's multi-line report, so each is one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .sweep import SweepFailed, interrupt_active_sweep

    try:
        with exit_on(ConfigError, TrackingError, HydraException, OmegaConfBaseException,
                     SweepFailed):
            hydra_app()
        # Everything is written and closed: the objects made so far (MLflow's, pandas',
        # matplotlib's) are left out of the interpreter's exit-time collections, which
        # would walk them all for nothing (half a second and more after a sweep).
        gc.freeze()
    except KeyboardInterrupt:
        interrupt_active_sweep()
        sys.exit("interrupted: runs in flight were recorded as KILLED")


if __name__ == "__main__":
    main()
