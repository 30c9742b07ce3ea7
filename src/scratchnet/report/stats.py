"""The statistics of a sweep, pure pandas and SciPy (no I/O): which swept keys are conditions
and which are choices, one row per setting over its seeds with a Student t interval, and
every setting compared with the best of its condition by a paired t-test, Holm-adjusted.

``runs`` has one row per run: a column per swept key (its full Hydra name, e.g.
``train.lr``), ``seed``, ``outcome`` (finished, diverged, crashed or pruned), the metrics
``true_mse`` and ``final_mse`` (NaN unless finished), ``loss_at_90pct`` (the loss at 90% of
its epochs, NaN for runs recorded before that metric) and ``improving`` (still improving at
its last epoch: True/False, NaN unless finished).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95  # of every interval the report shows
ALPHA = 0.05  # a setting is tied with the best when its adjusted p is at least this
IMPROVEMENT = 0.01  # still improving: the last loss more than 1% below the loss at 90%
OUTCOMES = ("finished", "diverged", "crashed", "pruned")
METRICS = ("true_mse", "final_mse")


@dataclass(frozen=True)
class Design:
    """What a sweep varied. Conditions (swept ``data.*`` keys) describe the data, not a
    choice anyone makes: settings are compared within each combination of them, never
    across. Choices are the other swept keys (``model.*``, ``train.*``); ``seed`` replicates."""

    conditions: tuple[str, ...]
    choices: tuple[str, ...]
    kind: str  # "grid": every combination of the swept values ran; otherwise "search"

    @property
    def setting(self) -> list[str]:
        return [*self.conditions, *self.choices]


def sweep_design(runs: pd.DataFrame, swept: list[str]) -> Design:
    """The design of a sweep from its swept keys and the runs it made."""
    axes = [key for key in swept if key != "seed" and not key.startswith("tracking.")]
    conditions = tuple(key for key in axes if key.startswith("data."))
    choices = tuple(key for key in axes if not key.startswith("data."))
    combinations = len(runs[list(axes)].drop_duplicates()) if axes else 1
    product = math.prod(runs[key].nunique() for key in axes)
    return Design(conditions, choices, "grid" if combinations == product else "search")


def groups(frame: pd.DataFrame, keys: list[str]):
    """frame.groupby(keys), or the whole frame as one group when there are no keys."""
    return frame.groupby(keys, sort=True) if keys else frame.groupby(lambda _: "all")


# ---------------------------------------------------------------- one setting over its seeds

def seed_interval(values) -> tuple[int, float, float, float, float]:
    """(n, mean, sd, low, high) of the finite values: sd with n - 1 degrees of freedom and
    the 95% Student t interval of the mean; with one value no sd and no interval (NaN)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    mean = float(values.mean())
    if n == 1:
        return 1, mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    half = stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * sd / math.sqrt(n)
    return n, mean, sd, mean - half, mean + half


def summarise(runs: pd.DataFrame, design: Design) -> pd.DataFrame:
    """One row per setting: run counts by outcome, ``seeds`` (finished runs, what the
    statistics are over), mean, sd and 95% interval of each metric, how many finished runs
    were still improving; then the comparison with the best (compare_with_best)."""
    rows = []
    for values, runs_of in groups(runs, design.setting):
        row = dict(zip(design.setting, values if isinstance(values, tuple) else (values,)))
        row.update({outcome: int((runs_of.outcome == outcome).sum()) for outcome in OUTCOMES})
        for metric in METRICS:
            n, mean, sd, low, high = seed_interval(runs_of[metric])
            row.update({f"{metric}_mean": mean, f"{metric}_sd": sd,
                        f"{metric}_ci_low": low, f"{metric}_ci_high": high})
            if metric == "true_mse":
                row["seeds"] = n
        row["still_improving"] = int(runs_of.improving.eq(True).sum())  # NaN: not finished
        rows.append(row)
    statistics = [f"{m}_{s}" for m in METRICS for s in ("mean", "sd", "ci_low", "ci_high")]
    summary = pd.DataFrame(rows, columns=[*design.setting, *OUTCOMES, "seeds", *statistics,
                                          "still_improving"])
    summary = compare_with_best(runs, summary, design)
    ordered = [*design.conditions, "true_mse_mean", *design.choices]
    return summary.sort_values(ordered, na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------- ties with the best

def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of m p-values: the i-th smallest is multiplied by
    m - i + 1 (i from 1), made non-decreasing in that order, and capped at 1."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def paired_p(values: np.ndarray, best: np.ndarray) -> float:
    """Two-sided p of the paired t-test of values against best (same seeds, same order).
    Differences without spread have no t: equal everywhere is no evidence (p = 1), the
    same nonzero difference on every seed is as strong as evidence gets (p = 0)."""
    differences = values - best
    if np.all(differences == differences[0]):
        return 1.0 if differences[0] == 0 else 0.0
    return float(stats.ttest_rel(values, best).pvalue)


def paired_log_p(values, best, alternative: str = "two-sided") -> float:
    """Unadjusted p of the paired t-test (``scipy.stats.ttest_rel``) on the logarithms of
    one error metric of two settings over the same seeds (equal-length arrays, same seed
    order), using only the seeds where both are finite and > 0; NaN with fewer than 2 such
    seeds. ``alternative="greater"``: are ``values`` worse (larger) than ``best``? Log
    differences without spread have no t: equal everywhere is no evidence (p = 1), the same
    nonzero difference on every seed is as strong as evidence gets (0, or 1 the other way)."""
    values, best = np.asarray(values, dtype=float), np.asarray(best, dtype=float)
    both = np.isfinite(values) & np.isfinite(best) & (values > 0) & (best > 0)
    if both.sum() < 2:
        return math.nan
    log_values, log_best = np.log(values[both]), np.log(best[both])
    differences = log_values - log_best
    if np.all(differences == differences[0]):
        if differences[0] == 0:
            return 1.0
        agrees = {"two-sided": True, "greater": differences[0] > 0, "less": differences[0] < 0}
        return 0.0 if agrees[alternative] else 1.0
    return float(stats.ttest_rel(log_values, log_best, alternative=alternative).pvalue)


def compare_with_best(runs: pd.DataFrame, summary: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Within each condition: the best setting (lowest mean true_mse among the settings with
    a finished seed and none diverged; all settings with a finished seed if every one
    diverged somewhere), and every other setting's paired t-test against it over the seeds
    both finished, Holm-adjusted over the settings of the condition. Adds ``shared_seeds``,
    ``p_vs_best`` (adjusted), ``tied_with_best`` (adjusted p >= 0.05; empty for the best and
    for settings not tested) and ``verdict`` (words)."""
    summary = summary.copy()
    summary["shared_seeds"] = 0
    summary["p_vs_best"] = math.nan
    summary["tied_with_best"] = pd.array([pd.NA] * len(summary), dtype="boolean")
    summary["verdict"] = "no finished seed"
    per_seed = seed_values(runs, design)
    for _, rows in groups(summary, list(design.conditions)):
        candidates = rows[rows.seeds > 0]
        if candidates.empty:
            continue
        steady = candidates[candidates.diverged == 0]
        pool = steady if len(steady) else candidates
        best = pool.sort_values(["true_mse_mean", *design.choices]).index[0]
        summary.loc[best, "verdict"] = "best"
        tested, p_raw = [], []
        best_values = per_seed[setting_key(summary.loc[best], design)]
        for index in candidates.index.drop(best):
            values = per_seed[setting_key(summary.loc[index], design)]
            shared = values.index.intersection(best_values.index)
            summary.loc[index, "shared_seeds"] = len(shared)
            if len(shared) < 2:
                seeds = f"{len(shared)} seed{'' if len(shared) == 1 else 's'}"
                summary.loc[index, "verdict"] = f"no test: {seeds} shared with the best"
                continue
            tested.append(index)
            p_raw.append(paired_p(values[shared].to_numpy(), best_values[shared].to_numpy()))
        if tested:
            adjusted = holm(p_raw)
            summary.loc[tested, "p_vs_best"] = adjusted
            summary.loc[tested, "tied_with_best"] = adjusted >= ALPHA
            # a setting with a diverged seed may beat the best on the seeds it finished
            lower = summary.loc[tested, "true_mse_mean"] < summary.loc[best, "true_mse_mean"]
            summary.loc[tested, "verdict"] = np.where(
                adjusted >= ALPHA, "tied", np.where(lower, "lower on its finished seeds", "worse"))
    return summary


def seed_values(runs: pd.DataFrame, design: Design) -> dict[tuple, pd.Series]:
    """Setting (its values of design.setting) -> true_mse of its finished runs by seed."""
    finished = runs[runs.outcome == "finished"].dropna(subset=["true_mse"])
    return {key if isinstance(key, tuple) else (): rows.groupby("seed").true_mse.mean()
            for key, rows in groups(finished, design.setting)}


def setting_key(row: pd.Series, design: Design) -> tuple:
    return tuple(row[key] for key in design.setting)


# ---------------------------------------------------------------- loss still falling

def still_improving(losses: pd.Series) -> bool:
    """Whether a loss history (one value per logged epoch, in epoch order, the last epoch
    last) still improves at the end: the last loss more than 1% below the loss logged at
    90% of the epochs. ``losses``: a Series indexed by epoch."""
    epochs = losses.index.to_numpy()
    at_90 = losses[epochs <= 0.9 * epochs[-1]]
    if at_90.empty:
        return False
    return bool(losses.iloc[-1] < (1 - IMPROVEMENT) * at_90.iloc[-1])


def improving_from_metrics(final_mse: float, loss_at_90pct: float) -> bool:
    """still_improving from a run's two recorded numbers: the last loss (final_mse) and the
    loss at 90% of its epochs."""
    return bool(final_mse < (1 - IMPROVEMENT) * loss_at_90pct)


# ---------------------------------------------------------------- the settings shown

def best_and_worst(rows: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """One condition's summary rows -> [("best", row), ("worst", row)]: its best setting (or
    its first, when none is best) and, when it has others, the one of highest mean true_mse."""
    rows = rows.dropna(subset=["true_mse_mean"])
    if rows.empty:
        return []
    best = rows[rows.verdict == "best"]
    picks = [("best", best.iloc[0] if len(best) else rows.iloc[0])]
    if len(rows) > 1:
        picks.append(("worst", rows.sort_values("true_mse_mean").iloc[-1]))
    return picks


def finished_runs_of(runs: pd.DataFrame, setting: pd.Series, design: Design) -> pd.DataFrame:
    """The finished runs (one per seed) of one setting."""
    finished = runs[runs.outcome == "finished"]
    return finished[(finished[design.setting] == setting[design.setting]).all(axis=1)]


CURVE_SEEDS = 5  # loss curves drawn per setting: each is one MLflow query (~0.1 s at 5,400 runs)


def drawn_runs_of(runs: pd.DataFrame, setting: pd.Series, design: Design) -> pd.DataFrame:
    """The finished runs of one setting whose loss curves the report draws: the first
    CURVE_SEEDS seeds."""
    return finished_runs_of(runs, setting, design).head(CURVE_SEEDS)
