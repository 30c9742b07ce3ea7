"""The fit figure is one Figure per process, redrawn for each run on axes it keeps drawn per
set of axis limits: a run's PNG must not depend on the runs drawn before it."""

import io

import numpy as np

from scratchnet.nn.data import make_curve
from scratchnet.nn.rrng import RRandom
from scratchnet.plots import FitFigure


def png(figure: FitFigure, losses, noise_seed: int, y_fit, title: str) -> bytes:
    curve = make_curve(RRandom(noise_seed).rnorm(30), 0.4, 0.025, 0.06)
    buffer = io.BytesIO()
    figure.save(buffer, np.asarray(losses, dtype=float), curve, np.asarray(y_fit), title)
    return buffer.getvalue()


def test_a_redrawn_figure_is_byte_identical_to_a_fresh_one():
    run_a = (np.geomspace(0.5, 0.03, 3000), 1, np.linspace(-0.1, 0.7, 30), "run a")
    run_b = (np.geomspace(1e-3, 1e250, 90), 2, np.full(30, 1e300), "run b (diverged)")
    fresh = png(FitFigure(), *run_a)
    reused = FitFigure()
    png(reused, *run_b)
    assert png(reused, *run_a) == fresh  # axes drawn anew: other limits than run b's
    assert png(reused, *run_b) != fresh  # the figure does show the data it is given
    assert png(reused, *run_a) == fresh  # on the axes kept from its first draw


def test_runs_on_the_same_axes_differ_by_their_lines_and_title_only():
    from PIL import Image

    figure = FitFigure()
    losses = np.geomspace(0.5, 0.03, 3000)
    one = png(figure, losses, 1, np.linspace(-0.1, 0.7, 30), "run one")
    two = png(figure, losses * 1.1, 3, np.linspace(0.0, 0.6, 30), "run two")
    assert len(figure.layers) == 1  # the same rounded limits: one kept drawing of the axes
    pixels = [np.asarray(Image.open(io.BytesIO(image)).convert("RGB"), dtype=int)
              for image in (one, two)]
    changed = np.any(pixels[0] != pixels[1], axis=2)  # (height, width)
    assert 0 < changed.mean() < 0.1  # the lines and the title, not the axes and their text
