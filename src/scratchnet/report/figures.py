"""The sweep report's figures, from the summary (one row per setting, stats.summarise) and
the runs (one row per run). Every figure names its quantities in words, labels every swept
value on its axis and says what its bars or bands are; panels that compare share a scale.
A grid gets lines against a swept choice and a heatmap; a search gets true_mse against
each searched key and its best settings. Matplotlib's object-oriented API (``Figure``),
never pyplot: no GUI backend or global figure state."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ..plots import CLIP, plain_log_ticks
from .importance import UNEXPLAINED
from .stats import CONFIDENCE, CURVE_SEEDS, Design, best_and_worst, drawn_runs_of
from .tables import number, short

WORDS = {"true_mse": "MSE against the true curve", "final_mse": "final training MSE",
         "model.hidden_size": "hidden size", "model.depth": "hidden layers",
         "model.activation": "activation", "model.init_scale": "initial weight sd",
         "train.lr": "learning rate", "train.optimizer": "optimiser", "train.epochs": "epochs",
         "data.noise": "noise sd", "data.n_points": "observations", "data.peak": "peak time",
         "data.width": "peak width", "seed": "seed"}
SLIDE = 10  # points: the smallest text on a figure


def words(key: str) -> str:
    return WORDS.get(key, short(key).replace("_", " "))


def in_words(row: pd.Series, keys) -> str:
    """'hidden size 8, learning rate 0.1'."""
    return ", ".join(f"{words(key)} {number(row[key])}" for key in keys)


def dodge(k: int, count: int, log: bool, values: list):
    """Shift line k of count sideways (2% of the axis) so that error bars at one x do not
    hide each other; the values stay at their ticks to the eye."""
    offset = (k - (count - 1) / 2) * 0.02 * (1 if count > 1 else 0)
    if log:
        span = np.log10(max(values) / min(values)) or 1
        return lambda x: np.asarray(x, dtype=float) * 10 ** (offset * span)
    span = (max(values) - min(values)) or 1
    return lambda x: np.asarray(x, dtype=float) + offset * span


def condition_title(row: pd.Series, design: Design) -> str:
    """'noise sd 0.06', or '' when no condition was swept."""
    return in_words(row, design.conditions)


def seeds_words(summary: pd.DataFrame) -> str:
    """What a bar or band is: 'geometric mean, 95% t interval on the log scale over 3
    seeds' and its variants."""
    seeds = summary.seeds[summary.seeds > 0]
    if seeds.empty:
        return "no finished seed"
    low, high = int(seeds.min()), int(seeds.max())
    if high == 1:
        return "one seed per setting: no interval"
    level = round(CONFIDENCE * 100)
    over = f"{high} seeds" if low == high else f"{low} to {high} seeds (1 seed: no bar)"
    return f"geometric mean, {level}% t interval on the log scale over {over}"


def seed_count(summary: pd.DataFrame) -> str:
    """'3 seeds', '1 to 3 seeds', 'one seed'."""
    seeds = summary.seeds[summary.seeds > 0]
    low, high = (int(seeds.min()), int(seeds.max())) if len(seeds) else (0, 0)
    if high <= 1:
        return "one seed (no interval)"
    return f"{high} seeds" if low == high else f"{low} to {high} seeds"


def new_figure(width: float, height: float) -> Figure:
    # at least 7.5 inches wide: room for a two-line title above a single panel
    return Figure(figsize=(max(width, 7.5), height), layout="constrained")


def numeric(values) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) for v in values)


def log_scaled(values) -> bool:
    """A log axis for positive values spanning at least a factor of 10."""
    return numeric(values) and min(values) > 0 and max(values) / min(values) >= 10


def label_every_value(axis, values) -> None:
    """Ticks at exactly the swept values, each labelled as written (0.01, 0.05, 0.1)."""
    axis.set_ticks(list(values), [number(v) for v in values])
    axis.set_minor_locator(NullLocator())
    if len(values) > 6:
        for label in axis.get_ticklabels():
            label.set_rotation(45)


def conditions_of(summary: pd.DataFrame, design: Design) -> list[pd.DataFrame]:
    if not design.conditions:
        return [summary]
    return [rows for _, rows in summary.groupby(list(design.conditions), sort=True)]


# ---------------------------------------------------------------- a grid

def x_axis(design: Design, swept: dict[str, list]) -> str | None:
    """The choice a line figure runs along: the learning rate if swept, else the numeric
    choice with the most values."""
    numeric_choices = [key for key in design.choices
                       if len(swept[key]) > 1 and numeric(swept[key])]
    if "train.lr" in numeric_choices:
        return "train.lr"
    return max(numeric_choices, key=lambda key: len(swept[key]), default=None)


def lines_figure(summary: pd.DataFrame, design: Design, swept: dict[str, list], x: str) -> Figure:
    """Geometric mean true_mse (top) and final training MSE (bottom) against ``x``: a line per
    combination of the other choices, a column per condition, rows sharing their y scale."""
    panels = conditions_of(summary, design)
    figure = new_figure(4.2 * len(panels) + 1.5, 7)
    axes = figure.subplots(2, len(panels), squeeze=False, sharex=True, sharey="row")
    others = [key for key in design.choices if key != x]
    log_x = log_scaled(swept[x])
    for col, rows in enumerate(panels):
        for row, metric in enumerate(("true_mse", "final_mse")):
            ax = axes[row][col]
            lines = list(rows.groupby(others, sort=True)) if others else [(None, rows)]
            for k, (_, line) in enumerate(lines):
                line = line.sort_values(x)
                shift = dodge(k, len(lines), log_x, swept[x])
                # no bar (NaN) where a setting has one seed
                centre = line[f"{metric}_gmean"]
                low, high = centre - line[f"{metric}_ci_low"], line[f"{metric}_ci_high"] - centre
                ax.errorbar(shift(line[x]), centre, yerr=[low, high],
                            marker="o", capsize=3, label=in_words(line.iloc[0], others) or None)
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
            if log_x:
                ax.set_xscale("log")
            label_every_value(ax.xaxis, swept[x])
            where = condition_title(rows.iloc[0], design)
            ax.set_title(f"{words(metric)}, {where}" if where else words(metric),
                         fontsize=SLIDE + 1)
            if row == 1:
                ax.set_xlabel(words(x))
            if col == 0:
                ax.set_ylabel(f"{words(metric)} (log scale)")
        if others and col == len(panels) - 1:
            axes[0][col].legend(fontsize=SLIDE - 1, frameon=False, loc="best")
    figure.suptitle(f"{words('true_mse')} and {words('final_mse')} against {words(x)}\n"
                    f"{seeds_words(summary)}", fontsize=SLIDE + 2)
    return figure


def heatmap_figure(summary: pd.DataFrame, design: Design, swept: dict[str, list],
                   x: str, y: str) -> Figure:
    """Geometric mean true_mse on a ``y`` x ``x`` grid, a panel per condition, one colour
    scale for all panels; the best of each condition marked *, its ties =; with other choices
    swept, each cell is the geometric mean over them."""
    panels = conditions_of(summary, design)
    rest = [key for key in design.choices if key not in (x, y)]
    cells = [gmean_grid(rows, x, y, swept) for rows in panels]
    values = np.concatenate([c.to_numpy(dtype=float).ravel() for c in cells])
    finite = values[np.isfinite(values)]
    scale = (LogNorm if len(finite) and finite.min() > 0 else Normalize)(
        vmin=finite.min() if len(finite) else 0, vmax=finite.max() if len(finite) else 1)
    figure = new_figure(0.9 * len(swept[x]) * len(panels) + 2.8, 0.55 * len(swept[y]) + 2.6)
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, rows, grid in zip(axes, panels, cells):
        image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis_r", norm=scale, aspect="auto")
        ax.set_xticks(range(len(grid.columns)), [number(v) for v in grid.columns])
        ax.set_yticks(range(len(grid.index)), [number(v) for v in grid.index])
        ax.set_xlabel(words(x))
        ax.set_title(condition_title(rows.iloc[0], design), fontsize=SLIDE + 1)
        marks = {} if rest else {(r[y], r[x]): {"best": " *", "tied": " ="}.get(r.verdict, "")
                                 for _, r in rows.iterrows()}
        for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            dark = np.isfinite(value) and scale(value) > 0.5
            text = "no finished seed" if np.isnan(value) else number(value)
            ax.text(j, i, text + marks.get((grid.index[i], grid.columns[j]), ""), ha="center",
                    va="center", fontsize=SLIDE - 1, color="white" if dark else "black")
    axes[0].set_ylabel(words(y))
    bar = figure.colorbar(image, ax=list(axes), label=f"geometric mean {words('true_mse')}",
                          shrink=0.9)
    plain_log_ticks(bar.ax.yaxis)
    over = ", ".join(words(k) for k in rest) + " and " if rest else ""
    marks = "" if rest else ("\n* best of its panel; = tied with it (Holm-adjusted paired "
                             "t-test of the logs)")
    if summary.seeds.max() <= 1 and not rest:
        title = f"{words('true_mse')}, one seed per setting"
    else:
        title = f"Geometric mean {words('true_mse')} over {over}{seed_count(summary)}"
    figure.suptitle(title + marks, fontsize=SLIDE + 1)
    return figure


def gmean_grid(rows: pd.DataFrame, x: str, y: str, swept: dict[str, list]) -> pd.DataFrame:
    """One condition's geometric mean true_mse as a ``y`` x ``x`` table in swept order; with
    other choices swept, the geometric mean over them (the mean of the logs)."""
    logs = np.log(rows.true_mse_gmean).groupby([rows[y], rows[x]]).mean()
    return np.exp(logs).unstack(x).reindex(index=swept[y], columns=swept[x])


# ---------------------------------------------------------------- a search

def search_figure(runs: pd.DataFrame, summary: pd.DataFrame, design: Design,
                  swept: dict[str, list]) -> Figure:
    """true_mse of every finished run against each searched choice, a colour per
    condition, all panels on one y scale; the best of each condition ringed; pruned trials
    as grey crosses at their true_mse when the pruner stopped them."""
    finished = runs[runs.outcome == "finished"]
    pruned = runs[(runs.outcome == "pruned") & runs.stopped_true_mse.notna()]
    figure = new_figure(4 * len(design.choices) + 1, 4.2)
    axes = figure.subplots(1, len(design.choices), squeeze=False, sharey=True)[0]
    conditions = conditions_of(finished, design) if len(finished) else []
    best = summary[summary.verdict == "best"]
    for ax, key in zip(axes, design.choices):
        values = swept[key]
        is_numeric = numeric(values)
        position = (lambda v: v) if is_numeric else values.index
        for rows, color in zip(conditions, COLOURS):
            ax.scatter([position(v) for v in rows[key]], rows.true_mse, s=22, alpha=0.8,
                       color=color, label=condition_title(rows.iloc[0], design))
        if len(pruned):
            ax.scatter([position(v) for v in pruned[key]], pruned.stopped_true_mse, s=22,
                       marker="x", color="tab:grey", label="pruned (true_mse when stopped)")
        for _, row in best.iterrows():
            ax.scatter([position(row[key])], [row.true_mse_gmean], s=160, facecolors="none",
                       edgecolors="black", linewidths=1.5)
        if is_numeric and log_scaled(values):
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        if not is_numeric or len(values) <= 8:
            ticks = [position(v) for v in values]
            ax.set_xticks(ticks, [number(v) for v in values])
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set(yscale="log", xlabel=words(key))
    plain_log_ticks(axes[0].yaxis)
    axes[0].set_ylabel(f"{words('true_mse')} (log scale)")
    if (design.conditions and len(conditions)) or len(pruned):
        axes[-1].legend(fontsize=SLIDE - 1, frameon=False)
    stopped = f", {len(pruned)} pruned" if len(pruned) else ""
    figure.suptitle(f"{words('true_mse')} of each finished run against each searched key "
                    f"({len(finished)} runs{stopped})\nringed: the best setting of each condition "
                    "(lowest geometric mean over its seeds)", fontsize=SLIDE + 1)
    return figure


def best_settings_figure(summary: pd.DataFrame, design: Design, count: int = 10) -> Figure:
    """The ``count`` best settings of each condition by geometric mean true_mse, with their
    log-scale interval where they ran on 2 seeds or more; the panels share their x scale."""
    panels = [rows.dropna(subset=["true_mse_gmean"]).head(count)
              for rows in conditions_of(summary, design)]
    panels = [rows for rows in panels if len(rows)]
    height = 0.32 * max(len(rows) for rows in panels) + 1.8
    figure = new_figure(5.5 * len(panels) + 1, height)
    axes = figure.subplots(1, len(panels), squeeze=False, sharex=True)[0]
    for ax, rows in zip(axes, panels):
        rows = rows.iloc[::-1]  # the best at the top
        low = rows.true_mse_gmean - rows.true_mse_ci_low  # NaN: no bar
        high = rows.true_mse_ci_high - rows.true_mse_gmean
        colours = ["tab:green" if v == "best" else "tab:blue" if v == "tied" else "tab:grey"
                   for v in rows.verdict]
        ax.barh(range(len(rows)), rows.true_mse_gmean, xerr=[low, high], color=colours,
                capsize=3)
        ax.set_yticks(range(len(rows)), [in_words(r, design.choices)
                                         for _, r in rows.iterrows()], fontsize=SLIDE - 1)
        ax.set_xlabel(f"geometric mean {words('true_mse')}")
        ax.set_title(condition_title(rows.iloc[0], design), fontsize=SLIDE + 1)
    figure.suptitle(f"The {count} best settings: {seeds_words(summary)}\n"
                    "green: best; blue: tied with it; grey: worse or not tested",
                    fontsize=SLIDE + 1)
    return figure


COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:olive", "tab:cyan", "tab:grey"]


# ---------------------------------------------------------------- any sweep

def loss_curves_figure(runs: pd.DataFrame, summary: pd.DataFrame, design: Design,
                       histories: dict[str, pd.Series]) -> Figure:
    """The loss of the first CURVE_SEEDS finished seeds of the best (blue) and worst (red)
    setting, a panel per condition sharing one log y scale."""
    panels = [rows for rows in conditions_of(summary, design) if best_and_worst(rows)]
    figure = new_figure(5 * len(panels) + 1, 4.5)
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, rows in zip(axes, panels):
        for (name, setting), colour in zip(best_and_worst(rows), ("tab:blue", "tab:red")):
            chosen = drawn_runs_of(runs, setting, design)
            for k, run_id in enumerate(chosen.run_id):
                history = histories.get(run_id)
                if history is not None and len(history):
                    # clipped as in the fit figure: a halve_on_plateau run's loss can near
                    # 1e308 before it goes back to its best weights
                    ax.plot(history.index, np.clip(history.to_numpy(), 1 / CLIP, CLIP),
                            color=colour, alpha=0.8, linewidth=1,
                            label=f"{name}: {in_words(setting, design.choices)}"
                            if k == 0 else None)
        ax.set(yscale="log", xlabel="epoch")
        plain_log_ticks(ax.yaxis)
        ax.set_title(condition_title(rows.iloc[0], design), fontsize=SLIDE + 1)
        if ax.lines:
            ax.legend(fontsize=SLIDE - 1, frameon=False)
    axes[0].set_ylabel("training loss (MSE, log scale)")
    figure.suptitle("Training loss of the best and the worst setting (by geometric mean "
                    f"{words('true_mse')}), one line per finished seed (the first {CURVE_SEEDS})",
                    fontsize=SLIDE + 1)
    return figure


def importance_figure(shares: pd.DataFrame) -> Figure:
    """Each swept key's share of the variance of true_mse, as horizontal bars."""
    rows = shares.iloc[::-1]
    figure = new_figure(6.5, 0.45 * len(rows) + 1.6)
    ax = figure.subplots()
    colours = ["tab:grey" if p == UNEXPLAINED else "tab:blue" for p in rows.parameter]
    ax.barh(range(len(rows)), 100 * rows.share, color=colours)
    ax.set_yticks(range(len(rows)), [words(p) if p in WORDS else p for p in rows.parameter])
    for i, share in enumerate(rows.share):
        ax.text(100 * share + 1, i, f"{100 * share:.0f}%", va="center", fontsize=SLIDE - 1)
    ax.set_xlim(0, 110)
    ax.set_xlabel(f"share of the variance of {words('true_mse')} (%)")
    ax.set_title(f"What matters: {shares.method.iloc[0]}", fontsize=SLIDE + 1)
    return figure
