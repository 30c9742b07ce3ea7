"""The summary as people read it: numbers as people write them (0.1, 0.0242), one table per
condition with the best and its ties marked, as console text, markdown and CSV columns."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from .stats import CONFIDENCE, Design

DIGITS = 3  # significant digits of a statistic in a table
MARKS = {"best": "*", "tied": "="}
INTERVAL = (f"geometric mean [{round(CONFIDENCE * 100)}% t interval on the log scale] over "
            "the seeds that finished")
LEGEND = (f"true_mse: {INTERVAL}. * best of its condition (lowest geometric mean true_mse); "
          "= tied with it (paired t-test of log true_mse over the seeds both finished, "
          "Holm-adjusted p >= 0.05)")
MEANING = ("true_mse is the fit's mean squared error against the noise-free curve the data "
           "were drawn from (known because the data are simulated); final_mse is the training "
           "error, against the noisy points it was fitted to")
CSV_COLUMNS = ["seeds", "true_mse_gmean", "true_mse_ci_low", "true_mse_ci_high",
               "ratio_to_best", "p_vs_best", "tied_with_best", "verdict", "true_mse_mean",
               "true_mse_sd", "final_mse_gmean", "final_mse_ci_low", "final_mse_ci_high",
               "final_mse_mean", "final_mse_sd", "finished", "diverged", "crashed", "pruned",
               "pruned_at", "still_improving"]


def number(value, digits: int = DIGITS) -> str:
    """0.1, 0.0242, 16, 1.5e-05: ``digits`` significant digits, no trailing zeros; '-' for
    a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str):
        return value
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.{digits}g}"


def p_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.2g}"


def short(key: str) -> str:
    """train.lr -> lr: a swept key's column name in the report's tables."""
    return key.rsplit(".", 1)[-1]


def setting_words(row: pd.Series, keys: Iterable[str]) -> str:
    """'hidden_size=8 lr=0.1'."""
    return " ".join(f"{short(key)}={number(row[key])}" for key in keys)


def join_words(words: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def interval_words(row: pd.Series, metric: str) -> str:
    """'0.0242 [0.0121, 0.0363]' (geometric mean and its log-scale interval), or the
    geometric mean alone with why there is no interval."""
    gmean = number(row[f"{metric}_gmean"])
    if row.seeds == 0:
        return "no finished seed"
    if row.seeds == 1:
        return f"{gmean} (1 seed: no interval)"
    return f"{gmean} [{number(row[f'{metric}_ci_low'])}, {number(row[f'{metric}_ci_high'])}]"


def ratio_words(row: pd.Series) -> str:
    """'1.21x the best', 'best', or '-' (nothing finished)."""
    if row.verdict == "best":
        return "best"
    ratio = row.ratio_to_best
    return "-" if pd.isna(ratio) else f"{ratio:.{DIGITS}g}x the best"


def pruned_line(runs: pd.DataFrame) -> str:
    """'Pruned trials: 7, stopped after epoch 1000 to 2500 by the search ...'."""
    pruned = runs[runs.outcome == "pruned"]
    low, high = pruned.pruned_at.min(), pruned.pruned_at.max()
    when = ("" if pd.isna(low) else f" after epoch {int(low)}" if low == high
            else f" after epoch {int(low)} to {int(high)}")
    return (f"Pruned trials: {len(pruned)}, stopped{when} by the search (the table says "
            "where): counted apart, their true_mse when stopped left out of the statistics, "
            "never named best")


def display_table(rows: pd.DataFrame, design: Design) -> pd.DataFrame:
    """One condition's settings as strings, columns in words."""
    level = round(CONFIDENCE * 100)
    return pd.DataFrame({
        "": [MARKS.get(v, "") for v in rows.verdict],
        "setting": [setting_words(row, design.choices) or "(all runs)"
                    for _, row in rows.iterrows()],
        "seeds": rows.seeds.astype(int),
        f"true_mse gmean [{level}% CI]": [interval_words(row, "true_mse")
                                          for _, row in rows.iterrows()],
        "vs best": [ratio_words(row) for _, row in rows.iterrows()],
        "true_mse sd": [number(v) for v in rows.true_mse_sd],
        "final_mse gmean": [number(v) for v in rows.final_mse_gmean],
        "p vs best": [p_value(v) for v in rows.p_vs_best],
        "verdict": rows.verdict,
        "diverged": rows.diverged.astype(int),
        "still improving": rows.still_improving.astype(int),
    })


def by_condition(summary: pd.DataFrame, design: Design):
    """(title, rows) per combination of conditions, e.g. ('noise=0.03', rows)."""
    if not design.conditions:
        yield "all runs", summary
        return
    for _, rows in summary.groupby(list(design.conditions), sort=True):
        yield setting_words(rows.iloc[0], design.conditions), rows


def console_tables(summary: pd.DataFrame, design: Design) -> str:
    blocks = []
    for title, rows in by_condition(summary, design):
        table = display_table(rows, design).to_string(index=False)
        blocks.append(f"{title}\n{table}")
    return "\n\n".join(blocks + [f"{LEGEND}.\n{MEANING}."])


def markdown_tables(summary: pd.DataFrame, design: Design) -> str:
    blocks = [f"## {title}\n\n{markdown(display_table(rows, design))}"
              for title, rows in by_condition(summary, design)]
    return "\n".join(blocks) + f"\n{LEGEND}.\n\n{MEANING}.\n"


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame of strings as a GitHub markdown table."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def csv_frame(summary: pd.DataFrame, design: Design) -> pd.DataFrame:
    """sweep_summary.csv: a column per swept key (short name, e.g. lr), then CSV_COLUMNS."""
    frame = summary[[*design.setting, *CSV_COLUMNS]]
    return frame.rename(columns={key: short(key) for key in design.setting})
