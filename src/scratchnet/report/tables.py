"""A sweep's runs read back from MLflow into pandas, and one row per setting over seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import tracking

SETTING = ["hidden_size", "lr", "noise"]  # what a row compares; seeds are aggregated
PARAMS = {"hidden_size": "model.hidden_size", "lr": "train.lr", "noise": "data.noise",
          "seed": "seed"}


def sweep_runs(client, exp_id: str, parent_id: str, reused: list[str] = ()) -> pd.DataFrame:
    """The runs of a sweep, one row per run: the parent's children, and the runs it reused
    from earlier sweeps (skipped jobs), read with MlflowClient.search_runs."""
    found = tracking.runs_with_tag(client, exp_id, tracking.TAG_PARENT, parent_id)
    for start in range(0, len(reused), 100):
        ids = ", ".join(f"'{run_id}'" for run_id in reused[start:start + 100])
        found += tracking.with_retry(client.search_runs, [exp_id],
                                     f"attributes.run_id IN ({ids})", max_results=100)
    raw = pd.DataFrame([run_record(run) for run in found])
    if raw.empty:
        return pd.DataFrame(columns=["run_id", *SETTING, "seed", "outcome", "final_mse",
                                     "true_mse", "setting_label"])
    raw = raw.drop_duplicates("run_id").reset_index(drop=True)
    runs = pd.DataFrame({"run_id": raw["run_id"]})
    for name in PARAMS:
        runs[name] = pd.to_numeric(raw[name])
    runs["outcome"] = np.select(
        [raw["status"] == "FINISHED", raw["failure"].str.startswith("diverged")],
        ["finished", "diverged"], default="crashed")
    for metric in ("final_mse", "true_mse"):
        runs[metric] = pd.to_numeric(raw[metric])
    runs.loc[runs.outcome != "finished", ["final_mse", "true_mse"]] = np.nan
    runs["setting_label"] = [f"h={h:g} lr={lr:g} noise={n:g}"
                             for h, lr, n in zip(runs.hidden_size, runs.lr, runs.noise)]
    return runs.sort_values(SETTING + ["seed"]).reset_index(drop=True)


def run_record(run) -> dict:
    """What the report reads of a run; params as MLflow stores them, strings."""
    record = {"run_id": run.info.run_id, "status": run.info.status,
              "failure": run.data.tags.get(tracking.TAG_FAILURE, "")}
    record.update({name: run.data.params.get(key) for name, key in PARAMS.items()})
    record.update({metric: run.data.metrics.get(metric, np.nan)
                   for metric in ("final_mse", "true_mse")})
    return record


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting: run counts by outcome, mean and sd over seeds of the metrics
    (finished runs only), sorted by mean true_mse (settings with no finished run last)."""
    grouped = runs.groupby(SETTING)
    summary = pd.DataFrame({
        "finished": grouped.outcome.apply(lambda s: int((s == "finished").sum())),
        "diverged": grouped.outcome.apply(lambda s: int((s == "diverged").sum())),
        "crashed": grouped.outcome.apply(lambda s: int((s == "crashed").sum())),
    })
    for metric in ("true_mse", "final_mse"):
        summary[f"{metric}_mean"] = grouped[metric].mean()
        summary[f"{metric}_sd"] = grouped[metric].std(ddof=1)
    summary = summary.reset_index()
    summary["hidden_size"] = summary["hidden_size"].astype(int)
    return summary.sort_values(["true_mse_mean", *SETTING], na_position="last").reset_index(drop=True)


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table, floats to 6 significant digits."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.6g}"
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def loss_histories(client, runs: pd.DataFrame, summary: pd.DataFrame) -> dict:
    """The loss histories of the best and worst settings' finished runs, every seed:
    label -> one DataFrame (step, value) per run."""
    ranked = summary.dropna(subset=["true_mse_mean"])
    if ranked.empty:
        return {}
    picks = {"best": ranked.iloc[0], "worst": ranked.iloc[-1]}
    histories = {}
    for name, row in picks.items():
        chosen = runs[(runs.hidden_size == row.hidden_size) & (runs.lr == row.lr)
                      & (runs.noise == row.noise) & (runs.outcome == "finished")]
        label = f"{name}: {chosen.setting_label.iloc[0]}"
        histories[label] = [metric_history(client, r.run_id, "loss") for r in chosen.itertuples()]
    return histories


def metric_history(client, run_id: str, key: str) -> pd.DataFrame:
    """A metric's recorded history, (step, value) rows in step order."""
    points = tracking.with_retry(client.get_metric_history, run_id, key)
    return pd.DataFrame({"step": [p.step for p in points], "value": [p.value for p in points]}
                        ).sort_values("step")
