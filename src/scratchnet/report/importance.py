"""What matters: each swept key's share of the variance of true_mse across a sweep, from the
finished runs (pure pandas and Optuna in memory; no I/O).

On a grid, a main-effect decomposition: the variance of the key's marginal means (the mean
true_mse at each of its values, weighted by their runs) over the total variance; what the
keys leave unexplained is their interactions and the seeds. On a search, whose settings are
no product of values, Optuna's fANOVA parameter importances of a study built from the runs.
"""

from __future__ import annotations

import pandas as pd

from .stats import Design

UNEXPLAINED = "interactions and seeds"
GRID = "main effects over the grid"
SEARCH = "Optuna's fANOVA importances over the search"
COLUMNS = ["parameter", "share", "method"]


def importance(runs: pd.DataFrame, design: Design, expressions: dict[str, str]) -> pd.DataFrame:
    """One row per swept choice and condition (``parameter`` its Hydra key, ``share`` in
    [0, 1], ``method``), largest share first; empty when fewer than 2 runs finished or
    nothing finished varies. ``expressions``: swept key -> its sweep expression."""
    finished = runs[runs.outcome == "finished"].dropna(subset=["true_mse"])
    varying = [key for key in design.setting if finished[key].nunique() > 1]
    if len(finished) < 2 or not varying or finished.true_mse.nunique() < 2:
        return pd.DataFrame(columns=COLUMNS)
    if design.kind == "grid":
        return main_effects(finished, varying)
    return optuna_importance(finished, varying, expressions)


def main_effects(finished: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Share of each axis: sum over runs of (its value's mean - grand mean)^2 over the sum of
    (true_mse - grand mean)^2, i.e. the weighted variance of its marginal means over the
    total variance; the rest is unexplained by any one axis."""
    y = finished.true_mse
    total = ((y - y.mean()) ** 2).sum()
    shares = {axis: ((finished.groupby(axis).true_mse.transform("mean") - y.mean()) ** 2).sum()
              / total for axis in axes}
    frame = pd.DataFrame({"parameter": list(shares), "share": list(shares.values()),
                          "method": GRID})
    frame = frame.sort_values("share", ascending=False, kind="stable")
    rest = max(0.0, 1.0 - frame.share.sum())
    unexplained = pd.DataFrame({"parameter": [UNEXPLAINED], "share": [rest],
                                "method": [GRID]})
    return pd.concat([frame, unexplained], ignore_index=True)


def optuna_importance(finished: pd.DataFrame, keys: list[str],
                      expressions: dict[str, str]) -> pd.DataFrame:
    """Optuna's fANOVA importances (seeded: the same runs give the same shares) of an
    in-memory study with one completed trial per finished run."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" lines
    distributions = {key: distribution(finished[key], expressions.get(key, "")) for key in keys}
    study = optuna.create_study(direction="minimize")
    for _, run in finished.iterrows():
        params = {key: python_value(run[key], distributions[key]) for key in keys}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=float(run.true_mse)))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    shares = optuna.importance.get_param_importances(study, evaluator=evaluator, params=keys)
    return pd.DataFrame({"parameter": list(shares), "share": list(shares.values()),
                         "method": SEARCH})


def distribution(values: pd.Series, expression: str):
    """The Optuna distribution a key was searched over: a float or int range when its sweep
    expression is an interval (log scale when tagged log), else the values tried."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    numeric = pd.api.types.is_numeric_dtype(values)
    if numeric and "interval(" in expression:
        low, high = values.min(), values.max()
        log = "log" in expression and low > 0
        if "int(" in expression:
            return IntDistribution(int(low), int(high), log=log)
        return FloatDistribution(float(low), float(high), log=log)
    return CategoricalDistribution(sorted(values.unique().tolist()))


def python_value(value, dist):
    """A pandas/numpy scalar as the Python value the distribution holds."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return next(choice for choice in dist.choices if choice == value)
    return int(value) if isinstance(dist, IntDistribution) else float(value)
