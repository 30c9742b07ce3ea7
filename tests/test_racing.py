"""The race's statistics (scratchnet.report.racing) on synthetic results: what it drops,
when it stops, and how often it drops a setting that is in fact tied. No training."""

import math

import numpy as np
import pytest
from scipy import stats

from scratchnet.report import racing
from scratchnet.report.racing import STOPS, friedman_p, round_level, run_races, runs_used
from scratchnet.report.stats import holm

POOL = list(range(1, 21))


def lognormal_results(ratios: dict, rng: np.random.Generator, sd: float = 0.12):
    """results(jobs) for run_races: setting s's true_mse on a seed is ratios[s] x 0.03 x a
    lognormal draw with a seed effect shared by all settings; fixed per job once drawn."""
    drawn: dict = {}
    seed_effect: dict = {}

    def results(jobs):
        for job in jobs:
            condition, setting, seed = job
            if job not in drawn:
                shared = seed_effect.setdefault((condition, seed), 0.1 * rng.standard_normal())
                drawn[job] = ratios[setting] * 0.03 * math.exp(shared + sd * rng.standard_normal())
        return {job: drawn[job] for job in jobs}
    return results


def asked_counter(results):
    """results, counting every job it is asked for."""
    asked = []

    def counted(jobs):
        asked.extend(jobs)
        return results(jobs)
    return counted, asked


def test_a_clearly_worse_setting_is_dropped_at_the_first_test():
    ratios = {"good": 1.0, "also good": 1.0, "bad": 3.0}
    races = run_races({"c": list(ratios)}, POOL, lognormal_results(ratios, np.random.default_rng(1)))
    first = races["c"].rounds[0]
    assert first.seeds == 5
    assert [drop.setting for drop in first.dropped] == ["bad"]
    assert first.dropped[0].p < round_level(0.05, 20, 5)
    assert "bad" not in races["c"].survivors


@pytest.mark.parametrize("tied,rate", [(2, 0.05), pytest.param(9, 0.08, marks=pytest.mark.slow)])
def test_identical_settings_are_dropped_in_at_most_the_stated_share_of_races(tied, rate):
    """120 races of identical settings over the default pool: the share of races that drop
    any of them is not above the rate docs/racing.md states (one-sided binomial test at
    1%). Measured over 400 races by scripts/race_ties.py: 1.8% with 2 settings, 5.2% with
    9; a tie with the observed best, the lowest of 9, is a little optimistic."""
    rng = np.random.default_rng(2026)
    ratios = {setting: 1.0 for setting in range(tied)}
    races = run_races({k: list(ratios) for k in range(120)}, POOL, lognormal_results(ratios, rng))
    lost = sum(1 for race in races.values() if race.drops)
    assert stats.binomtest(lost, 120, rate, alternative="greater").pvalue > 0.01, lost
    assert all(race.stopped == "pool" for race in races.values() if not race.drops)


def test_testing_at_alpha_every_round_would_drop_tied_settings_far_more_often():
    """Why alpha is split over the rounds: at 0.05 in every round (alpha x 16 split over
    16 rounds) the same races lose a tied setting in many more of them."""
    rng = np.random.default_rng(7)
    ratios = {"a": 1.0, "b": 1.0}
    split = run_races({k: list(ratios) for k in range(100)}, POOL, lognormal_results(ratios, rng))
    rng = np.random.default_rng(7)
    every = run_races({k: list(ratios) for k in range(100)}, POOL,
                      lognormal_results(ratios, rng), alpha=0.05 * 16)
    lost_split = sum(1 for race in split.values() if race.drops)
    lost_every = sum(1 for race in every.values() if race.drops)
    assert lost_every > 3 * max(lost_split, 1), (lost_split, lost_every)


def test_it_stops_when_one_setting_is_left():
    ratios = {"good": 1.0, "bad": 4.0}
    counted, asked = asked_counter(lognormal_results(ratios, np.random.default_rng(3)))
    races = run_races({"c": list(ratios)}, POOL, counted)
    race = races["c"]
    assert race.stopped == "one left" and race.survivors == ["good"] and race.best == "good"
    assert len(race.rounds) == 1 and len(asked) == 10 == runs_used(races)


def test_it_stops_when_the_pool_is_used_up():
    ratios = {"a": 1.0, "b": 1.0}
    counted, asked = asked_counter(lognormal_results(ratios, np.random.default_rng(4)))
    races = run_races({"c": list(ratios)}, list(range(1, 8)), counted)
    race = races["c"]
    if race.drops:  # a tied setting dropped by chance: the rest of this test is moot
        pytest.skip("a tied setting was dropped (the rate is tested above)")
    assert race.stopped == "pool" and len(race.rounds) == 3  # at 5, 6 and 7 seeds
    assert len(asked) == 14 == runs_used(races)
    assert {seed for _, _, seed in asked} == set(range(1, 8))


def test_it_stops_before_a_round_that_would_pass_max_runs():
    ratios = {"a": 1.0, "b": 1.0, "c": 1.0}
    counted, asked = asked_counter(lognormal_results(ratios, np.random.default_rng(5)))
    races = run_races({"x": list(ratios)}, POOL, counted, max_runs=20)
    assert races["x"].stopped == "max_runs"
    assert len(asked) <= 20 and len(asked) + len(races["x"].survivors) > 20


def test_it_stops_when_a_run_has_no_result_and_says_the_same_command_goes_on():
    ratios = {"a": 1.0, "b": 1.0}
    results = lognormal_results(ratios, np.random.default_rng(6))

    def crashing(jobs):
        answered = results(jobs)
        answered[jobs[-1]] = math.nan  # a crashed job
        return answered
    races = run_races({"c": list(ratios)}, POOL, crashing)
    assert races["c"].stopped == "missing" and races["c"].rounds == []
    assert "the same command" in STOPS["missing"]


def test_conditions_race_apart_on_the_same_seeds():
    ratios = {"good": 1.0, "bad": 4.0}
    tied = {"good": 1.0, "bad": 1.0}
    rng = np.random.default_rng(8)
    one, other = lognormal_results(ratios, rng), lognormal_results(tied, rng)

    def results(jobs):
        return {**one([j for j in jobs if j[0] == "clear"]),
                **other([j for j in jobs if j[0] == "tied"])}
    races = run_races({"clear": list(ratios), "tied": list(tied)}, list(range(1, 9)), results)
    assert races["clear"].stopped == "one left" and races["clear"].seeds_run("bad") == 5
    if not races["tied"].drops:
        assert races["tied"].stopped == "pool" and races["tied"].seeds_run("bad") == 8


def test_a_setting_that_diverged_on_most_seeds_is_dropped_as_diverged():
    values = np.array([[0.03, 0.031, 0.029, 0.03, 0.032],
                       [0.03, math.inf, math.inf, math.inf, math.inf],
                       [0.033, 0.032, 0.034, 0.031, 0.033]])
    test = racing.test_round(values, ["a", "b", "c"], 1, 0.05, round_level(0.05, 20, 5))
    assert [(drop.setting, drop.diverged) for drop in test.dropped] == [("b", 4)]
    assert math.isnan(test.dropped[0].p)
    assert test.best == "a"  # the lowest geometric mean among those that never diverged


def test_one_round_is_friedman_then_holm_adjusted_one_sided_paired_log_t_tests():
    """The round's numbers against SciPy called directly."""
    rng = np.random.default_rng(9)
    values = 0.03 * np.exp(rng.normal(0, 0.1, (4, 6)) + np.array([[0], [0.05], [0.4], [0.8]]))
    test = racing.test_round(values, list("abcd"), 2, 0.05, 0.01)
    assert test.best == "a" and test.seeds == 6
    assert test.friedman_p == pytest.approx(stats.friedmanchisquare(*values).pvalue)
    raw = [stats.ttest_rel(np.log(values[row]), np.log(values[0]),
                           alternative="greater").pvalue for row in (1, 2, 3)]
    assert list(test.p.values()) == pytest.approx(list(holm(raw)))
    assert [d.setting for d in test.dropped] == [s for s, p in test.p.items() if p < 0.01]


def test_a_round_drops_nobody_when_friedman_finds_no_difference():
    values = np.full((3, 5), 0.03) * np.array([[1.0], [1.0], [1.0]])
    values[2] *= np.array([1.2, 0.9, 1.1, 0.95, 1.05])
    test = racing.test_round(values, list("abc"), 1, 0.05, 0.05)
    assert friedman_p(values) >= 0.05 and test.dropped == ()
