"""The default run reproduces the article: its two published numbers, and the loss history
of the article's R code run in R 4.2.2 (Debian r-base-core), to double precision."""

import pytest

from conftest import compose_config
from scratchnet.nn.training import train_network

# Rscript of the article's code, sprintf("%.17g", losses[epoch]).
R_LOSSES = {1: 0.42358219306998612, 2: 0.207117087826515, 10: 0.09560175093339536,
            100: 0.092450918310971839, 1000: 0.071662951114176809, 3000: 0.03446110150963725}
R_Y_OBS_FIRST = [0.028817440262274365, 0.073936807429056658, 0.020189794557674969]


@pytest.fixture(scope="module")
def article_run():
    return train_network(compose_config())


def test_published_numbers(article_run):
    assert f"{article_run.initial_mse:.6f}" == "0.423582"
    assert f"{article_run.final_mse:.6f}" == "0.034461"


def test_loss_history_matches_r_run_of_the_article(article_run):
    assert len(article_run.fit.losses) == 3000
    for epoch, expected in R_LOSSES.items():
        assert article_run.fit.losses[epoch - 1] == pytest.approx(expected, rel=1e-13)


def test_data_matches_r(article_run):
    assert article_run.curve.y_obs[:3].tolist() == R_Y_OBS_FIRST
