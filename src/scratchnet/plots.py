"""A run's fit figure (the article's two panels), and the helpers the report's figures
share. Matplotlib's object-oriented API (``Figure``), never pyplot: no GUI backend or global
figure state in worker processes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import BinaryIO

import matplotlib
import matplotlib.image
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from .nn.data import Curve

# A diverged run's loss and fit reach ~1e308: axis padding and ticks beyond that overflow
# and drawing raises, so both are drawn clipped to +-1e200.
CLIP = 1e200
KEPT_LAYERS = 8  # sets of axis limits whose drawn axes a FitFigure keeps


class FitFigure:
    """The article's two panels: A, training loss (log scale); B, observations, true curve
    and the network's fit.

    Built once per process and redrawn for each run with new data: a sweep renders one per
    run. Fixed margins instead of a layout engine, fixed places for titles and axis labels,
    and plain-text log tick labels instead of mathtext keep a draw cheap. Most of a draw is
    text (tick labels, titles, legend), the same for every run whose axes have the same
    limits, so the figure is drawn in two layers, matplotlib's blitting: the axes with their
    ticks, labels and legend are drawn once per set of limits and kept as pixels; each run
    restores those and draws only its four lines and its title on top (about 5x cheaper than
    a whole draw). The y limits are rounded outward to tick values (``axes.autolimit_mode:
    round_numbers``; decades on the loss axis), so most runs of a sweep share one set.
    """

    def __init__(self) -> None:
        self.figure = Figure(figsize=(10, 4))
        self.canvas = FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.09, right=0.985, bottom=0.12, top=0.86, wspace=0.22)
        self.loss_axes, self.fit_axes = self.figure.subplots(1, 2)
        (self.loss_line,) = self.loss_axes.plot([], [], color="steelblue", linewidth=0.9)
        self.loss_axes.set_yscale("log")
        for set_formatter in (self.loss_axes.yaxis.set_major_formatter,
                              self.loss_axes.yaxis.set_minor_formatter):
            # labels between the decades too, up to 2.5 decades (the rounded limits span 1 or 2)
            set_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2.5, 1)))
        self.loss_axes.set(xlabel="Epoch", ylabel="MSE (log scale)")
        # y limits are rounded outward to ticks from the data (the loss's to decades), with a
        # little room above and below the points so that none sits on an edge; x limits are
        # the data's with a margin, so the first epochs' fall shows beside the axis
        self.loss_axes.margins(0.05, 0, tight=None)  # tight=None: rounding stays on
        self.fit_axes.margins(0.05, 0.02, tight=None)
        # Lines, not a scatter: Axes.relim() does not see collections.
        (self.observed,) = self.fit_axes.plot([], [], "o", color="grey", markersize=3,
                                              label="Observed")
        (self.truth,) = self.fit_axes.plot([], [], color="firebrick", linestyle="--",
                                           linewidth=1.5, label="True curve")
        (self.fit,) = self.fit_axes.plot([], [], color="steelblue", linewidth=1.5,
                                         label="NN fit")
        self.fit_axes.set(xlabel="Normalised time", ylabel="Normalised incidence")
        # Titles and axis labels at fixed places (axes coordinates): placed automatically,
        # every tick label is measured again at each draw.
        for axes, title, label_x in ((self.loss_axes, "A: Training loss", -0.17),
                                     (self.fit_axes, "B: True curve (red) vs NN fit (blue)", -0.11)):
            axes.set_title(title, y=1.0)  # an explicit y turns automatic placement off
            axes.yaxis.set_label_coords(label_x, 0.5)
            axes.xaxis.set_label_coords(0.5, -0.1)
        # The legend's handles are copies made here: it is drawn with the axes, in the kept
        # layer, so a line that crosses it is drawn over it (frameless, it hides nothing).
        self.fit_axes.legend(frameon=False)
        self.title = self.figure.suptitle("")
        # what each run draws on the kept layer, in this order
        self.run_artists = (self.loss_line, self.observed, self.truth, self.fit, self.title)
        for artist in self.run_artists:
            artist.set_animated(True)  # left out of a whole draw: the kept layer has none
        self.layers: dict[tuple, object] = {}  # axis limits -> the kept layer's pixels

    def save(self, target: str | Path | BinaryIO, losses: np.ndarray, curve: Curve,
             y_fit: np.ndarray, title: str = "", dpi: int = 100) -> None:
        """Draw one run and write it as PNG. losses: (epochs,); y_fit: (n_points,) at curve.t."""
        self.loss_line.set_data(np.arange(1, len(losses) + 1), np.clip(losses, 1 / CLIP, CLIP))
        self.observed.set_data(curve.t, curve.y_obs)
        self.truth.set_data(curve.t_dense, curve.y_true_dense)
        self.fit.set_data(curve.t, np.clip(y_fit, -CLIP, CLIP))
        for axes in (self.loss_axes, self.fit_axes):
            axes.relim()
            axes.autoscale_view(scaley=False)
            with matplotlib.rc_context({"axes.autolimit_mode": "round_numbers"}):
                axes.autoscale_view(scalex=False)
        self.title.set_text(title)
        self.figure.set_dpi(dpi)
        key = (dpi, self.loss_axes.get_xlim(), self.loss_axes.get_ylim(),
               self.fit_axes.get_xlim(), self.fit_axes.get_ylim())
        if key not in self.layers:
            if len(self.layers) == KEPT_LAYERS:  # 1.6 MB each: forget the oldest
                del self.layers[next(iter(self.layers))]
            self.canvas.draw()  # the animated run artists are left out
            self.layers[key] = self.canvas.copy_from_bbox(self.figure.bbox)
        self.canvas.restore_region(self.layers[key])
        for artist in self.run_artists:
            self.figure.draw_artist(artist)
        pixels = np.asarray(self.canvas.buffer_rgba())  # (height, width, 4) uint8
        # zlib level 1: a third of the default level's encoding time, the same pixels, a
        # slightly larger file
        matplotlib.image.imsave(target, pixels, format="png", dpi=dpi,
                                pil_kwargs={"compress_level": 1})


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
