"""``search=optuna`` (``hydra/sweeper=scratchnet_optuna``): a search on Optuna through Hydra's
public Sweeper plugin API. Optuna does the searching: trials are asked in batches of
``n_jobs``, run in parallel by whichever launcher is selected, and each job reports its loss,
is pruned and tells its outcome itself (``scratchnet.sweep.search.TrialReporter``); the job
learns its trial from the hidden key ``hydra.sweeper.trial`` and the sweep folder's
``study.json``. The study lives in an Optuna storage (a journal file by default), so the same
command continues it until ``n_trials`` trials are complete or pruned.
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
class SamplerConf:
    seed: int | None = 1  # TPE's own randomness: the same search every time


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.scratchnet_optuna_sweeper.OptunaSweeper"
    study_name: str = "scratchnet"  # the study is '<study_name>-<sweep key>'
    n_trials: int = 30  # trials complete or pruned, in all (over reruns of the command)
    n_jobs: int = 2  # trials per batch, run in parallel
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: str = "median"  # median, percentile, hyperband or none
    prune_after: int = 1000  # epochs: before, loss curves cross and no trial is judged
    report_every: int = 500  # epochs between a trial's reports from prune_after on
    storage: str | None = None  # RDB URL or journal file; null: a journal beside a sqlite store
    warm_start: bool = False  # add earlier sweeps' runs inside the space before sampling
    params: dict[str, str] = field(default_factory=dict)  # key -> Hydra sweep expression
    trial: int | None = None  # set per job by the sweeper: the trial number it runs


ConfigStore.instance().store(group="hydra/sweeper", name="scratchnet_optuna",
                             node=OptunaSweeperConf, provider="scratchnet")


class OptunaSweeper(LaunchingSweeper):
    def __init__(self, study_name: str, n_trials: int, n_jobs: int, sampler: Any, pruner: str,
                 prune_after: int, report_every: int, storage: str | None, warm_start: bool,
                 params: dict | None = None, trial: int | None = None) -> None:
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.seed = sampler.get("seed") if sampler else None
        self.pruner, self.warm_start = pruner, bool(warm_start)
        self.prune_after, self.report_every = int(prune_after), int(report_every)
        self.params = dict(params or {})

    def sweep(self, arguments: list[str]) -> Any:
        from optuna.trial import TrialState

        from scratchnet.sweep import search

        space, fixed = search.search_space(self.params, arguments)
        study, ref = self.open_study(space)
        sweep_dir = self.make_sweep_dir()
        ref.write(sweep_dir)  # where the jobs report
        done = self.record_earlier_trials(study, fixed, sweep_dir)
        returns, launched = [], 0
        while launched < self.n_trials - done:
            trials = [study.ask(space)
                      for _ in range(min(self.n_jobs, self.n_trials - done - launched))]
            jobs = [[*fixed, *(search.override_line(k, t.params[k]) for k in space),
                     f"hydra.sweeper.trial={t.number}"] for t in trials]
            if not launched:
                self.validate_batch_is_legal(jobs[:1])
            batch = self.launcher.launch(jobs, initial_job_idx=launched)
            for trial in trials:  # a job whose process died could not tell its outcome
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            for job in batch:
                _ = job.return_value  # re-raises the error of a job that raised
            launched += len(trials)
            returns.append(batch)
        return returns

    def open_study(self, space: dict) -> tuple:
        """The study of this search (made or continued), its interrupted trials queued
        again and, with warm_start, earlier sweeps' runs added; and where it is."""
        from scratchnet import tracking
        from scratchnet.config import to_config
        from scratchnet.sweep import search
        from scratchnet.sweep.grid import sweep_key

        hydra_cfg = self.config.hydra
        base = to_config(self.config)
        ref = search.StudyRef(
            search.storage_url(hydra_cfg.sweeper, base.tracking.uri, Path(hydra_cfg.runtime.cwd)),
            search.study_name(hydra_cfg.sweeper, sweep_key(base, hydra_cfg)), self.pruner,
            self.prune_after, self.report_every)
        storage = search.open_storage(ref.storage)
        study = search.open_study(storage, ref, self.seed)
        notes = []
        requeued = search.requeue_interrupted(study, storage, space)
        if requeued:
            notes.append(f"{requeued} interrupted trials queued again")
        if self.warm_start:
            uri = tracking.sqlite_under(Path(hydra_cfg.runtime.cwd), base.tracking.uri)
            client = tracking.open_store(uri)
            exp_id = tracking.experiment_id(client, base.tracking.experiment, uri)
            notes.append(f"{search.warm_start(study, client, exp_id, base, space)} runs of "
                         "earlier sweeps added (warm start)")
        print(f"[search] Optuna study '{ref.name}': optuna-dashboard "
              f"{tracking.strip_credentials(ref.storage)}"
              + "".join(f"; {note}" for note in notes), file=sys.stderr)
        return study, ref

    def record_earlier_trials(self, study, fixed: list[str], sweep_dir: Path) -> int:
        """Trials an earlier run of this command completed or pruned: in the progress file as
        skipped (answered by earlier runs), as a grid's resumed jobs are; how many."""
        from scratchnet.sweep import search
        from scratchnet.sweep.progress import PROGRESS_FILE, append_progress

        done = [t for t in study.get_trials(deepcopy=False) if search.counted(t)]
        for trial in done:
            lines = [*fixed, *(search.override_line(k, v) for k, v in trial.params.items())]
            append_progress(sweep_dir / PROGRESS_FILE, "skipped", lines,
                            trial.user_attrs.get(search.RUN_ATTR))
        return len(done)
