"""Rerun a recorded run and check its loss history bit for bit:
python -m scratchnet.reproduce RUN_ID (or scratchnet-reproduce RUN_ID).

The config is rebuilt from the run's MLflow params, the network retrained in this
process (no new MLflow run), and every epoch's loss compared with the run's history.csv
artifact. Exit 0: bit-identical; 1: it differs (the first differing epoch is named);
2: the run cannot be reproduced (unknown run, missing params or artifact).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import typing
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
from mlflow.exceptions import MlflowException

from . import tracking
from .cli import exit_on, set_mlflow_defaults
from .config import SCHEDULE_KEYS, Config, ConfigError, config_hash, from_flat

HISTORY = "history.csv"
# provenance tags whose change can change the numbers: warn when they differ from now
CHECKED_TAGS = {"mlflow.source.git.commit": "git commit", "scratchnet.version": "scratchnet",
                "numpy_version": "numpy", "python_version": "Python"}


class ReproduceError(RuntimeError):
    """The run cannot be reproduced; the message names the run and what is missing."""


def field_types() -> dict[str, type]:
    """Dotted key -> its type in the Config schema, e.g. {'model.hidden_size': int, ...}."""
    types: dict[str, type] = {}
    for group in fields(Config):
        hint = typing.get_type_hints(Config)[group.name]
        if hasattr(hint, "__dataclass_fields__"):
            types.update({f"{group.name}.{k}": v for k, v in typing.get_type_hints(hint).items()})
        else:
            types[group.name] = hint
    return types


def config_from_params(run_id: str, params: dict[str, str]) -> Config:
    """The Config a run recorded: MLflow keeps params as strings; each is converted to its
    schema type (int('16'), float('0.05'): str(float) round-trips, so values are exact)."""
    types = field_types()
    unknown = sorted(set(params) - set(types))
    if unknown:
        raise ReproduceError(f"run {run_id}: param {unknown[0]!r} is not a config key "
                             "(a sweep's parent run, or another program's run?)")
    if not set(SCHEDULE_KEYS) & set(params):
        params = {**params, **constant_rate_params()}  # recorded before schedules existed
    params = {**default_params(MODEL_KEYS), **params}  # recorded before models were logged
    missing = sorted(set(types) - set(params))
    if missing:
        raise ReproduceError(f"run {run_id}: no param {missing[0]!r} recorded")
    flat = {}
    for key, text in params.items():
        try:
            flat[key] = from_param(types[key], text)
        except ValueError:
            raise ReproduceError(f"run {run_id}: param {key}={text!r} is not "
                                 f"{getattr(types[key], '__name__', types[key])}") from None
    try:
        return from_flat(flat)
    except ConfigError as error:
        raise ReproduceError(f"run {run_id}: {error}") from None


def from_param(kind, text: str):
    """A param's string (as log_batch recorded it: str(value)) as a value of its schema type."""
    if kind is bool:
        if text not in ("True", "False"):
            raise ValueError(text)
        return text == "True"
    if kind == (str | None):
        return None if text == "None" else text
    return kind(text)


# Keys that change where a run is recorded, not what it computes, added after runs were
# first recorded: a run without them gets conf/config.yaml's values.
MODEL_KEYS = ("tracking.registered_model", "tracking.log_model")


def default_params(keys) -> dict[str, str]:
    """conf/config.yaml's values of ``keys``, as params (str(value))."""
    from omegaconf import OmegaConf

    from .train import conf_dir

    defaults = OmegaConf.load(Path(conf_dir()) / "config.yaml")
    return {key: str(OmegaConf.select(defaults, key)) for key in keys}


def constant_rate_params() -> dict[str, str]:
    """The schedule's params of a run recorded before ``train.lr_schedule`` existed: it
    trained at a constant rate, which the other schedule keys do not change (their values
    are conf/config.yaml's, so they pass the checks)."""
    return {**default_params(SCHEDULE_KEYS), "train.lr_schedule": "constant"}


def recorded_history(client, run_id: str) -> np.ndarray:
    """The run's loss per epoch from its history.csv artifact: (epochs_run,) float64."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, HISTORY, tmp)
        except (MlflowException, OSError):
            raise ReproduceError(f"run {run_id}: no {HISTORY} artifact") from None
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if table.shape[1] != 2 or not np.array_equal(table[:, 0], np.arange(1, len(table) + 1)):
        raise ReproduceError(f"run {run_id}: {HISTORY} is not 'epoch,loss' rows from epoch 1")
    return table[:, 1]


@dataclass(frozen=True)
class Comparison:
    epochs: int  # epochs compared
    first_difference: int | None = None  # 1-based epoch, None when bit-identical
    recorded: float | None = None  # the two losses at that epoch (None: past one's end)
    rerun: float | None = None
    diverged: str | None = None  # the run's recorded divergence, 'diverged at epoch 150: ...'

    def text(self, run_id: str) -> str:
        if self.first_difference is None:
            where = f"; the run {self.diverged}, and the rerun with it" if self.diverged else ""
            return f"run {run_id}: loss history bit-identical over {self.epochs} epochs{where}"
        def show(value):
            return "(no epoch: training had stopped)" if value is None else repr(value)
        return (f"run {run_id}: loss history differs first at epoch {self.first_difference}: "
                f"recorded {show(self.recorded)}, rerun {show(self.rerun)}")


def compare(recorded: np.ndarray, rerun: np.ndarray) -> Comparison:
    """Bitwise comparison of two loss histories (uint64 views: -0.0 != 0.0, nan == nan)."""
    common = min(len(recorded), len(rerun))
    differs = np.flatnonzero(recorded[:common].view(np.uint64) != rerun[:common].view(np.uint64))
    if len(differs):
        k = int(differs[0])
        return Comparison(common, k + 1, float(recorded[k]), float(rerun[k]))
    if len(recorded) != len(rerun):  # one stopped early (diverged) where the other went on
        def at(values):
            return float(values[common]) if common < len(values) else None
        return Comparison(common, common + 1, at(recorded), at(rerun))
    return Comparison(common)


def provenance_warnings(run_id: str, tags: dict[str, str], config: Config) -> list[str]:
    """Why a rerun may legitimately differ: other code, library versions or a config
    that does not match the run's recorded config hash."""
    now = tracking.provenance()
    warnings = [f"run {run_id} was recorded with {name} {tags[key]}, this is {now.get(key, '?')}"
                for key, name in CHECKED_TAGS.items() if key in tags and tags[key] != now.get(key)]
    if tags.get("scratchnet.git_dirty") == "true":
        warnings.append(f"run {run_id} was recorded from a checkout with uncommitted changes")
    recorded_hash = tags.get(tracking.TAG_CONFIG_HASH)
    if recorded_hash and recorded_hash != config_hash(config):
        warnings.append(f"run {run_id}: its params hash to {config_hash(config)}, but it "
                        f"recorded config hash {recorded_hash}")
    return warnings


def fetch_run(uri: str, run_id: str):
    """(client, run), failing with one line for a store or run that does not exist."""
    client = tracking.open_existing_store(uri)
    try:
        return client, client.get_run(run_id)
    except MlflowException:
        raise ReproduceError(f"no run {run_id!r} in {uri}") from None


def reproduce(uri: str, run_id: str) -> Comparison:
    """Retrain the run's config and compare with its recorded history; warnings on stderr."""
    from threadpoolctl import threadpool_limits

    from .nn.training import train_network

    client, run = fetch_run(uri, run_id)
    config = config_from_params(run_id, run.data.params)
    recorded = recorded_history(client, run_id)
    for warning in provenance_warnings(run_id, run.data.tags, config):
        print(f"warning: {warning}", file=sys.stderr)
    with threadpool_limits(limits=1):  # as in sweep jobs (results do not depend on it)
        rerun = train_network(config).fit.losses
    failure = run.data.tags.get(tracking.TAG_FAILURE, "")
    return replace(compare(recorded, rerun),
                   diverged=failure if failure.startswith("diverged") else None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scratchnet-reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run to rerun")
    parser.add_argument("--tracking-uri", default=tracking.DEFAULT_URI,
                        help="the MLflow store the run is in: a sqlite:/// file or an http(s):// "
                             "tracking server (default: %(default)s)")
    args = parser.parse_args(argv)
    set_mlflow_defaults()
    with exit_on(ReproduceError, tracking.TrackingError, code=2):
        comparison = reproduce(args.tracking_uri, args.run_id)
    print(comparison.text(args.run_id))
    sys.exit(0 if comparison.first_difference is None else 1)


if __name__ == "__main__":
    main()
