"""``search=race`` (``hydra/sweeper=race``): a race over seeds on Hydra's public Sweeper
plugin API (F-race's loop; the statistics are ``scratchnet.report.racing``). Every setting
of each condition runs the first ``first_test`` seeds of the pool, then each round tests the
survivors, drops those significantly worse than the best and runs one more seed of each one
left, all conditions' jobs of a round in one launch of whichever launcher is selected.

A job is the same job as in a grid (same overrides, same config hash): a job already
recorded in the experiment (by a grid, or by this race before it was killed) is answered
from its run by the sweep's resume lookup, so the same command continues a race and makes
the same eliminations.
"""

# No "from __future__ import annotations": Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore

from scratchnet.sweep.sweeper import LaunchingSweeper


@dataclass
class RaceSweeperConf:
    _target_: str = "hydra_plugins.scratchnet_race_sweeper.RaceSweeper"
    first_test: int = 5  # seeds every setting runs before the first test (docs/racing.md)
    alpha: float = 0.05  # a setting is dropped when its Holm-adjusted p is below this
    max_runs: int | None = None  # stop before a round that would pass this many runs
    params: dict[str, str] = field(default_factory=dict)  # key -> values; seed: the pool


ConfigStore.instance().store(group="hydra/sweeper", name="race", node=RaceSweeperConf,
                             provider="scratchnet")


class RaceSweeper(LaunchingSweeper):
    def __init__(self, first_test: int, alpha: float, max_runs: int | None = None,
                 params: dict | None = None) -> None:
        self.params = dict(params or {})
        self.returns: list = []  # each round's JobReturns
        self.client = None

    def sweep(self, arguments: list[str]) -> Any:
        from scratchnet.report.racing import run_races, runs_used
        from scratchnet.sweep import race

        plan = race.plan(self.config.hydra.sweeper, arguments)
        sweep_dir = self.make_sweep_dir()
        self.validate_batch_is_legal([race.all_jobs(plan)[0]])
        self.parent_tagged = False

        def show(condition, one_race) -> None:  # where the race stands, after each round
            print(race.round_line(condition, one_race), file=sys.stderr, flush=True)

        races = run_races(plan.conditions, plan.pool, lambda jobs: self.launch(plan, jobs, sweep_dir),
                          plan.first_test, plan.alpha, plan.max_runs, on_round=show)
        used = runs_used(races)
        print(*race.outcome_lines(races, plan, used), sep="\n", file=sys.stderr, flush=True)
        self.tag_parent(sweep_dir, race.outcome_tags(races, plan, used))
        return self.returns

    def launch(self, plan, jobs: list, sweep_dir: Path) -> dict:
        """Run one round's jobs in one launch; job -> true_mse (inf: diverged, nan: crashed)."""
        from scratchnet.sweep import race

        done = sum(len(batch) for batch in self.returns)
        batch = self.launcher.launch([plan.overrides(job) for job in jobs], initial_job_idx=done)
        self.returns.append(batch)
        answers = {job: float(ran.return_value)  # re-raises the error of a job that raised
                   for job, ran in zip(jobs, batch)}
        if not self.parent_tagged:  # how it races: the report replays the race from it
            self.tag_parent(sweep_dir, race.race_tag(plan))
            self.parent_tagged = True
        return answers

    def tag_parent(self, sweep_dir: Path, tags: dict) -> None:
        """Tags on the sweep's parent run (made by the sweep callback; its id in sweep.json)."""
        from scratchnet import tracking
        from scratchnet.config import to_config
        from scratchnet.sweep.job import SWEEP_FILE, wait_for_sweep_file

        info = wait_for_sweep_file(sweep_dir / SWEEP_FILE)
        if self.client is None:
            self.client = tracking.open_store(to_config(self.config).tracking.uri)
        tracking.log_batch(self.client, info["parent_run_id"], tags=tags)
