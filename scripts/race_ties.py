"""How often a race drops a setting that is in fact tied with the best, and how soon it
drops one that is worse: simulated races on synthetic errors, no training.

    python scripts/race_ties.py --per-round      # the tables in docs/racing.md (4 min)
    python scripts/race_ties.py --races 100      # quicker, wider intervals

Each simulated race is ``scratchnet.report.racing.run_races``, the code search=race runs,
given drawn results instead of trained ones. A setting's true_mse on a seed is lognormal:
log true_mse = log 0.03 + seed effect (shared by the settings, sd 0.10) + noise (sd 0.12),
about what the default grid's settings show over 20 seeds (sd of log true_mse 0.10-0.15).

- Ties: k identical settings; the rate is the share of races in which any of them was
  dropped (the family-wise error of the race), with its 95% Clopper-Pearson interval.
- Power: 9 settings of which 8 tied and one ``ratio`` times worse (1.25x: the default grid's
  lr=0.05 against lr=0.1; 2.5x: lr=0.01); the median seed count at which it was dropped.

Both for the race as built (alpha split evenly over the rounds the pool allows) and for
tests at alpha in every round (simulated by giving run_races alpha times the rounds).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats

from scratchnet.report.racing import run_races

LOG_CENTRE, SEED_SD, NOISE_SD = math.log(0.03), 0.10, 0.12


def simulate(races: int, ratios: list[float], pool: int, first_test: int, alpha: float,
             per_round: bool, rng: np.random.Generator):
    """The races of ``races`` conditions, each with one setting per entry of ``ratios``
    (its errors that many times the first's, on average)."""
    seeds = list(range(1, pool + 1))
    log_ratio = np.log(ratios)
    # (condition, setting, seed) drawn up front, so both variants see the same errors
    logs = (LOG_CENTRE + SEED_SD * rng.standard_normal((races, 1, pool))
            + NOISE_SD * rng.standard_normal((races, len(ratios), pool)) + log_ratio[:, None])
    values = np.exp(logs)
    level = alpha * (pool - first_test + 1) if per_round else alpha

    def results(jobs):
        return {(c, s, seed): float(values[c, s, seed - 1]) for c, s, seed in jobs}

    conditions = {c: list(range(len(ratios))) for c in range(races)}
    return run_races(conditions, seeds, results, first_test, level)


def ties_row(races: int, k: int, args, per_round: bool, rng) -> str:
    found = simulate(races, [1.0] * k, args.pool, args.first_test, args.alpha, per_round, rng)
    lost = sum(1 for race in found.values() if race.drops)
    ci = stats.binomtest(lost, races).proportion_ci(0.95)
    how = f"alpha {args.alpha:g} every round" if per_round else "alpha split over rounds"
    return (f"| {k} tied settings | {how} | {lost} of {races} races "
            f"({100 * lost / races:.1f}%, 95% CI {100 * ci.low:.1f}-{100 * ci.high:.1f}%) |")


def power_row(races: int, ratio: float, args, per_round: bool, rng) -> str:
    found = simulate(races, [1.0] * 8 + [ratio], args.pool, args.first_test, args.alpha,
                     per_round, rng)
    at = [next((d.seeds for d in race.drops if d.setting == 8), math.inf)
          for race in found.values()]
    dropped = [seeds for seeds in at if seeds < math.inf]
    how = f"alpha {args.alpha:g} every round" if per_round else "alpha split over rounds"
    median = f"median at {np.median(dropped):g} seeds" if dropped else "never"
    return (f"| one setting {ratio:g}x worse among 9 | {how} | dropped in "
            f"{100 * len(dropped) / races:.0f}% of races, {median} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--races", type=int, default=400, help="simulated races per row")
    parser.add_argument("--pool", type=int, default=20, help="seeds in the pool")
    parser.add_argument("--first-test", type=int, default=5,
                        help="seeds before the first test")
    parser.add_argument("--alpha", type=float, default=0.05, help="the race's alpha")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated errors")
    parser.add_argument("--tied", default="2,3,9,30", help="numbers of identical settings, one row each")
    parser.add_argument("--per-round", action="store_true",
                        help="also the race with alpha in every round")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"pool {args.pool} seeds, first_test {args.first_test}, alpha {args.alpha:g}, "
          f"{args.races} simulated races per row\n")
    print("| what | tests | result |\n|---|---|---|")
    for per_round in (False, True) if args.per_round else (False,):
        for k in (int(k) for k in args.tied.split(",")):
            print(ties_row(args.races, k, args, per_round, rng), flush=True)
        for ratio in (1.25, 2.5):
            print(power_row(args.races // 4, ratio, args, per_round, rng), flush=True)


if __name__ == "__main__":
    main()
