"""The article's data: a noisy epidemic bell curve over a time index in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DENSE_POINTS = 500  # grid on which a fit is scored against the noise-free curve


@dataclass(frozen=True)
class Curve:
    """Observations and truth, all min-max normalised with the observations' range."""

    t: np.ndarray  # (n_points,) time index in [0, 1]
    y_obs: np.ndarray  # (n_points,) noisy observations, normalised to [0, 1]
    y_true: np.ndarray  # (n_points,) noise-free curve at t, same normalisation
    t_dense: np.ndarray  # (DENSE_POINTS,) grid for scoring the fit
    y_true_dense: np.ndarray  # (DENSE_POINTS,) noise-free curve on t_dense
    y_low: float  # the noisy observations' minimum and range: y_data = y_low + y_span * y
    y_span: float


def r_seq(start: float, stop: float, length: int) -> np.ndarray:
    """R's ``seq(start, stop, length.out=length)``: evenly spaced, both ends exact."""
    if length == 1:
        return np.array([float(start)])
    step = (stop - start) / (length - 1)
    inner = start + np.arange(1, length - 1) * step
    return np.concatenate(([start], inner, [stop])).astype(np.float64)


def bell(t: np.ndarray, peak: float, width: float) -> np.ndarray:
    """Unnormalised epidemic curve exp(-(t - peak)^2 / width), the article's y_true."""
    return np.exp(-((t - peak) ** 2) / width)


def make_curve(noise_draws: np.ndarray, peak: float, width: float, noise: float) -> Curve:
    """Build the data set from standard-normal draws, one per point (n_points,).

    The draws are passed in so the caller decides the random stream (R's or numpy's).
    As in the article, observations are min-max normalised after the noise is added.
    """
    t = r_seq(0.0, 1.0, len(noise_draws))
    y_raw = bell(t, peak, width)
    y_noisy = y_raw + noise * noise_draws
    low, high = y_noisy.min(), y_noisy.max()
    span = high - low if high > low else 1.0  # two identical points: nothing to stretch

    def normalise(y: np.ndarray) -> np.ndarray:
        return (y - low) / span

    t_dense = r_seq(0.0, 1.0, DENSE_POINTS)
    return Curve(
        t=t,
        y_obs=normalise(y_noisy),
        y_true=normalise(y_raw),
        t_dense=t_dense,
        y_true_dense=normalise(bell(t_dense, peak, width)),
        y_low=float(low),
        y_span=float(span),
    )
