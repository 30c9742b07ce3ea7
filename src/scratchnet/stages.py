"""The commands of the DVC pipeline (dvc.yaml): python -m scratchnet.stages train|sweep.

Both read the composed params.yaml, not conf/: dvc exp run -S key=value composes
conf/ with the override into params.yaml, and that file is what DVC tracks. Every path
comes from the command line, so dvc.yaml is the one place paths are written.

Metrics and plot files hold only numbers the config determines (no timings, run ids or
dates), so a forced rerun rewrites them byte for byte. Their numbers have 10 significant
digits (DVC_DIGITS): another CPU's maths kernels may round the last bits of a float64
differently, and 10 digits are far above that, so the same pipeline writes the same files
there too. MLflow records every run at full precision.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import tracking
from .cli import exit_on, one_line, set_mlflow_defaults
from .config import Config, ConfigError, flatten, to_config


class StageError(RuntimeError):
    """A stage cannot produce its outputs; the message names the file or run."""


def load_config(params: Path) -> Config:
    """The checked Config of a params.yaml, with its MLflow store resolved."""
    if not params.is_file():
        raise StageError(f"{params}: no such params file (dvc exp run composes it from conf/)")
    try:
        config = to_config(OmegaConf.load(params))
    except (yaml.YAMLError, OmegaConfBaseException, ValueError) as error:  # syntax, schema, range
        raise StageError(f"{params}: {one_line(error)}") from None
    # A relative sqlite store is the DVC project's ($DVC_ROOT), not the working directory's:
    # queued experiments run in a temporary copy of the repository (.dvc/tmp/exps/...), and
    # their runs belong in the project's store, not the copy's.
    root = os.environ.get("DVC_ROOT")
    if root:
        config.tracking.uri = tracking.sqlite_under(Path(root), config.tracking.uri)
    return config


DVC_DIGITS = 10  # significant digits of every number in a metrics or plot file


def at_dvc_precision(value: float) -> float:
    """value rounded to DVC_DIGITS significant digits (0.03446110150963725 -> 0.03446110151)."""
    return float(f"{value:.{DVC_DIGITS}g}")


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Pretty, key-sorted JSON ending in a newline, floats at DVC_DIGITS significant digits;
    non-finite floats become null (JSON has no NaN, and a diverged run scores nan)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, float):
            return at_dvc_precision(value) if math.isfinite(value) else None
        return value

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(values), indent=2, sort_keys=True) + "\n")


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Columns of equal length as CSV, floats at DVC_DIGITS significant digits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    formats = ["%d" if np.issubdtype(c.dtype, np.integer) else f"%.{DVC_DIGITS}g"
               for c in columns.values()]
    np.savetxt(path, np.column_stack(list(columns.values())), delimiter=",", fmt=formats,
               header=",".join(columns), comments="")


# ---------------------------------------------------------------- train: one run


def train(params: Path, metrics: Path, plots: Path) -> None:
    """One run of params.yaml, recorded in MLflow; metrics JSON and the two plot tables."""
    from .nn.network import predict
    from .run import run

    config = load_config(params)
    outcome = run(config)
    if outcome.failure:  # the run is recorded as FAILED; DVC records nothing
        raise StageError(f"training {outcome.failure}; run {outcome.run_id} recorded as FAILED")
    result = outcome.result
    write_json(metrics, {"initial_mse": result.initial_mse, "final_mse": result.final_mse,
                         "true_mse": result.true_mse})
    losses = result.fit.losses
    write_csv(plots / "loss.csv", {"epoch": np.arange(1, len(losses) + 1), "loss": losses})
    curve = result.curve
    fit = predict(result.fit.params, curve.t[:, None], config.model.activation)[:, 0]
    write_csv(plots / "fit.csv", {"t": curve.t, "observed": curve.y_obs,
                                  "truth": curve.y_true, "fit": fit})
    print(f"train: final_mse={result.final_mse:.6f} true_mse={result.true_mse:.6f} "
          f"(MLflow run {outcome.run_id})")


# ---------------------------------------------------------------- sweep: the grid


def grid_axes(conf: Path) -> set[str]:
    """Keys the grid in conf/ sweeps (hydra.sweeper.params): the sweep sets them itself."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf.resolve()), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
    return {str(key) for key in (cfg.hydra.sweeper.get("params") or {})}


def hydra_value(key: str, value: Any) -> str:
    """value as a Hydra override literal: floats by repr (exact), strings quoted, booleans
    and None as YAML's true, false and null."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if not isinstance(value, (str, int, float)):
        raise StageError(f"{key}: cannot pass {value!r} to the sweep")
    if not isinstance(value, str):
        return repr(value)
    for quote in ("'", '"'):
        if quote not in value and not value.endswith("\\"):
            return f"{quote}{value}{quote}"
    raise StageError(f"{key}: cannot quote {value!r} for Hydra")


def sweep_command(config: Config, conf: Path, report: Path) -> list[str]:
    """The multirun over conf/'s grid, every other key taken from params.yaml.

    fresh=true: DVC decides when the sweep reruns, and then every job runs under one new
    parent, so the stage's outputs always come from a run of the code DVC hashed rather
    than from runs recorded earlier by other code (the train stage, older sweeps)."""
    axes = grid_axes(conf)
    base = [f"{key}={hydra_value(key, value)}" for key, value in flatten(config).items()
            if key not in axes]
    return [sys.executable, "-m", "scratchnet.train", "--config-path", str(conf.resolve()),
            "--multirun", *base, f"hydra.callbacks.sweep.report_dir={hydra_value('', str(report))}",
            "hydra.callbacks.sweep.fresh=true"]


def sweep_metrics(summary_csv: Path) -> dict[str, Any]:
    """The best setting (lowest geometric mean true_mse over seeds, the report's order) and
    the run counts, read from the report's summary (float() gives back the exact float64)."""
    if not summary_csv.is_file():
        raise StageError(f"{summary_csv}: the sweep wrote no summary")
    with open(summary_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = {k: sum(int(row[k]) for row in rows) for k in ("finished", "diverged", "crashed")}
    ranked = [row for row in rows if row["true_mse_gmean"] not in ("", "nan")]
    if not ranked:
        return {"runs": counts}
    best = min(ranked, key=lambda row: float(row["true_mse_gmean"]))  # over every condition
    return {"runs": counts, "best": {
        "hidden_size": int(best["hidden_size"]),
        **{key: float(best[key]) for key in ("lr", "noise", "true_mse_gmean", "true_mse_ci_low",
                                             "true_mse_ci_high", "true_mse_mean", "true_mse_sd",
                                             "final_mse_gmean")}}}


def sweep(params: Path, conf: Path, report: Path, metrics: Path) -> None:
    """Run the grid sweep, put its report folder at ``report`` (a fixed path for DVC, where
    a sweep's report otherwise gets a folder named after it) and write its metrics JSON."""
    config = load_config(params)
    report.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=report.parent) as root:
        done = subprocess.run(sweep_command(config, conf, Path(root)), check=False)
        if done.returncode != 0:
            raise StageError(f"the sweep failed (exit {done.returncode}); see its output above")
        written = [folder for folder in Path(root).iterdir() if folder.is_dir()]
        if len(written) != 1:
            raise StageError(f"the sweep wrote {len(written)} report folders, not one")
        shutil.rmtree(report, ignore_errors=True)  # DVC's output: the previous report
        written[0].rename(report)
    # the sweep printed the temporary folder it wrote to; this is where its report stays
    print(f"Report moved to {report}/ (open report.html)")
    write_json(metrics, sweep_metrics(report / "sweep_summary.csv"))


# ---------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m scratchnet.stages", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="stage", required=True)
    about = "one run of params.yaml, recorded in MLflow: metrics JSON and plot tables"
    one = commands.add_parser("train", help=about, description=about)
    one.add_argument("--params", type=Path, default=Path("params.yaml"),
                     help="the composed config DVC tracks (default: %(default)s)")
    one.add_argument("--metrics", type=Path, required=True,
                     help="JSON file to write initial_mse, final_mse and true_mse to")
    one.add_argument("--plots", type=Path, required=True, help="folder to write loss.csv (MSE per epoch) and fit.csv (fit and "
                          "truth at each t) to, for dvc plots")
    about = ("the grid sweep of conf/search/grid.yaml over params.yaml, recorded in MLflow: "
             "report folder and metrics JSON")
    grid = commands.add_parser("sweep", help=about, description=about)
    grid.add_argument("--params", type=Path, default=Path("params.yaml"),
                      help="the composed config DVC tracks; the keys the grid does not sweep "
                           "(default: %(default)s)")
    grid.add_argument("--conf", type=Path, default=Path("conf"), help="Hydra config folder with search/grid.yaml, "
                      "the grid to sweep (default: %(default)s)")
    grid.add_argument("--report", type=Path, required=True, help="folder to write the sweep's report to")
    grid.add_argument("--metrics", type=Path, required=True,
                      help="JSON file to write the best setting, its mean true_mse over seeds "
                           "and the run counts to")
    return top


def main(argv: list[str] | None = None) -> None:
    set_mlflow_defaults()
    args = vars(parser().parse_args(argv))
    command = {"train": train, "sweep": sweep}[args.pop("stage")]
    with exit_on(StageError, ConfigError, tracking.TrackingError):
        command(**args)


if __name__ == "__main__":
    main()
