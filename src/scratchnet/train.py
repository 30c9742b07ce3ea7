"""Entry point: ``python -m scratchnet.train`` / ``scratchnet-train``.

One run by default; ``--multirun`` runs a sweep (see conf/hydra/sweeper/grid.yaml).
Config errors and a diverged run end with one line on stderr and a non-zero exit.
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

from .config import ConfigError
from .configure import one_line, to_config
from .tracking import TrackingError


def _conf_dir() -> str:
    """conf/ at the top of the checkout (editable install), or inside an installed wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"conf/config.yaml not found beside {package}")


class RunDiverged(RuntimeError):
    """Training stopped on a non-finite loss."""


@hydra.main(version_base="1.3", config_path=_conf_dir(), config_name="config")
def hydra_app(cfg: DictConfig) -> float:
    try:
        return _run_or_job(cfg)
    except (ConfigError, TrackingError, RunDiverged) as error:
        # SystemExit passes through Hydra's job wrapper, which would add its own lines
        sys.exit(f"error: {one_line(error)}")


def _run_or_job(cfg: DictConfig) -> float:
    config = to_config(cfg)
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from .sweep import run_job

        return run_job(config, overrides, str(hydra_cfg.sweep.dir))
    from .pipeline import run

    outcome = run(config, overrides=overrides)
    result = outcome.result
    if outcome.failure:
        raise RunDiverged(f"training {outcome.failure}; run {outcome.run_id} recorded as FAILED")
    print(f"Initial MSE: {result.initial_mse:.6f}")
    print(f"Final MSE:   {result.final_mse:.6f}")
    print(f"True MSE:    {result.true_mse:.6f}  (fit against the noise-free curve)")
    print(f"MLflow run:  {outcome.run_id}  (experiment '{config.tracking.experiment}')")
    uri = config.tracking.uri
    print(f"Open the UI: mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite")
          else f"Open the UI: {uri}")
    return result.true_mse


def main() -> None:
    # Let errors reach us instead of Hydra's multi-line report, so each is one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .sweep import SweepFailed

    try:
        hydra_app()
        # Everything is written and closed. Objects made so far are left out of the
        # interpreter's exit-time garbage collections, which would otherwise walk all that
        # MLflow, pandas and matplotlib built: 1.1 s of a sweep's exit, measured.
        gc.freeze()
    except (ConfigError, TrackingError, HydraException, OmegaConfBaseException,
            SweepFailed) as error:
        sys.exit(f"error: {one_line(error)}")
    except KeyboardInterrupt:
        from .sweep import interrupt_active_sweep

        interrupt_active_sweep()
        sys.exit("interrupted: runs in flight were recorded as KILLED")


if __name__ == "__main__":
    main()
