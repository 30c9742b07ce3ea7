"""The data generator: the article's curve, its normalisation, and the random streams."""

import numpy as np
import pytest

from conftest import compose_config
from scratchnet.nn.data import DENSE_POINTS, bell, make_curve, r_seq
from scratchnet.nn.training import random_streams, train_network


def test_r_seq_matches_r_definition():
    t = r_seq(0.0, 1.0, 60)
    assert t[0] == 0.0 and t[-1] == 1.0 and len(t) == 60
    assert t[1:-1].tolist() == [i * (1.0 / 59) for i in range(1, 59)]


def test_observations_are_min_max_normalised_and_truth_shares_the_map():
    draws = np.random.default_rng(0).standard_normal(60)
    curve = make_curve(draws, peak=0.4, width=0.025, noise=0.06)
    assert curve.y_obs.min() == 0.0 and curve.y_obs.max() == 1.0
    raw_noisy = bell(curve.t, 0.4, 0.025) + 0.06 * draws
    low, span = raw_noisy.min(), raw_noisy.max() - raw_noisy.min()
    np.testing.assert_allclose(curve.y_true, (bell(curve.t, 0.4, 0.025) - low) / span, rtol=1e-15)
    assert curve.t_dense.shape == curve.y_true_dense.shape == (DENSE_POINTS,)
    np.testing.assert_allclose(curve.y_true_dense, (bell(curve.t_dense, 0.4, 0.025) - low) / span,
                               rtol=1e-15)


def test_without_noise_observations_equal_the_truth():
    curve = make_curve(np.random.default_rng(1).standard_normal(30), 0.4, 0.025, noise=0.0)
    np.testing.assert_array_equal(curve.y_obs, curve.y_true)


def test_two_points_and_flat_data_do_not_divide_by_zero():
    curve = make_curve(np.zeros(2), peak=0.5, width=0.025, noise=0.0)  # both ends equal
    assert np.isfinite(curve.y_obs).all()


def test_the_r_stream_draws_noise_then_weights_from_one_stream():
    draw_noise, draw_weights = random_streams(1, "r")
    assert draw_noise is not None and draw_noise.__self__ is draw_weights.__self__


def test_numpy_streams_keep_the_data_fixed_when_the_network_changes():
    small = train_network(compose_config(["data.rng=numpy", "model.hidden_size=4", "train.epochs=2"]))
    large = train_network(compose_config(["data.rng=numpy", "model.hidden_size=64", "train.epochs=2"]))
    np.testing.assert_array_equal(small.curve.y_obs, large.curve.y_obs)


@pytest.mark.parametrize("rng", ["r", "numpy"])
def test_seed_fully_determines_a_run(rng):
    config = compose_config([f"data.rng={rng}", "train.epochs=50", "seed=3"])
    first, second = train_network(config), train_network(config)
    assert first.fit.losses.tobytes() == second.fit.losses.tobytes()
    other = train_network(compose_config([f"data.rng={rng}", "train.epochs=50", "seed=4"]))
    assert other.fit.losses[0] != first.fit.losses[0]
