"""What a race (``search=race``) found, in its sweep's report: the race replayed from the
recorded runs (``racing.run_races`` on the values read back, so the report and the sweeper
decide alike), per condition the survivors with the grid's columns, every dropped setting
with the round, seed count and adjusted p that dropped it, the runs used against the full
grid, and one figure of settings against seeds.

A sweep is a race when its parent run has the ``scratchnet.race`` tag (how it raced).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .racing import STOPS, Race, round_level, run_races, runs_used
from .stats import Design
from .tables import display_table, markdown, number, short

TAG_RACE = "scratchnet.race"  # sweep.race.TAG_RACE (the report does not import the sweep)


@dataclass
class RaceFindings:
    how: dict  # pool, first_test, alpha, max_runs (the parent's scratchnet.race tag)
    races: dict[tuple, Race]  # condition (values of design.conditions) -> its race
    used: int  # runs the races used (trained by the race or answered by earlier runs)
    full_grid: int  # runs of the grid with every seed of the pool

    @property
    def share_words(self) -> str:
        """'101 of 360 runs, 28% of the full grid'."""
        return (f"{self.used} of {self.full_grid} runs, "
                f"{100 * self.used / self.full_grid:.0f}% of the full grid")


def replay(parent_tags: dict, runs: pd.DataFrame, design: Design,
           swept: dict[str, list]) -> RaceFindings | None:
    """The race of a sweep, replayed from its runs; None if the sweep is no race."""
    if TAG_RACE not in parent_tags:
        return None
    how = json.loads(parent_tags[TAG_RACE])
    # in the order of their values, as the sweeper races them (sweep.race.by_value)
    settings = list(itertools.product(*(swept[key] for key in design.choices)))
    conditions = {condition: settings for condition in
                  itertools.product(*(swept[key] for key in design.conditions))}
    known = job_values(runs, design)
    races = run_races(conditions, how["pool"],
                      lambda jobs: {job: known.get(job, math.nan) for job in jobs},
                      how["first_test"], how["alpha"], how["max_runs"])
    return RaceFindings(how, races, runs_used(races), len(settings) * len(conditions)
                        * len(how["pool"]))


def job_values(runs: pd.DataFrame, design: Design) -> dict[tuple, float]:
    """(condition, setting, seed) -> true_mse of its run (inf: diverged), as the race saw it."""
    values = {}
    for record in runs.to_dict("records"):
        if record["outcome"] not in ("finished", "diverged"):
            continue
        job = (tuple(record[key] for key in design.conditions),
               tuple(record[key] for key in design.choices), int(record["seed"]))
        values[job] = math.inf if record["outcome"] == "diverged" else float(record["true_mse"])
    return values


# ---------------------------------------------------------------- words and tables

def how_words(findings: RaceFindings) -> str:
    how = findings.how
    pool = how["pool"]
    limit = f", max_runs {how['max_runs']}" if how["max_runs"] is not None else ""
    rounds = len(pool) - how["first_test"] + 1
    level = round_level(how["alpha"], len(pool), how["first_test"])
    return (f"a race over {len(pool)} seeds ({pool[0]}..{pool[-1]}): every setting ran "
            f"{how['first_test']} seeds, then one more per round while not dropped; "
            f"dropped when worse than the best by a one-sided paired t-test on log true_mse, "
            f"Holm-adjusted within the round, p < {level:.3g} (alpha {how['alpha']:g} split "
            f"over the {rounds} rounds the pool allows), once a Friedman test at "
            f"{how['alpha']:g} finds a difference{limit} (docs/racing.md)")


def setting_words(values: tuple, keys: tuple[str, ...]) -> str:
    return " ".join(f"{short(key)}={number(value)}" for key, value in zip(keys, values)) or "all"


def dropped_table(race: Race, design: Design) -> pd.DataFrame:
    """One condition's dropped settings: when and by which adjusted p."""
    rows = [{"setting": setting_words(drop.setting, design.choices), "round": drop.round,
             "seeds": drop.seeds,
             "adjusted p (one-sided vs best)": "diverged" if math.isnan(drop.p)
             else number(drop.p)} for drop in race.drops]
    return pd.DataFrame(rows, columns=["setting", "round", "seeds",
                                       "adjusted p (one-sided vs best)"])


def survivors_rows(summary: pd.DataFrame, race: Race, condition: tuple,
                   design: Design) -> pd.DataFrame:
    """The summary rows (the grid's columns) of a condition's survivors."""
    keys = [*design.conditions, *design.choices]
    wanted = {(*condition, *setting) for setting in race.survivors}
    mask = [tuple(values) in wanted for values in summary[keys].itertuples(index=False)]
    return summary[mask]


def condition_title(condition: tuple, design: Design) -> str:
    return setting_words(condition, design.conditions) if design.conditions else "all runs"


def race_lines(race: Race, condition: tuple, design: Design) -> list[str]:
    """A condition's race in a few lines of words."""
    title = condition_title(condition, design)
    best = setting_words(race.best, design.choices) if race.best is not None else "none"
    tied = [setting_words(s, design.choices) for s in race.survivors if s != race.best]
    lines = [f"Race at {title}: best {best}" + (f", not dropped: {', '.join(tied)}" if tied
                                                else "")
             + f"; {len(race.survivors)} of {len(race.settings)} left after "
             f"{race.seeds_run(race.best) if race.best is not None else 0} seeds "
             f"({STOPS.get(race.stopped, race.stopped)})"]
    for drop in race.drops:
        why = "diverged" if math.isnan(drop.p) else f"adjusted p {number(drop.p)}"
        lines.append(f"  dropped {setting_words(drop.setting, design.choices)} at round "
                     f"{drop.round} ({drop.seeds} seeds, {why})")
    return lines


# Why a survivor can be "worse" in the table: the table tests once, at 0.05, after the race
SURVIVOR_NOTE = ("The tables' verdicts test each setting once, at 0.05, over the seeds it ran; "
                 "the race tested every round at its stricter level, so a survivor the table "
                 "calls worse was never shown worse while racing.")


def console_lines(findings: RaceFindings, design: Design) -> list[str]:
    lines = [f"Race: {findings.share_words}; {how_words(findings)}. {SURVIVOR_NOTE}"]
    for condition, race in findings.races.items():
        lines += race_lines(race, condition, design)
    return lines


def markdown_section(findings: RaceFindings, summary: pd.DataFrame, design: Design) -> str:
    lines = ["## The race", "", f"{findings.share_words}: {how_words(findings)}. {SURVIVOR_NOTE}",
             ""]
    for condition, race in findings.races.items():
        lines += [f"### {condition_title(condition, design)}", "", *race_lines(
            race, condition, design)[:1], "", "Survivors (over the seeds each ran):", "",
            markdown(display_table(survivors_rows(summary, race, condition, design), design)),
            ""]
        if race.drops:
            lines += ["Dropped:", "", markdown(dropped_table(race, design)), ""]
    return "\n".join(lines)


def html_sections(findings: RaceFindings, summary: pd.DataFrame, design: Design) -> list[str]:
    from .html import paragraph, table

    sections = ["<h2>The race</h2>", paragraph(f"{findings.share_words}: "
                                               f"{how_words(findings)}. {SURVIVOR_NOTE}",
                                               "note")]
    for condition, race in findings.races.items():
        sections += [f"<h3>{condition_title(condition, design)}</h3>",
                     paragraph(race_lines(race, condition, design)[0]),
                     paragraph("Survivors (the grid's columns, over the seeds each ran):"),
                     table(display_table(survivors_rows(summary, race, condition, design),
                                         design))]
        if race.drops:
            sections += [paragraph("Dropped:"), table(dropped_table(race, design))]
    return sections


# ---------------------------------------------------------------- the figure

def race_figure(findings: RaceFindings, runs: pd.DataFrame, design: Design):
    """Per condition, settings (rows: survivors on top, then by how long they lasted)
    against the pool's seeds (columns, in the order spent): a filled cell for each run,
    red where it diverged, and an x where the setting was dropped."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    known = job_values(runs, design)
    races = findings.races
    pool = findings.how["pool"]
    height = sum(len(race.settings) for race in races.values())
    figure = Figure(figsize=(min(12, 3 + 0.35 * len(pool)), 1.5 + 0.28 * height + len(races)))
    axes = figure.subplots(len(races), 1, squeeze=False,
                           height_ratios=[len(r.settings) for r in races.values()])[:, 0]
    colours = ListedColormap(["#f4f4f4", "#4c72b0", "#c44e52"])  # not run, ran, diverged
    for ax, (condition, race) in zip(axes, races.items()):
        order = sorted(race.settings, key=lambda s: -race.seeds_run(s))
        cells = np.zeros((len(order), len(pool)))
        for row, setting in enumerate(order):
            for column, seed in enumerate(pool[:race.seeds_run(setting)]):
                value = known.get((condition, setting, seed), math.nan)
                cells[row, column] = 2 if value == math.inf else 1 if np.isfinite(value) else 0
        ax.imshow(cells, cmap=colours, vmin=0, vmax=2, aspect="auto", interpolation="none")
        for drop in race.drops:
            ax.plot(drop.seeds - 1, order.index(drop.setting), "kx", markersize=7)
        ax.set_yticks(range(len(order)),
                      [setting_words(s, design.choices) for s in order], fontsize=7)
        ax.set_xticks(range(len(pool)), [str(seed) for seed in pool], fontsize=7)
        ax.set_title(f"{condition_title(condition, design)}: {len(race.survivors)} of "
                     f"{len(race.settings)} left", fontsize=9)
    axes[-1].set_xlabel("seed, in the order spent (blue: ran, red: diverged, x: dropped)")
    figure.suptitle(f"The race: {findings.share_words}", fontsize=10)
    figure.tight_layout()
    return figure
