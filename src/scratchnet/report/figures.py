"""The sweep report's figures, from tables.py's DataFrames: ``summary`` has one row per
setting (hidden_size, lr, noise) with <metric>_mean and <metric>_sd over seeds. Matplotlib's
object-oriented API (``Figure``), never pyplot: no GUI backend or global figure state."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..plots import CLIP, fix_margins, plain_log_ticks


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
            # clipped as in the fit figure: a halve_on_plateau run's loss can near 1e308
            # before it goes back to its best weights
            ax.plot(history.step, np.clip(history.value, 1 / CLIP, CLIP), color=color,
                    alpha=0.8, linewidth=1, label=label if k == 0 else None)
    ax.set(yscale="log", xlabel="epoch", ylabel="loss (MSE, log scale)",
           title="Loss curves: best vs worst setting (all seeds)")
    plain_log_ticks(ax.yaxis)
    ax.legend(frameon=False)
    return figure
