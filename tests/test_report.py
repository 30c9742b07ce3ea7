"""The report's figures label log axes with plain numbers where matplotlib labels them."""

import io

import pytest
from matplotlib.figure import Figure

from scratchnet.plots import plain_log_ticks


def labelled_ticks(axis) -> list[tuple[float, str]]:
    """(position, label) of every labelled major and minor tick, as drawn."""
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    return sorted((tick.get_loc(), tick.label1.get_text()) for tick in ticks
                  if tick.label1.get_visible() and tick.label1.get_text())


def drawn_log_axes(low: float, high: float, plain: bool):
    figure = Figure()
    ax = figure.subplots()
    ax.plot([1, 2], [low, high])
    ax.set_yscale("log")
    if plain:
        plain_log_ticks(ax.yaxis)
    figure.savefig(io.BytesIO(), format="png")
    return ax.yaxis


def test_plain_log_ticks_label_the_ticks_matplotlib_labels_with_their_values():
    # under a decade (minor ticks labelled), about one, several decades
    for low, high in ((0.021, 0.095), (0.02, 0.9), (1e-4, 2.0)):
        default = labelled_ticks(drawn_log_axes(low, high, plain=False))
        plain = labelled_ticks(drawn_log_axes(low, high, plain=True))
        assert [loc for loc, _ in plain] == [loc for loc, _ in default]
        assert plain and all(float(text) == pytest.approx(loc, rel=1e-9) for loc, text in plain)
