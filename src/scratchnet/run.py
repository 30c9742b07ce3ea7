"""One run: train the network for a config and record it in MLflow.

``run(config)`` is the one entry the CLI, the sweep jobs, DVC and the tests share.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from . import tracking
from .config import Config, config_hash, flatten
from .nn.network import predict
from .nn.training import ShouldStop, TrainResult, train_network
from .plots import save_fit_figure
from .tracking.models import log_network
from .weights import WEIGHTS_FILE, save_weights


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    result: TrainResult
    experiment_id: str = ""  # where the run was recorded (for its address in the UI)

    @property
    def failure(self) -> str | None:
        """One line saying why training stopped early, or None."""
        fit = self.result.fit
        if fit.diverged_epoch is None:
            return None
        return f"diverged at epoch {fit.diverged_epoch}: loss={fit.diverged_value}"

    @property
    def pruned_at(self) -> int | None:
        """The epoch after which a search's pruner stopped this run, or None."""
        return self.result.fit.stopped_epoch


def run(config: Config, *, parent_run_id: str | None = None, overrides: Sequence[str] = (),
        run_name: str | None = None, should_stop: ShouldStop | None = None,
        experiment_id: str | None = None) -> RunOutcome:
    """Train and record one run. A diverged run ends FAILED with its reason; an interrupted
    one KILLED; any other error FAILED with the error, which is then re-raised. A run that
    ``should_stop`` ended (a search's pruner) ends FINISHED, tagged with its last epoch.
    ``experiment_id``: the id of tracking.experiment, when the caller knows it (a sweep)."""
    client = tracking.open_store(config.tracking.uri)
    exp_id = experiment_id or tracking.experiment_id(client, config.tracking.experiment,
                                                     config.tracking.uri)
    tags = {**tracking.provenance(), tracking.TAG_CONFIG_HASH: config_hash(config),
            tracking.TAG_OVERRIDES: tracking.dumps_overrides(overrides)}
    if parent_run_id:
        tags[tracking.TAG_PARENT] = parent_run_id
    # Its params are recorded with its results, in one call: a run that ends otherwise gets
    # them when it is closed (a job process that dies: sweep.job.record_death)
    run_id = tracking.start_run(client, exp_id, run_name or default_run_name(config), tags)
    try:
        result = train_network(config, should_stop)
        outcome = RunOutcome(run_id, result, exp_id)
        record_result(client, run_id, config, result)
        if config.tracking.log_model and not result.diverged:
            log_network(client, config.tracking.uri, exp_id, run_id, result.curve.y_low,
                        result.curve.y_span)
    except KeyboardInterrupt:
        tracking.end_run(client, run_id, "KILLED", "interrupted (SIGINT)", flatten(config))
        raise
    except BaseException as error:
        tracking.end_run(client, run_id, "FAILED", f"error: {type(error).__name__}: {error}"[:500],
                         flatten(config))
        raise
    tracking.end_run(client, run_id, "FAILED" if outcome.failure else "FINISHED", outcome.failure)
    return outcome


def default_run_name(config: Config) -> str:
    return (f"h{config.model.hidden_size}-lr{config.train.lr:g}-noise{config.data.noise:g}"
            f"-seed{config.seed}")


def record_result(client, run_id: str, config: Config, result: TrainResult) -> None:
    """Every config key as a param, the metrics (loss history at log_every resolution, the
    rate's history, scalars) and the pruned tag of a run a pruner stopped, in one call; then
    the four artifacts, in one call."""
    losses = result.fit.losses
    scalars = {"train_seconds": result.train_seconds, "epochs_run": float(len(losses)),
               "lr_halvings": float(result.fit.halvings)}
    if len(losses):
        # loss_at_90pct: the loss at 90% of the epochs run, for the report's "still improving"
        scalars.update(initial_mse=result.initial_mse, final_mse=result.final_mse,
                       loss_at_90pct=float(losses[max(int(0.9 * len(losses)), 1) - 1]))
    if not result.diverged:
        scalars["true_mse"] = result.true_mse
    stopped = result.fit.stopped_epoch
    metrics = tracking.run_metrics(losses, config.tracking.log_every, scalars, result.fit.rates)
    tracking.log_batch(client, run_id, params=flatten(config), metrics=metrics,
                       tags=None if stopped is None else {tracking.TAG_PRUNED: str(stopped)})
    with tempfile.TemporaryDirectory() as tmp:
        write_artifacts(Path(tmp), config, result)
        tracking.with_retry(client.log_artifacts, run_id, tmp)


def write_artifacts(folder: Path, config: Config, result: TrainResult) -> None:
    """fit.png, history.csv (every epoch), config.yaml (resolved), model.npz (no pickle)."""
    curve, fit = result.curve, result.fit
    with np.errstate(all="ignore"):
        y_fit = predict(fit.params, curve.t[:, None], config.model.activation)[:, 0]
    with warnings.catch_warnings():  # a diverging loss curve overflows the log axis
        warnings.simplefilter("ignore", RuntimeWarning)
        save_fit_figure(folder / "fit.png", fit.losses, curve, y_fit, default_run_name(config))
    # what np.savetxt(fmt=["%d", "%.17g"]) writes (every loss exactly), without its per-row cost
    rows = "".join(f"{epoch},{loss:.17g}\n" for epoch, loss in enumerate(fit.losses.tolist(), 1))
    (folder / "history.csv").write_text("epoch,loss\n" + rows)
    resolved = asdict(config)
    resolved["tracking"]["uri"] = tracking.redact(config.tracking.uri)  # as in the params
    (folder / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    save_weights(folder / WEIGHTS_FILE, fit.params, config.model.activation)
