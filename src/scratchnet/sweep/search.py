"""``search=optuna``: the Optuna side of a search, shared by its sweeper (in the launching
process) and its trials (in the jobs).

- the search space: ``hydra.sweeper.params`` and the command line, in Hydra's sweep syntax
  (``choice(...)``, ``range(...)``, ``interval(a, b)``, ``tag(log, interval(a, b))``), as
  Optuna distributions, every bound checked against the schema before anything runs;
- the study: by default in an Optuna journal file (``optuna-journal.log`` beside a sqlite
  MLflow store: one appended line per change, ~0.3 ms a report against ~2 ms for sqlite and
  0.5 ms a tell against 60 ms), or any Optuna RDB URL; named after the search, so the same
  command continues it;
- a trial's side: from epoch ``prune_after`` on, its loss reported every ``report_every``
  epochs and the pruner asked; the outcome told;
- warm start: finished runs of earlier sweeps inside the space added as trials.

``optuna`` is imported where it is used: the grid sweep never loads it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from .. import tracking
from ..config import Config, ConfigError, flatten, overrides_config, to_config

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "study.json"  # in the sweep folder: the storage and study the trials report to
JOURNAL_FILE = "optuna-journal.log"  # the default storage, beside a sqlite MLflow store
OLD_DEFAULT = "optuna.db"  # the default storage before the journal: continued where it exists
PRUNERS = ("median", "percentile", "hyperband", "none")
RUN_ATTR = "mlflow_run_id"  # trial user attr: the MLflow run that gave its value
WARM_ATTR = "warm_start"  # trial user attr: added from an earlier sweep's run, not run here
INTERRUPTED_ATTR = "interrupted"  # trial user attr: left RUNNING by a killed search
TAG_STUDY = tracking.TAG_STUDY  # on a search's parent run: its study's name
TAG_STORAGE = "scratchnet.optuna_storage"  # and the storage it is in (no credentials)


def is_search(sweeper_cfg: DictConfig) -> bool:
    """Whether hydra.sweeper is ours on Optuna (search=optuna)."""
    return str(sweeper_cfg.get("_target_", "")).endswith(".OptunaSweeper")


# ---------------------------------------------------------------- the search space

def search_space(params: dict[str, str], arguments: list[str]
                 ) -> tuple[dict[str, Any], list[str]]:
    """(key -> Optuna distribution, the fixed 'key=value' overrides): ``params`` then the
    command line, a later value of a key replacing an earlier one, as Hydra merges them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(key, override)
        else:
            fixed[key] = f"{key}={override.get_value_element_as_str()}"
    return space, list(fixed.values())


def distribution(key: str, override) -> Any:
    """The Optuna distribution of one swept key: interval -> float (int with ``tag(int,
    ...)``, log-scaled with ``tag(log, ...)``), choice and range -> categorical."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    value = override.value()
    try:
        if override.is_interval_sweep():
            log = "log" in value.tags
            if "int" in value.tags:
                return IntDistribution(int(value.start), int(value.end), log=log)
            return FloatDistribution(value.start, value.end, log=log)
        if override.is_choice_sweep() or override.is_range_sweep():
            return CategoricalDistribution(list(override.sweep_iterator()))
    except ValueError as error:  # e.g. low > high, log of a bound <= 0
        raise ConfigError(f"hydra.sweeper.params.{key}: {error}") from None
    raise ConfigError(f"hydra.sweeper.params.{key}: {override.input_line!r} is not a search "
                      "space; use choice(...), range(...), interval(a, b) or tag(log, ...)")


def check(cfg: DictConfig, base: Config) -> str:
    """Before anything is written: the search space inside every key's valid range, a known
    pruner, a storage that opens; its URL."""
    sweeper_cfg = cfg.hydra.sweeper
    space, _ = search_space(dict(sweeper_cfg.params or {}), list(cfg.hydra.overrides.task))
    check_space(cfg, space)
    make_pruner(str(sweeper_cfg.pruner))
    for key in ("prune_after", "report_every"):
        if int(sweeper_cfg[key]) < 1:
            raise ConfigError(f"hydra.sweeper.{key}: must be at least 1 epoch, "
                              f"got {sweeper_cfg[key]}")
    url = storage_url(sweeper_cfg, base.tracking.uri, Path(cfg.hydra.runtime.cwd))
    open_storage(url)
    return url


def bounds(space_item: Any) -> list[Any]:
    """The values of a distribution that a check must try: its choices or both ends."""
    choices = getattr(space_item, "choices", None)
    return list(choices) if choices is not None else [space_item.low, space_item.high]


def check_space(cfg: DictConfig, space: dict[str, Any]) -> None:
    """Every choice and both ends of every interval, each in the composed config (the fixed
    overrides in it), through the schema's checks: a value outside a key's valid range
    stops here, naming the key."""
    for key, item in space.items():
        for value in bounds(item):
            try:
                to_config(overrides_config(cfg, [override_line(key, value)]))
            except ConfigError as error:
                raise ConfigError(f"hydra.sweeper.params.{key}: the search space reaches "
                                  f"{value!r}: {error}") from None


def override_line(key: str, value: Any) -> str:
    return f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"


def make_pruner(name: str, prune_after: int = 1) -> optuna.pruners.BasePruner:
    """hydra.sweeper.pruner: median (Optuna's default), percentile (the best 25 % go on),
    hyperband, or none; median and percentile prune nothing before epoch ``prune_after``."""
    import optuna

    warmup = {"n_warmup_steps": prune_after}  # steps are epochs: the first one pruned at
    pruners = {"median": lambda: optuna.pruners.MedianPruner(**warmup),
               "percentile": lambda: optuna.pruners.PercentilePruner(25.0, **warmup),
               "hyperband": optuna.pruners.HyperbandPruner, "none": optuna.pruners.NopPruner}
    if name not in pruners:
        raise ConfigError(f"hydra.sweeper.pruner: must be one of {', '.join(PRUNERS)}, "
                          f"got {name!r}")
    return pruners[name]()


# ---------------------------------------------------------------- the study

def storage_url(sweeper_cfg: DictConfig, tracking_uri: str, launched_in: Path) -> str:
    """hydra.sweeper.storage (an Optuna RDB URL or a journal file's path), or the journal file
    beside a sqlite MLflow store (``optuna.db`` there if an earlier search made one, so its
    studies go on); relative paths are taken from where the command was started."""
    given = sweeper_cfg.get("storage")
    if given:
        given = str(given)
        return (tracking.sqlite_under(launched_in, given) if "://" in given
                else str(launched_in / given))
    mlflow_db = tracking.sqlite_path(tracking.sqlite_under(launched_in, tracking_uri))
    if mlflow_db is None:
        raise ConfigError("hydra.sweeper.storage: with a tracking server, give the Optuna "
                          "storage: a journal file on a shared disk, e.g. /shared/optuna.log, "
                          "or an RDB URL, e.g. postgresql://host/optuna")
    if (mlflow_db.parent / OLD_DEFAULT).exists():
        return f"sqlite:///{mlflow_db.parent / OLD_DEFAULT}"
    return str(mlflow_db.parent / JOURNAL_FILE)


def study_name(sweeper_cfg: DictConfig, key: str) -> str:
    """``<study_name>-<sweep key>``: the same search command, the same study."""
    return f"{sweeper_cfg.get('study_name') or 'scratchnet'}-{key}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``: a journal file (a path), or an RDB (its tables made on
    first use; sqlite writers wait up to a minute for each other; connections never pooled,
    since a job process is forked). A journal's lock left by a killed process is taken over
    after Optuna's grace period (30 s)."""
    import optuna
    from sqlalchemy.pool import NullPool

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial on stderr
    try:
        if "://" not in url:
            return optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(url))
        sqlite = url.startswith("sqlite:")
        engine = {"connect_args": {"timeout": 60}, "poolclass": NullPool} if sqlite else {}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as error:  # noqa: BLE001 (SQLAlchemy's, drivers' and OS errors vary)
        raise ConfigError(f"hydra.sweeper.storage: cannot open Optuna storage "
                          f"{tracking.strip_credentials(url)}: "
                          f"{tracking.describe_error(error)}") from None


@dataclass(frozen=True)
class StudyRef:
    """Where a trial reports: written by the sweeper to the sweep folder, read by each job."""
    storage: str
    name: str
    pruner: str
    prune_after: int = 1000  # first epoch reported and pruned at (study.json of older sweeps)
    report_every: int = 500  # epochs between reports from then on

    def write(self, sweep_dir: Path) -> None:
        partial = sweep_dir / (STUDY_FILE + ".partial")
        partial.write_text(json.dumps(self.__dict__))
        partial.replace(sweep_dir / STUDY_FILE)

    @classmethod
    def read(cls, sweep_dir: Path) -> StudyRef:
        return cls(**json.loads((sweep_dir / STUDY_FILE).read_text()))


def open_study(storage: optuna.storages.BaseStorage, ref: StudyRef,
               seed: int | None = None) -> optuna.Study:
    """The study, created on first use: TPE seeded, minimising true_mse. A study continued
    by a rerun seeds TPE with ``seed`` plus the trials already in it: seeded the same, it
    would propose the points of the first run again (its first trials are random draws)."""
    import optuna

    def with_seed(offset: int) -> optuna.Study:
        sampler = optuna.samplers.TPESampler(seed=None if seed is None else seed + offset)
        return optuna.create_study(storage=storage, study_name=ref.name, sampler=sampler,
                                   pruner=make_pruner(ref.pruner, ref.prune_after),
                                   direction="minimize",
                                   load_if_exists=True)

    study = with_seed(0)
    earlier = len(study.get_trials(deepcopy=False))
    return with_seed(earlier) if earlier else study


def counted(trial) -> bool:
    """A trial that counts towards n_trials: run by this search, and complete or pruned."""
    from optuna.trial import TrialState

    return (trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and not trial.user_attrs.get(WARM_ATTR))


def requeue_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage,
                        space: dict[str, Any]) -> int:
    """Trials a killed search left RUNNING: failed (marked interrupted, so they do not count)
    and, if they had a whole point of the space, that point enqueued, so the next trials asked
    run exactly those points. A trial killed while it was being asked (some of its parameters
    not yet drawn) never ran: it is failed only. How many were enqueued."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    study_id = storage.get_study_id_from_name(study.study_name)
    enqueued = 0
    for trial in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED_ATTR, True)
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        if set(trial.params) == set(space):
            study.enqueue_trial(trial.params)
            enqueued += 1
    return enqueued


# ---------------------------------------------------------------- a trial, in its job

class TrialReporter:
    """One trial as its job sees it: its loss reported, the pruner asked, the outcome told.

    The median and percentile pruners judge the trial against the trials complete when it
    was asked, copied once into an in-memory study: the same answer whichever of its batch
    finishes first, and no re-read of the storage at every report (Optuna re-reads every
    running trial with all its reports each time: ~10 ms a report by the end of a trial).
    Hyperband sorts trials into brackets by their numbers: it asks the study itself."""

    def __init__(self, ref: StudyRef, number: int):
        import optuna
        from optuna.trial import TrialState

        storage = open_storage(ref.storage)
        self.pruner = make_pruner(ref.pruner, ref.prune_after)
        self.report_every = ref.report_every
        self.next_report = ref.prune_after  # asked every log_every epochs: the first ask at or
        # after it reports
        self.study = optuna.load_study(study_name=ref.name, storage=storage, pruner=self.pruner)
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(ref.name), number)
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.number, self.reports = number, {}
        self.peers = None
        if ref.pruner in ("median", "percentile"):
            asked = storage.get_trial(trial_id).datetime_start
            self.peers = optuna.create_study(direction="minimize", pruner=self.pruner)
            self.peers.add_trials(t for t in self.study.get_trials(states=(TrialState.COMPLETE,))
                                  if t.datetime_complete <= asked)
        self.prunes = ref.pruner != "none"

    def should_stop(self, epoch: int, loss: float) -> bool:
        """From epoch prune_after on, every report_every epochs: report the loss at this epoch
        (step = epoch) and return the pruner's answer; before that the pruner could not judge
        (the loss curves cross: docs/operations.md) and a report would only cost time."""
        import optuna
        from optuna.trial import TrialState

        if epoch < self.next_report:
            return False
        self.next_report = epoch + self.report_every
        self.trial.report(loss, epoch)
        if self.peers is None:
            return bool(self.trial.should_prune())
        self.reports[epoch] = loss
        now = optuna.trial.create_trial(state=TrialState.RUNNING,
                                        intermediate_values=self.reports)
        return bool(self.pruner.prune(self.peers, now))  # numpy's bool_ from the median

    def tell(self, objective: float, run_id: str | None, pruned: bool) -> None:
        """COMPLETE with true_mse (inf for a diverged run), PRUNED, or FAIL (nan: crashed)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            if run_id is not None:
                self.trial.set_user_attr(RUN_ATTR, run_id)
        except UpdateFinishedTrialError:  # a rerun of the command failed it as interrupted
            return
        if pruned:
            self.study.tell(self.number, state=TrialState.PRUNED, skip_if_finished=True)
        elif math.isnan(objective):
            self.study.tell(self.number, state=TrialState.FAIL, skip_if_finished=True)
        else:
            self.study.tell(self.number, objective, skip_if_finished=True)


# ---------------------------------------------------------------- warm start

def warm_start(study: optuna.Study, client, exp_id: str, base: Config,
               space: dict[str, Any]) -> int:
    """Add to the study the FINISHED, unpruned child runs of earlier sweeps in the experiment
    whose every key is inside the space (swept keys) or equal to this search's (the others),
    oldest first, each once, with their true_mse and loss histories; how many were added."""
    import optuna

    known = {t.user_attrs.get(RUN_ATTR) for t in study.get_trials(deepcopy=False)}
    base_flat = {k: str(v) for k, v in flatten(base).items() if not k.startswith("tracking.")}
    added = 0
    for run in finished_sweep_runs(client, exp_id):
        value = run.data.metrics.get("true_mse")
        if run.info.run_id in known or value is None or tracking.TAG_PRUNED in run.data.tags:
            continue
        params = params_inside(run.data.params, base_flat, space)
        if params is None:
            continue
        # its loss history as the trial's reports (step = epoch), which the pruner compares
        history = tracking.with_retry(client.get_metric_history, run.info.run_id, "loss")
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=space, value=value,
            intermediate_values={m.step: m.value for m in history},
            user_attrs={RUN_ATTR: run.info.run_id, WARM_ATTR: True}))
        added += 1
    return added


def finished_sweep_runs(client, exp_id: str) -> list:
    """FINISHED runs of the experiment that belong to a sweep, oldest first."""
    query = f"attributes.status = 'FINISHED' and tags.`{tracking.TAG_PARENT}` != ''"
    runs, token = [], None
    while True:
        page = tracking.with_retry(client.search_runs, [exp_id], query, max_results=1000,
                                   order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def params_inside(params: dict[str, str], base_flat: dict[str, str],
                  space: dict[str, Any]) -> dict[str, Any] | None:
    """A run's swept values (as the distributions hold them) if the run is a point of this
    search: every other key as in the search's config, every swept one inside its range."""
    if any(params.get(key) != value for key, value in base_flat.items() if key not in space):
        return None
    point = {}
    for key, item in space.items():
        value = value_inside(params.get(key), item)
        if value is None:
            return None
        point[key] = value
    return point


def value_inside(text: str | None, item: Any) -> Any:
    """An MLflow param (a string) as a value of the distribution, or None if outside it."""
    if text is None:
        return None
    choices = getattr(item, "choices", None)
    if choices is not None:
        return next((c for c in choices if str(c) == text), None)
    try:
        value = float(text)
    except ValueError:
        return None
    if not item.low <= value <= item.high:
        return None
    from optuna.distributions import IntDistribution

    if isinstance(item, IntDistribution):
        return int(value) if value == int(value) else None
    return value
