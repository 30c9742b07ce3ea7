"""Matplotlib figures: a run's fit figure, and a sweep report's (report.py reads the data).
Uses the object-oriented API (``Figure``), never pyplot, so no GUI backend or global figure
state is involved in worker processes."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from .nn.data import Curve

if TYPE_CHECKING:
    import pandas as pd

# A diverged run's loss and fit reach ~1e308: axis padding and ticks beyond that overflow
# and drawing raises, so both are drawn clipped to +-1e200.
CLIP = 1e200


class FitFigure:
    """The article's two panels: A, training loss (log scale); B, observations, true curve
    and the network's fit.

    Built once per process and redrawn for each run with new data: a sweep renders one per
    run, and building the axes, ticks and legend anew each time cost more than drawing.
    Fixed margins instead of a layout engine, fixed places for titles and axis labels, and
    plain-text log tick labels instead of mathtext, for the same reason (together about 5x
    faster than a fresh constrained figure).
    """

    def __init__(self) -> None:
        self.figure = Figure(figsize=(10, 4))
        self.figure.subplots_adjust(left=0.09, right=0.985, bottom=0.12, top=0.86, wspace=0.22)
        self.loss_axes, self.fit_axes = self.figure.subplots(1, 2)
        (self.loss_line,) = self.loss_axes.plot([], [], color="steelblue", linewidth=0.9)
        self.loss_axes.set_yscale("log")
        for set_formatter in (self.loss_axes.yaxis.set_major_formatter,
                              self.loss_axes.yaxis.set_minor_formatter):
            set_formatter(LogFormatter(labelOnlyBase=False))
        self.loss_axes.set(xlabel="Epoch", ylabel="MSE (log scale)")
        # Lines, not a scatter: Axes.relim() does not see collections.
        (self.observed,) = self.fit_axes.plot([], [], "o", color="grey", markersize=3,
                                              label="Observed")
        (self.truth,) = self.fit_axes.plot([], [], color="firebrick", linestyle="--",
                                           linewidth=1.5, label="True curve")
        (self.fit,) = self.fit_axes.plot([], [], color="steelblue", linewidth=1.5,
                                         label="NN fit")
        self.fit_axes.set(xlabel="Normalised time", ylabel="Normalised incidence")
        # Titles and axis labels at fixed places (axes coordinates): placed automatically,
        # every tick label is measured again at each draw, a fifth of the figure's time.
        for axes, title, label_x in ((self.loss_axes, "A: Training loss", -0.17),
                                     (self.fit_axes, "B: True curve (red) vs NN fit (blue)", -0.11)):
            axes.set_title(title, y=1.0)  # an explicit y turns automatic placement off
            axes.yaxis.set_label_coords(label_x, 0.5)
            axes.xaxis.set_label_coords(0.5, -0.1)
        self.fit_axes.legend(frameon=False)
        self.title = self.figure.suptitle("")

    def save(self, target: str | Path | BinaryIO, losses: np.ndarray, curve: Curve,
             y_fit: np.ndarray, title: str = "", dpi: int = 100) -> None:
        """Draw one run and write it as PNG. losses: (epochs,); y_fit: (n_points,) at curve.t."""
        self.loss_line.set_data(np.arange(1, len(losses) + 1), np.clip(losses, 1 / CLIP, CLIP))
        self.observed.set_data(curve.t, curve.y_obs)
        self.truth.set_data(curve.t_dense, curve.y_true_dense)
        self.fit.set_data(curve.t, np.clip(y_fit, -CLIP, CLIP))
        for axes in (self.loss_axes, self.fit_axes):
            axes.relim()
            axes.autoscale_view()
        self.title.set_text(title)
        save_png(self.figure, target, dpi)


@functools.cache
def _fit_figure() -> FitFigure:
    return FitFigure()


def save_fit_figure(target: str | Path | BinaryIO, losses: np.ndarray, curve: Curve,
                    y_fit: np.ndarray, title: str = "", dpi: int = 100) -> None:
    """Render a run's two panels to ``target`` with this process's FitFigure."""
    _fit_figure().save(target, losses, curve, y_fit, title, dpi)


def warm_up() -> None:
    """Build this process's FitFigure and render it once to memory, so matplotlib's font
    caches are ready in a process that will fork one child per sweep job: the children
    inherit both instead of rebuilding them."""
    t = np.linspace(0.0, 1.0, 5)
    curve = Curve(t=t, y_obs=t, y_true=t, t_dense=t, y_true_dense=t)
    save_fit_figure(io.BytesIO(), np.array([1.0, 0.1, 0.01]), curve, t, "warm-up")


def save_png(figure: Figure, target: str | Path | BinaryIO, dpi: int = 100) -> None:
    # zlib level 1: a third of the default level's encoding time, the same pixels, a
    # slightly larger file
    figure.savefig(target, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})


def draw_png(make: Callable[[Any], Figure], data: Any, path: Path) -> None:
    """``make(data)`` saved as PNG: one figure of the report, where it is drawn."""
    save_png(make(data), path)


# The sweep report's figures, from report.py's DataFrames: ``summary`` has one row per
# setting (hidden_size, lr, noise) with <metric>_mean and <metric>_sd over seeds.


def mse_vs_lr_figure(summary: pd.DataFrame) -> Figure:
    """true_mse (top) and final_mse (bottom) against learning rate: a line per hidden size,
    a column per noise level, error bars of one sd over seeds."""
    noises = sorted(summary.noise.unique())
    figure = Figure(figsize=(5 * len(noises), 7))
    fix_margins(figure, rows=2, cols=len(noises), wgap=0.9, hgap=0.5)
    axes = figure.subplots(2, len(noises), squeeze=False, sharex=True)
    for col, noise in enumerate(noises):
        at_noise = summary[summary.noise == noise]
        for row, metric in enumerate(("true_mse", "final_mse")):
            ax = axes[row][col]
            for hidden, line in at_noise.groupby("hidden_size"):
                line = line.sort_values("lr")
                ax.errorbar(line.lr, line[f"{metric}_mean"], yerr=line[f"{metric}_sd"],
                            marker="o", capsize=3, label=f"hidden_size={hidden}")
            ax.set(xscale="log", yscale="log", title=f"{metric}, noise={noise:g}",
                   xlabel="learning rate" if row == 1 else "", ylabel=metric)
            plain_log_ticks(ax.xaxis, ax.yaxis)
            ax.legend(fontsize="small", frameon=False)
    return figure


def heatmap_figure(summary: pd.DataFrame) -> Figure:
    """Mean true_mse over seeds on a hidden-size x learning-rate grid, a panel per noise."""
    noises = sorted(summary.noise.unique())
    figure = Figure(figsize=(5 * len(noises), 4))
    # the gap holds a panel's colorbar labels and the next panel's y label
    fix_margins(figure, rows=1, cols=len(noises), right=0.55, wgap=1.1)
    axes = figure.subplots(1, len(noises), squeeze=False)[0]
    for ax, noise in zip(axes, noises):
        grid = heatmap_grid(summary, noise)
        image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis_r", aspect="auto")
        ax.set_xticks(range(len(grid.columns)), [f"{v:g}" for v in grid.columns])
        ax.set_yticks(range(len(grid.index)), [str(v) for v in grid.index])
        ax.set(xlabel="learning rate", ylabel="hidden size", title=f"mean true_mse, noise={noise:g}")
        values = grid.to_numpy(dtype=float)
        middle = np.nanmean(values) if np.isfinite(values).any() else 0.0
        for (i, j), value in np.ndenumerate(values):
            # dark text on the light (low) end of viridis_r, white on the dark end
            ax.text(j, i, "no finished run" if np.isnan(value) else f"{value:.4f}",
                    ha="center", va="center", fontsize="small",
                    color="black" if np.isnan(value) or value < middle else "white")
        figure.colorbar(image, ax=ax)
    return figure


def heatmap_grid(summary: pd.DataFrame, noise: float) -> pd.DataFrame:
    """Mean true_mse at one noise level: rows hidden_size, columns lr (ascending)."""
    at_noise = summary[summary.noise == noise]
    return at_noise.pivot(index="hidden_size", columns="lr", values="true_mse_mean").sort_index()


def loss_curves_figure(histories: dict[str, list[pd.DataFrame]]) -> Figure:
    """Loss curves of the best and worst settings, every seed, overlaid on a log scale.
    histories: setting label -> one DataFrame (step, value) per seed."""
    figure = Figure(figsize=(8, 5))
    fix_margins(figure)
    ax = figure.subplots()
    for (label, runs), color in zip(histories.items(), ("tab:blue", "tab:red")):
        for k, history in enumerate(runs):
            ax.plot(history.step, history.value, color=color, alpha=0.8, linewidth=1,
                    label=label if k == 0 else None)
    ax.set(yscale="log", xlabel="epoch", ylabel="loss (MSE, log scale)",
           title="Loss curves: best vs worst setting (all seeds)")
    plain_log_ticks(ax.yaxis)
    ax.legend(frameon=False)
    return figure


def fix_margins(figure: Figure, rows: int = 1, cols: int = 1, left: float = 0.8,
                right: float = 0.2, bottom: float = 0.55, top: float = 0.4, wgap: float = 0.0,
                hgap: float = 0.0) -> None:
    """Place the subplots with fixed margins and gaps, in inches. A layout engine
    (layout="constrained") computes them from the drawn text, which costs a second draw
    of the figure on every savefig."""
    width, height = figure.get_size_inches()
    axes_width = (width - left - right - (cols - 1) * wgap) / cols
    axes_height = (height - bottom - top - (rows - 1) * hgap) / rows
    figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                           top=1 - top / height, wspace=wgap / axes_width,
                           hspace=hgap / axes_height)


class PlainLogFormatter(LogFormatter):
    """The ticks a log axis labels by default, labelled as plain text (0.01, 0.02) rather
    than mathtext (10^-2, 2x10^-2): mathtext's parser costs ~0.15 s in a fresh process."""

    def __call__(self, x, pos=None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_ticks(*axes) -> None:
    for axis in axes:
        axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
        axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
