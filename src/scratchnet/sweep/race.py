"""``search=race``: the sweep side of a race over seeds (the statistics are
``scratchnet.report.racing``), in the launching process.

- the plan: the candidates are the grid of every swept key except ``seed``; the ``data.*``
  keys make the conditions, each raced apart; ``seed``'s values are the pool, in order;
  every key and value checked before anything is written;
- a job: one (condition, setting, seed), as the override list of the same job in a grid,
  so its config hash, and with it resume and the report, are a grid job's;
- the lines it prints: where the race stands after each round, what it found at the end;
- the tags it leaves on the parent run: how it was run (which the report replays) and
  what it found (to search for in MLflow).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from ..config import ConfigError

TAG_RACE = "scratchnet.race"  # on the parent: JSON of how it raced (pool, first_test, ...)
TAG_RUNS = "scratchnet.race_runs"  # runs the race used, e.g. '101'
TAG_FULL = "scratchnet.race_full_grid"  # runs of the full grid, e.g. '360'
TAG_SHARE = "scratchnet.race_share"  # their ratio, e.g. '0.28'
TAG_STOPPED = "scratchnet.race_stopped"  # why the races ended (racing.STOPS keys)
TAG_BEST = "scratchnet.race_best"  # each condition's best, e.g. 'noise=0.03: hidden_size=...'


def is_race(sweeper_cfg: DictConfig) -> bool:
    """Whether hydra.sweeper is ours for racing (search=race)."""
    return str(sweeper_cfg.get("_target_", "")).endswith(".RaceSweeper")


@dataclass(frozen=True)
class Plan:
    """What a race runs. A condition and a setting are tuples of 'key=value' overrides."""

    fixed: tuple[str, ...]  # keys given one value
    conditions: dict[tuple[str, ...], list[tuple[str, ...]]]  # condition -> its settings
    pool: tuple[int, ...]  # the seeds, in the order they are spent
    first_test: int
    alpha: float
    max_runs: int | None

    @property
    def full_grid(self) -> int:
        """Runs of the grid with every seed of the pool."""
        return sum(len(settings) for settings in self.conditions.values()) * len(self.pool)

    def overrides(self, job: tuple) -> list[str]:
        """The Hydra overrides of job (condition, setting, seed): those of the same grid job."""
        condition, setting, seed = job
        return [*self.fixed, *condition, *setting, f"seed={seed}"]

    def describe(self) -> dict[str, Any]:
        """How it races, for the parent's scratchnet.race tag (the report replays it)."""
        return {"pool": list(self.pool), "first_test": self.first_test, "alpha": self.alpha,
                "max_runs": self.max_runs}


def plan(sweeper_cfg: DictConfig, arguments: list[str]) -> Plan:
    """The race of hydra.sweeper (params, first_test, alpha, max_runs) and the command
    line's overrides, checked: a bad value stops here with one line naming its key."""
    import itertools

    axes = axis_values(dict(sweeper_cfg.get("params") or {}), arguments)
    pool = axes.pop("seed", None)
    if pool is None:
        raise ConfigError("hydra.sweeper.params.seed: a race needs a seed axis, the pool of "
                          "seeds it spends, e.g. seed='range(1,21)'")
    seeds = [override.partition("=")[2] for override in pool]
    if not all(seed.lstrip("-").isdigit() for seed in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"hydra.sweeper.params.seed: the pool must be distinct integers, "
                          f"got {','.join(seeds)}")
    if len(seeds) < 2:
        raise ConfigError(f"hydra.sweeper.params.seed: a pool of {len(seeds)} seed cannot be "
                          "raced (a paired test needs 2 seeds); give more, e.g. 'range(1,21)'")
    first_test = checked_int(sweeper_cfg, "first_test", 2, len(seeds),
                             f"the pool has {len(seeds)} seeds")
    alpha = sweeper_cfg.get("alpha")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ConfigError(f"hydra.sweeper.alpha: must be a number in (0, 1), got {alpha!r}")
    max_runs = sweeper_cfg.get("max_runs")
    if max_runs is not None:
        max_runs = checked_int(sweeper_cfg, "max_runs", 1, None, "")
    fixed = tuple(values[0] for values in axes.values() if len(values) == 1)
    condition_axes = [v for k, v in axes.items() if k.startswith("data.") and len(v) > 1]
    setting_axes = [v for k, v in axes.items() if not k.startswith("data.") and len(v) > 1]
    # in the order of their values (the report replays the race in that order)
    settings = sorted((tuple(s) for s in itertools.product(*setting_axes)), key=by_value)
    conditions = {tuple(c): settings
                  for c in sorted(itertools.product(*condition_axes), key=by_value)}
    return Plan(fixed, conditions, tuple(int(s) for s in seeds), first_test, float(alpha),
                max_runs)


def by_value(overrides) -> tuple:
    """Sort key of a tuple of 'key=value' overrides: each value as a number where it is one."""
    def value(line: str) -> tuple:
        text = line.partition("=")[2]
        try:
            return (0, float(text), "")
        except ValueError:
            return (1, 0.0, text)
    return tuple(value(line) for line in overrides)


def checked_int(sweeper_cfg: DictConfig, key: str, low: int, high: int | None,
                why: str) -> int:
    value = sweeper_cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (
            high is not None and value > high):
        bound = f"an integer >= {low}" + (f" and <= {high} ({why})" if high is not None else "")
        raise ConfigError(f"hydra.sweeper.{key}: must be {bound}, got {value!r}")
    return value


def axis_values(params: dict[str, str], arguments: list[str]) -> dict[str, list[str]]:
    """Key -> its 'key=value' overrides, params first and the command line over them (a
    later value of a key replacing an earlier one), each key's values in the order given."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .grid import expand

    lines = [f"{key}={values}" for key, values in params.items()] + list(arguments)
    axes: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        axes[key] = [job[0] for job in expand({}, [override.input_line])]
    return axes


def all_jobs(race_plan: Plan) -> list[list[str]]:
    """Every job the race may run (the full grid), for the checks before anything runs."""
    return [race_plan.overrides((condition, setting, seed))
            for condition, settings in race_plan.conditions.items()
            for setting in settings for seed in race_plan.pool]


# ---------------------------------------------------------------- what it prints

def words(overrides: tuple[str, ...]) -> str:
    """'hidden_size=8 lr=0.01' from ('model.hidden_size=8', 'train.lr=0.01')."""
    return " ".join(short(line) for line in overrides) or "all"


def short(line: str) -> str:
    key, _, value = line.partition("=")
    return f"{key.split('.')[-1]}={value}"


def round_line(condition: tuple[str, ...], race) -> str:
    """'[race] noise=0.03, round 2 at 6 seeds: 5 of 9 left; dropped hidden_size=8
    lr=0.01 (p=0.004)' for the round just tested."""
    test = race.rounds[-1]
    dropped = "; dropped " + ", ".join(
        f"{words(d.setting)} ({'diverged' if math.isnan(d.p) else f'p={d.p:.3g}'})"
        for d in test.dropped) if test.dropped else ""
    friedman = "" if math.isnan(test.friedman_p) else f", Friedman p={test.friedman_p:.3g}"
    where = f"{words(condition)}, " if condition else ""  # no data.* key swept: one race
    return (f"[race] {where}round {len(race.rounds)} at {test.seeds} seeds{friedman}: "
            f"{len(race.survivors)} of {len(race.settings)} left{dropped}")


def outcome_lines(races: dict, race_plan: Plan, used: int) -> list[str]:
    """What the race found, a line per condition and the runs it used."""
    from ..report.racing import STOPS

    lines = []
    for condition, race in races.items():
        best = words(race.best) if race.best is not None else "none"
        where = f"{words(condition)}: " if condition else ""
        lines.append(f"[race] {where}best {best}, {len(race.survivors)} "
                     f"left of {len(race.settings)} after {race.seeds_run(race.best)} seeds "
                     f"({STOPS.get(race.stopped, race.stopped)})")
    full = race_plan.full_grid
    lines.append(f"[race] {used} of {full} runs, {100 * used / full:.0f}% of the full grid")
    return lines


def outcome_tags(races: dict, race_plan: Plan, used: int) -> dict[str, str]:
    """The parent run's tags of what the race found."""
    return {TAG_RUNS: str(used), TAG_FULL: str(race_plan.full_grid),
            TAG_SHARE: f"{used / race_plan.full_grid:.2f}",
            TAG_STOPPED: ",".join(sorted({race.stopped for race in races.values()})),
            TAG_BEST: "; ".join(f"{words(c)}: {words(r.best) if r.best else 'none'}"
                                for c, r in races.items())[:5000]}


def race_tag(race_plan: Plan) -> dict[str, str]:
    return {TAG_RACE: json.dumps(race_plan.describe())}
