"""The statistics of a race (F-race, Birattari et al. 2002; irace, López-Ibáñez et al. 2016),
pure numpy and SciPy (no I/O): settings race within each condition over a pool of seeds.
Every setting runs the first ``first_test`` seeds; then, round after round, the survivors
are tested and those significantly worse than the best are dropped, and each survivor left
runs one more seed. A race ends when one setting is left, the pool is used up, the next round
would pass ``max_runs`` runs in all, or a run it needs has no result (it crashed).

Each round's test, on the survivors' true_mse over the seeds all of them ran:

- the best: the lowest geometric mean among the survivors that diverged on no seed (all
  survivors when each diverged somewhere), as the report names a condition's best;
- the omnibus test, with 3 survivors or more: Friedman's (F-race's), on the ranks within
  each seed (a diverged run ranks last); when it finds no difference (p >= alpha) nobody
  is dropped. With 2 survivors the pairwise test is the only one;
- each other survivor against the best: the report's paired t-test on the logarithms
  (``stats.paired_log_p``: the same implementation, so race and report agree), one-sided
  (is it worse?), over the seeds both finished, Holm-adjusted over the round's tests;
  dropped when the adjusted p is below alpha / R, R = the rounds the pool allows
  (pool - first_test + 1, 16 for the defaults): tested every round at alpha, a tied
  setting would be dropped in some round far more often than alpha (docs/racing.md
  measures both). A survivor that finished fewer than 2 of
  the best's seeds (it diverged on the others) has no test: it is dropped as diverged.

``run_races`` is the loop; it asks a function for the results of each round's runs, which
the race sweeper answers by running them, the report by reading them back, tests by
drawing them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from .stats import holm, paired_log_p

FIRST_TEST = 5  # seeds before the first test (docs/racing.md: power and false drops)
ALPHA = 0.05  # a survivor is dropped when its adjusted p is below this
MIN_SHARED = 2  # seeds a paired test needs

Job = tuple[Hashable, Hashable, int]  # (condition, setting, seed)


@dataclass(frozen=True)
class Drop:
    """A setting dropped from its race: at which round, after how many seeds, by which
    adjusted p (NaN: it had no test, having diverged on ``diverged`` of its seeds)."""

    setting: Hashable
    round: int  # 1 = the first test
    seeds: int  # seeds it ran, all of which the round's test saw
    p: float
    diverged: int = 0


@dataclass(frozen=True)
class RoundTest:
    """One round of one race: its survivors before the test, the best, Friedman's p (NaN with
    2 survivors, or when it cannot be computed), each other survivor's adjusted p (NaN when
    it had no test) and who was dropped."""

    seeds: int
    survivors: tuple
    best: Hashable | None
    friedman_p: float
    p: dict
    dropped: tuple[Drop, ...]


@dataclass
class Race:
    """The race of one condition: its settings, in the order given, and what became of them."""

    settings: list
    survivors: list
    rounds: list[RoundTest] = field(default_factory=list)
    stopped: str = ""  # why it ended: see STOPS

    @property
    def drops(self) -> list[Drop]:
        return [drop for test in self.rounds for drop in test.dropped]

    @property
    def best(self) -> Hashable | None:
        """The best survivor at the last test (the race's own pick; the report tests again)."""
        return self.rounds[-1].best if self.rounds else None

    def seeds_run(self, setting: Hashable) -> int:
        """Seeds this setting ran: until it was dropped, or the seeds of the last round."""
        for drop in self.drops:
            if drop.setting == setting:
                return drop.seeds
        return self.rounds[-1].seeds if self.rounds else 0


STOPS = {"one left": "one setting left", "pool": "the pool of seeds is used up",
         "max_runs": "the next round would pass max_runs", "missing": "runs it needs have "
         "no result (crashed, or not run yet): the same command runs them and goes on"}


def run_races(conditions: dict[Hashable, Sequence[Hashable]], pool: Sequence[int],
              results: Callable[[list[Job]], dict[Job, float]], first_test: int = FIRST_TEST,
              alpha: float = ALPHA, max_runs: int | None = None,
              on_round: Callable[[Hashable, Race], None] | None = None) -> dict[Hashable, Race]:
    """Race the settings of every condition over the seeds of ``pool``, in its order, all
    conditions round by round together. ``results(jobs)`` gives each job's true_mse (inf:
    diverged; NaN or absent: no result). ``on_round(condition, race)`` is told of each
    round tested. Returns each condition's race."""
    races = {condition: Race(list(settings), list(settings))
             for condition, settings in conditions.items()}
    level = round_level(alpha, len(pool), first_test)
    known: dict[Job, float] = {}  # every result so far
    used, seeds = 0, first_test
    while running := {c: race for c, race in races.items() if not race.stopped}:
        jobs = round_jobs(running, pool, seeds, first_test)
        if max_runs is not None and used + len(jobs) > max_runs:
            stop(running, "max_runs")
            break
        answered = results(jobs)
        used += len(jobs)
        known.update((job, answered.get(job, math.nan)) for job in jobs)
        if any(math.isnan(known[job]) for job in jobs):
            stop(running, "missing")
            break
        for condition, race in running.items():
            values = np.array([[known[(condition, setting, seed)] for seed in pool[:seeds]]
                               for setting in race.survivors])
            race.rounds.append(test_round(values, race.survivors, len(race.rounds) + 1, alpha,
                                          level))
            gone = {drop.setting for drop in race.rounds[-1].dropped}
            race.survivors = [s for s in race.survivors if s not in gone]
            if on_round is not None:
                on_round(condition, race)
            if len(race.survivors) <= 1:
                race.stopped = "one left"
        if seeds == len(pool):
            stop(running, "pool")
        seeds += 1
    return races


def round_level(alpha: float, pool_size: int, first_test: int) -> float:
    """The level of each round's tests: alpha split evenly (Bonferroni) over the rounds the
    pool allows, so that a setting tied with the best is dropped in some round with
    probability at most about alpha, not alpha in every round (docs/racing.md measures it)."""
    return alpha / (pool_size - first_test + 1)


def round_jobs(running: dict[Hashable, Race], pool: Sequence[int], seeds: int,
               first_test: int) -> list[Job]:
    """The runs of the round at ``seeds`` seeds: the first first_test seeds of every
    setting, then the next seed of each survivor."""
    new = pool[:seeds] if seeds == first_test else pool[seeds - 1:seeds]
    return [(condition, setting, seed) for condition, race in running.items()
            for setting in race.survivors for seed in new]


def stop(races: dict[Hashable, Race], why: str) -> None:
    for race in races.values():
        if not race.stopped:
            race.stopped = why


def runs_used(races: dict[Hashable, Race]) -> int:
    """The runs the races used (each setting's seeds until it was dropped or they ended)."""
    return sum(race.seeds_run(setting) for race in races.values() for setting in race.settings)


# ---------------------------------------------------------------- one round's test

def test_round(values: np.ndarray, survivors: Sequence[Hashable], number: int,
               alpha: float, level: float) -> RoundTest:
    """The test of round ``number`` on ``values``: (survivors, seeds) true_mse, inf where a
    run diverged, a column per seed that every survivor ran. Friedman's test gates at
    ``alpha``, as in F-race; a survivor is dropped when its Holm-adjusted p is below
    ``level`` (alpha split over the rounds). Since a drop needs both, the chance of dropping
    a tied setting is bounded by the pairwise tests alone, and the gate costs no power at
    the split level (gated there, a setting 2.5x worse among 8 tied ones waited for 8 seeds
    in simulated races instead of being dropped at the first test)."""
    seeds = values.shape[1]
    best = best_row(values)
    if best is None:  # every run diverged: nothing to compare with
        return RoundTest(seeds, tuple(survivors), None, math.nan, {}, ())
    omnibus = friedman_p(values)
    finished = np.isfinite(values)
    tested, raw, untestable = [], [], []
    for row in range(len(survivors)):
        if row == best:
            continue
        shared = finished[row] & finished[best]
        if shared.sum() < MIN_SHARED:
            untestable.append(row)
        else:
            tested.append(row)
            raw.append(paired_log_p(values[row, shared], values[best, shared],
                                    alternative="greater"))
    adjusted = dict(zip(tested, holm(raw))) if tested else {}
    significant = len(survivors) < 3 or omnibus < alpha  # NaN: no evidence of a difference
    drops = [Drop(survivors[row], number, seeds, float(p)) for row, p in adjusted.items()
             if significant and p < level]
    drops += [Drop(survivors[row], number, seeds, math.nan, int((~finished[row]).sum()))
              for row in untestable]
    order = {setting: k for k, setting in enumerate(survivors)}
    return RoundTest(seeds, tuple(survivors), survivors[best], omnibus,
                     {survivors[row]: float(p) for row, p in adjusted.items()},
                     tuple(sorted(drops, key=lambda drop: order[drop.setting])))


def best_row(values: np.ndarray) -> int | None:
    """The row of lowest geometric mean among the rows with no diverged run (among all rows
    with a finished run when each has a diverged one), the first on a tie; None if every run
    diverged."""
    finished = np.isfinite(values)
    pool = np.flatnonzero(finished.all(axis=1))
    if not len(pool):
        pool = np.flatnonzero(finished.any(axis=1))
    if not len(pool):
        return None
    log_means = [np.log(values[row, finished[row]]).mean() for row in pool]
    return int(pool[int(np.argmin(log_means))])


def friedman_p(values: np.ndarray) -> float:
    """Friedman's test of (settings, seeds) values, ranked within each seed (a diverged run,
    inf, ranks last); NaN with fewer than 3 settings or when every seed ties all settings."""
    if len(values) < 3:
        return math.nan
    with np.errstate(all="ignore"):
        p = scipy_stats.friedmanchisquare(*values).pvalue
    return float(p)
