"""A run's fit figure (the article's two panels), and the helpers the report's figures
share. Matplotlib's object-oriented API (``Figure``), never pyplot: no GUI backend or global
figure state in worker processes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import BinaryIO

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from .nn.data import Curve

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


def save_png(figure: Figure, target: str | Path | BinaryIO, dpi: int = 100) -> None:
    # zlib level 1: a third of the default level's encoding time, the same pixels, a
    # slightly larger file
    figure.savefig(target, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})


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
