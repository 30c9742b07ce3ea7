"""Matplotlib figures. Uses the object-oriented API (``Figure``), never pyplot, so no
GUI backend or global figure state is involved in worker processes."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .data import Curve


def fit_figure(losses: np.ndarray, curve: Curve, y_fit: np.ndarray, title: str = "") -> Figure:
    """The article's two panels: A, training loss (log scale); B, observations, true curve
    and the network's fit. y_fit: (n_points,) predictions at curve.t."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, fit_axes = figure.subplots(1, 2)
    epochs = np.arange(1, len(losses) + 1)
    # A diverged run's loss and fit reach ~1e308: axis padding and ticks beyond that
    # overflow and drawing raises, so both are drawn clipped to +-1e200.
    shown = np.clip(losses, 1e-200, 1e200)
    loss_axes.plot(epochs, shown, color="steelblue", linewidth=0.9)
    loss_axes.set_yscale("log")
    loss_axes.set(xlabel="Epoch", ylabel="MSE (log scale)", title="A: Training loss")
    fit_axes.scatter(curve.t, curve.y_obs, color="grey", s=10, label="Observed")
    fit_axes.plot(curve.t_dense, curve.y_true_dense, color="firebrick", linestyle="--",
                  linewidth=1.5, label="True curve")
    fit_axes.plot(curve.t, np.clip(y_fit, -1e200, 1e200), color="steelblue", linewidth=1.5,
                  label="NN fit")
    fit_axes.set(xlabel="Normalised time", ylabel="Normalised incidence",
                 title="B: True curve (red) vs NN fit (blue)")
    fit_axes.legend(frameon=False)
    if title:
        figure.suptitle(title)
    return figure


def warm_up() -> None:
    """Render a small log-scale figure to memory once, so matplotlib's font and mathtext
    caches (about 0.4 s to build, for log-axis tick labels) are ready in a process that
    will fork one child per sweep job: the children inherit them instead of rebuilding."""
    import io

    figure = Figure(figsize=(2, 2), layout="constrained")
    axes = figure.subplots()
    axes.plot([1, 2, 3], [1.0, 0.1, 0.01])
    axes.set_yscale("log")
    figure.savefig(io.BytesIO(), format="png", dpi=50)
