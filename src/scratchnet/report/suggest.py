"""What to try next: one line each, from a sweep's summary (pure pandas; no I/O).

- the best value of a numeric choice at the edge of what was swept: extend that way;
- runs still improving at their last epoch: train longer;
- settings where some seeds diverged and others did not;
- too few seeds to tell settings apart: add seeds.
"""

from __future__ import annotations

import pandas as pd

from .stats import Design
from .tables import join_words, number, setting_words

MORE_SEEDS = "seed='range(1,11)'"


def suggestions(summary: pd.DataFrame, design: Design, swept: dict[str, list],
                epochs: int | None) -> list[str]:
    """The lines, in the order above. ``swept``: key -> the values its runs took (sorted);
    ``epochs``: the runs' train.epochs when they share one."""
    return [*edge_lines(summary, design, swept), *improving_lines(summary, epochs),
            *diverged_lines(summary, design), *seed_lines(summary, design)]


def edge_lines(summary: pd.DataFrame, design: Design, swept: dict[str, list]) -> list[str]:
    best = summary[summary.verdict == "best"]
    searched = "tried" if design.kind == "search" else "swept"
    widen = "the search range" if design.kind == "search" else "the grid"
    lines = []
    for key in design.choices:
        values = swept[key]
        if len(values) < 2 or not all(isinstance(v, (int, float)) for v in values):
            continue
        for edge, word, way in ((max(values), "largest", "upward"),
                                (min(values), "smallest", "downward")):
            at_edge = best[best[key] == edge]
            if at_edge.empty:
                continue
            where = condition_words(at_edge, design, len(best))
            lines.append(f"{key}: the best value {number(edge)} is the {word} {searched}"
                         f"{where}; extend {widen} {way}")
    return lines


def condition_words(rows: pd.DataFrame, design: Design, conditions: int) -> str:
    """' (at data.noise=0.03)' when only some conditions' best is there; '' when all are."""
    if not design.conditions or len(rows) == conditions:
        return ""
    return " (at " + join_words(setting_words(row, design.conditions)
                                for _, row in rows.iterrows()) + ")"


def improving_lines(summary: pd.DataFrame, epochs: int | None) -> list[str]:
    runs, finished = int(summary.still_improving.sum()), int(summary.seeds.sum())
    if runs == 0:
        return []
    settings = int((summary.still_improving > 0).sum())
    longer = f", e.g. train.epochs={2 * epochs}" if epochs else ""
    return [(f"still improving at the last epoch: {runs} of {finished} finished runs ({settings} "
            f"of {len(summary)} settings; loss more than 1% below its value at 90% of the "
            f"epochs): train longer{longer}")]


def diverged_lines(summary: pd.DataFrame, design: Design) -> list[str]:
    mixed = summary[(summary.diverged > 0) & (summary.seeds > 0)]
    return [f"{setting_words(row, design.setting)}: {row.diverged} of "
            f"{row.diverged + row.seeds} seeds diverged, {row.seeds} finished; its statistics "
            "are over the finished seeds only, and it is named best only if every setting "
            "of its condition diverged somewhere" for _, row in mixed.iterrows()]


def seed_lines(summary: pd.DataFrame, design: Design) -> list[str]:
    compared = summary[summary.seeds > 0]
    others = compared[compared.verdict != "best"]
    if others.empty:
        return []
    tested = others[others.p_vs_best.notna()]
    tied = int(tested.tied_with_best.sum())
    most = int(compared.seeds.max())
    if design.kind == "search":
        best = summary[summary.verdict == "best"]
        rerun = " ".join(f"{key}={number(best.iloc[0][key])}" for key in design.choices)
        if len(tested) and tied <= len(tested) / 2:
            return []
        return [(f"few settings were run on more than one seed (at most {most}): rerun the "
                f"best on more seeds to be sure of it, e.g. --multirun {rerun} {MORE_SEEDS}")]
    if tested.empty:
        return [(f"no test: no setting shares 2 finished seeds with the best of its condition; "
                f"add seeds with {MORE_SEEDS}")]
    if tied <= len(tested) / 2:
        return []
    return [(f"{tied} of {len(tested)} settings tested are tied with the best of their "
            f"condition (paired t-tests over at most {most} seeds, Holm-adjusted): too few "
            f"seeds to tell them apart; add seeds with {MORE_SEEDS}")]
