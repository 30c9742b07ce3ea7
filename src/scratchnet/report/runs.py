"""A sweep's runs read back from MLflow into pandas: one row per run, with its swept keys,
seed, outcome, metrics and whether its loss was still falling at the end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import tracking
from .stats import improving_from_metrics, still_improving

GRID_PARAM = "sweep.grid"  # on the parent: swept key -> its sweep expression (JSON)
METRICS = ("final_mse", "true_mse", "loss_at_90pct")


def sweep_runs(client, exp_id: str, parent_id: str, reused: list[str] = ()) -> list:
    """The MLflow runs of a sweep, one per config hash (tracking.answering_runs): the parent's
    children, and the runs it reused from earlier sweeps (skipped jobs)."""
    found = tracking.runs_with_tag(client, exp_id, tracking.TAG_PARENT, parent_id)
    for start in range(0, len(reused), 100):
        ids = ", ".join(f"'{run_id}'" for run_id in reused[start:start + 100])
        found += tracking.with_retry(client.search_runs, [exp_id],
                                     f"attributes.run_id IN ({ids})", max_results=100)
    unique = list({run.info.run_id: run for run in found}.values())
    # one run per (setting, seed): a standalone run or an earlier sweep's run of a config the
    # sweep also ran itself must not count twice; runs that are no result (crashed) stay when
    # nothing answers their config, for the report's crashed line
    answers = tracking.answering_runs(unique, parent_id)
    return list(answers.values()) + [
        run for run in unique if not tracking.is_result(run)
        and run.data.tags.get(tracking.TAG_CONFIG_HASH) not in answers]


def swept_keys(parent, runs: list) -> dict[str, str]:
    """Swept key -> its sweep expression ('' if unknown), seed aside: the parent's record of
    the sweep, and any other param that differs between the runs."""
    expressions = json.loads(parent.data.params.get(GRID_PARAM, "{}") or "{}")
    keys = {key: str(value) for key, value in expressions.items()
            if any(key in run.data.params for run in runs)}
    params = {key for run in runs for key in run.data.params}
    for key in sorted(params - set(keys)):
        if len({run.data.params.get(key) for run in runs}) > 1:
            keys[key] = ""
    for key in ("seed", "tracking.uri"):  # seed replicates; the store is no setting
        keys.pop(key, None)
    return keys


def runs_frame(runs: list, keys: list[str]) -> pd.DataFrame:
    """One row per run: run_id, a column per swept key and seed (numbers where every value
    is one), outcome, the metrics (NaN unless finished), epochs (train.epochs), and for a
    pruned trial the epoch it was stopped after (``pruned_at``) and its true_mse then
    (``stopped_true_mse``), which no statistic uses."""
    columns = ["run_id", *keys, "seed", "outcome", *METRICS, "epochs", "pruned_at",
               "stopped_true_mse"]
    if not runs:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({"run_id": [run.info.run_id for run in runs]})
    for key in [*keys, "seed"]:
        frame[key] = parsed([run.data.params.get(key) for run in runs])
    frame["epochs"] = parsed([run.data.params.get("train.epochs") for run in runs])
    frame["outcome"] = [outcome(run) for run in runs]
    for metric in METRICS:
        frame[metric] = [run.data.metrics.get(metric, np.nan) for run in runs]
    pruned = frame.outcome == "pruned"
    frame["pruned_at"] = pd.to_numeric(pd.Series(
        [run.data.tags.get(tracking.TAG_PRUNED) for run in runs]), errors="coerce")
    frame["stopped_true_mse"] = frame.true_mse.where(pruned)
    frame.loc[frame.outcome != "finished", list(METRICS)] = np.nan
    return frame[columns].sort_values([*keys, "seed"]).reset_index(drop=True)


def parsed(values: list[str | None]) -> pd.Series:
    """Params as MLflow stores them (strings) as numbers when all of them are numbers."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    if numbers.notna().all():
        integral = (numbers == numbers.round()).all() and not any("." in v for v in values)
        return numbers.astype(int) if integral else numbers
    return pd.Series(values, dtype=object)


def outcome(run) -> str:
    """finished, pruned (stopped early by a search: FINISHED with the pruned tag), diverged
    (FAILED with a divergence) or crashed (any other end)."""
    if run.info.status == "FINISHED":
        return "pruned" if tracking.TAG_PRUNED in run.data.tags else "finished"
    if run.data.tags.get(tracking.TAG_FAILURE, "").startswith("diverged"):
        return "diverged"
    return "crashed"


def loss_histories(client, run_ids: list[str]) -> dict[str, pd.Series]:
    """run id -> its recorded loss (a Series indexed by epoch, in epoch order)."""
    histories = {}
    for run_id in run_ids:
        points = tracking.with_retry(client.get_metric_history, run_id, "loss")
        series = pd.Series({p.step: p.value for p in points}, dtype=float).sort_index()
        histories[run_id] = series
    return histories


def mark_improving(frame: pd.DataFrame, histories: dict[str, pd.Series]) -> pd.DataFrame:
    """Adds ``improving``: whether each finished run's loss was still falling at its end.
    ``histories``: those of the finished runs recorded without loss_at_90pct."""
    improving = [improving_of(run, histories.get(run.run_id)) for run in frame.itertuples()]
    return frame.assign(improving=pd.Series(improving, index=frame.index, dtype=object))


def improving_of(run, history: pd.Series | None) -> bool | float:
    """From the run's loss_at_90pct metric; for a run recorded before that metric, from its
    loss history; NaN for a run that did not finish."""
    if run.outcome != "finished":
        return np.nan
    if not np.isnan(run.loss_at_90pct):
        return improving_from_metrics(run.final_mse, run.loss_at_90pct)
    return still_improving(history) if history is not None and len(history) else np.nan
