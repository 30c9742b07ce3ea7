"""search=optuna in this process: the training loop's stop callback, a pruned run's record,
the search space and its checks, the study's storage, a trial's reports, interrupted trials
queued again, warm start from a grid's runs. Real Optuna studies in real sqlite storages,
real MLflow stores. The whole search in subprocesses is in test_optuna.py (slow)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from conftest import compose_config, one_error_line, recorded_sweep, run_train
from scratchnet import tracking
from scratchnet.config import ConfigError
from scratchnet.nn.training import train_network
from scratchnet.run import run
from scratchnet.sweep import search
from scratchnet.sweep.progress import Summary
from test_grid import multirun_hydra

SMALL = ["train.epochs=120", "model.hidden_size=8"]


# ---------------------------------------------------------------- the training loop

def test_should_stop_is_asked_every_log_every_epochs_with_that_epochs_loss():
    config = compose_config([*SMALL, "tracking.log_every=7"])
    asked = []
    result = train_network(config, lambda epoch, loss: asked.append((epoch, loss)) or False)
    losses = train_network(config).fit.losses
    assert [epoch for epoch, _ in asked] == list(range(7, 121, 7))
    assert [loss for _, loss in asked] == [losses[epoch - 1] for epoch in range(7, 121, 7)]
    assert result.fit.stopped_epoch is None
    assert np.array_equal(result.fit.losses, losses)  # asking changes nothing


def test_should_stop_is_not_asked_after_the_last_epoch_where_stopping_saves_nothing():
    config = compose_config([*SMALL, "tracking.log_every=10"])  # 120 epochs
    asked = []
    train_network(config, lambda epoch, loss: asked.append(epoch) or False)
    assert asked == list(range(10, 120, 10))


def test_a_stopped_run_is_the_run_of_that_many_epochs_bit_for_bit():
    stopped = train_network(compose_config(SMALL), lambda epoch, loss: epoch >= 50)
    short = train_network(compose_config(["train.epochs=50", "model.hidden_size=8"]))
    assert stopped.fit.stopped_epoch == 50
    assert np.array_equal(stopped.fit.losses, short.fit.losses)
    assert all(np.array_equal(a, b) for a, b in zip(stopped.fit.params, short.fit.params))
    assert stopped.true_mse == short.true_mse


def test_a_pruned_run_ends_finished_tagged_with_its_epoch_and_is_no_result(tmp_path,
                                                                           new_store):
    uri = new_store(tmp_path)
    config = compose_config([*SMALL, f"tracking.uri={uri}"])
    outcome = run(config, should_stop=lambda epoch, loss: epoch >= 40)
    record = tracking.open_store(uri).get_run(outcome.run_id)
    assert record.info.status == "FINISHED"
    assert record.data.tags[tracking.TAG_PRUNED] == "40" and outcome.pruned_at == 40
    assert record.data.metrics["epochs_run"] == 40
    history = tracking.open_store(uri).get_metric_history(outcome.run_id, "loss")
    assert max(m.step for m in history) == 40
    assert record.data.metrics["final_mse"] == outcome.result.fit.losses[39]
    # a later sweep does not reuse it as this config's result: it stopped early
    exp_id = record.info.experiment_id
    results = tracking.recorded_results(tracking.open_store(uri), exp_id)
    assert record.data.tags[tracking.TAG_CONFIG_HASH] not in results


# ---------------------------------------------------------------- the search space

def test_the_search_space_of_conf_search_optuna_yaml():
    hydra = multirun_hydra(["search=optuna", "train.epochs=60"])
    space, fixed = search.search_space(dict(hydra.sweeper.params),
                                       list(hydra.overrides.task))
    assert space == {
        "model.hidden_size": CategoricalDistribution([4, 8, 16, 32, 64]),
        "train.lr": FloatDistribution(0.005, 0.2, log=True),
        "data.noise": CategoricalDistribution([0.03, 0.06]),
        "seed": CategoricalDistribution([1, 2, 3])}
    assert fixed == ["search=optuna", "train.epochs=60"]


def test_the_command_line_replaces_a_key_of_the_space_or_pins_it():
    params = {"model.hidden_size": "choice(4, 8)", "train.lr": "interval(0.01, 0.1)"}
    space, fixed = search.search_space(params, ["model.hidden_size=16",
                                                "seed=range(1,4)", "train.lr=0.5,0.25"])
    assert space == {"seed": CategoricalDistribution([1, 2, 3]),
                     "train.lr": CategoricalDistribution([0.5, 0.25])}
    assert fixed == ["model.hidden_size=16"]


@pytest.mark.parametrize("key, expression, said", [
    ("train.lr", "interval(0, 0.2)", "must be > 0"),
    ("model.hidden_size", "choice(0, 4)", "must be >= 1"),
    ("train.lr", "interval(0.2, 0.005)", "train.lr"),
])
def test_a_search_space_outside_a_keys_range_stops_with_one_line(tmp_path, monkeypatch, capsys,
                                                                 key, expression, said):
    result = run_train(["--multirun", "search=optuna", f"{key}={expression}"], tmp_path,
                       monkeypatch, capsys, seconds=30)
    one_error_line(result, f"hydra.sweeper.params.{key}", said)
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


def test_an_unknown_pruner_stops_with_one_line(tmp_path, monkeypatch, capsys):
    result = run_train(["--multirun", "search=optuna", "hydra.sweeper.pruner=medain"],
                       tmp_path, monkeypatch, capsys, seconds=30)
    one_error_line(result, "hydra.sweeper.pruner", "medain", "median")
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "optuna.db").exists()


@pytest.mark.parametrize("storage", ["sqlite:///{tmp}/no/such/dir/optuna.db", "nosuchdb://x"])
def test_a_storage_that_cannot_be_opened_stops_with_one_line(tmp_path, monkeypatch, capsys,
                                                             storage):
    storage = storage.format(tmp=tmp_path)
    result = run_train(["--multirun", "search=optuna", f"hydra.sweeper.storage='{storage}'"],
                       tmp_path, monkeypatch, capsys, seconds=30)
    one_error_line(result, "hydra.sweeper.storage", storage)
    assert not (tmp_path / "mlflow.db").exists()


def test_with_a_tracking_server_the_storage_must_be_given(tmp_path):
    hydra = multirun_hydra(["search=optuna"])
    with pytest.raises(ConfigError, match="hydra.sweeper.storage"):
        search.storage_url(hydra.sweeper, "http://127.0.0.1:5000", tmp_path)


def test_the_default_storage_is_a_journal_beside_the_store_or_an_earlier_optuna_db(tmp_path):
    hydra = multirun_hydra(["search=optuna"])
    stores = tmp_path / "stores"
    assert search.storage_url(hydra.sweeper, "sqlite:///stores/mlflow.db", tmp_path) \
        == str(stores / search.JOURNAL_FILE)
    stores.mkdir()
    (stores / "optuna.db").touch()  # an earlier search's studies: continued there
    assert search.storage_url(hydra.sweeper, "sqlite:///stores/mlflow.db", tmp_path) \
        == f"sqlite:///{stores / 'optuna.db'}"
    given = multirun_hydra(["search=optuna", "hydra.sweeper.storage=studies.log"])
    assert search.storage_url(given.sweeper, "sqlite:///stores/mlflow.db", tmp_path) \
        == str(tmp_path / "studies.log")


@pytest.mark.parametrize("key", ["prune_after", "report_every"])
def test_a_report_schedule_below_one_epoch_stops_with_one_line(tmp_path, monkeypatch, capsys,
                                                               key):
    result = run_train(["--multirun", "search=optuna", f"hydra.sweeper.{key}=0"],
                       tmp_path, monkeypatch, capsys, seconds=30)
    one_error_line(result, f"hydra.sweeper.{key}", "at least 1")
    assert not (tmp_path / "mlflow.db").exists()


# ---------------------------------------------------------------- the study and its trials

@pytest.fixture
def study_ref(tmp_path):
    return search.StudyRef(str(tmp_path / "journal.log"), "scratchnet-test", "median",
                           prune_after=10, report_every=10)


def open_test_study(ref, seed=1):
    return search.open_study(search.open_storage(ref.storage), ref, seed)


def test_a_trial_reports_its_losses_and_tells_its_outcome_from_its_job(study_ref):
    study = open_test_study(study_ref)
    space = {"x": FloatDistribution(0, 1)}
    asked = [study.ask(space) for _ in range(2)]
    first = search.TrialReporter(study_ref, asked[0].number)  # as a job process opens it
    assert not first.should_stop(10, 0.5) and not first.should_stop(20, 0.25)
    first.tell(0.125, "run-a", pruned=False)
    second = search.TrialReporter(study_ref, asked[1].number)
    second.should_stop(10, 0.75)
    second.tell(math.nan, None, pruned=True)
    trials = open_test_study(study_ref).get_trials()
    assert trials[0].state == TrialState.COMPLETE and trials[0].value == 0.125
    assert trials[0].intermediate_values == {10: 0.5, 20: 0.25}
    assert trials[0].user_attrs == {search.RUN_ATTR: "run-a"}
    assert trials[1].state == TrialState.PRUNED and trials[1].intermediate_values == {10: 0.75}


@pytest.mark.parametrize("storage", ["journal.log", "sqlite:///{tmp}/optuna.db"])
def test_a_trial_reports_only_from_prune_after_every_report_every_epochs(tmp_path, storage):
    # asked every log_every = 10 epochs; prune_after 25 and report_every 20: reports at the
    # first asks at or after 25, 45, 65 ...
    url = storage.format(tmp=tmp_path) if "://" in storage else str(tmp_path / storage)
    ref = search.StudyRef(url, "s", "median", prune_after=25, report_every=20)
    number = open_test_study(ref).ask({"x": FloatDistribution(0, 1)}).number
    reporter = search.TrialReporter(ref, number)
    for epoch in range(10, 80, 10):
        assert not reporter.should_stop(epoch, 1.0 / epoch)  # no complete trials: no pruning
    (trial,) = open_test_study(ref).get_trials()
    assert trial.intermediate_values == {30: 1 / 30, 50: 1 / 50, 70: 1 / 70}


def test_the_median_pruner_stops_a_trial_worse_than_the_median_of_complete_ones(study_ref):
    study = open_test_study(study_ref)
    space = {"x": FloatDistribution(0, 1)}
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):  # MedianPruner waits for 5 complete trials
        trial = study.ask(space)
        trial.report(value, 10)
        study.tell(trial, value)
    good = search.TrialReporter(study_ref, study.ask(space).number)
    bad = search.TrialReporter(study_ref, study.ask(space).number)
    assert not good.should_stop(10, 2.5)  # the median at step 10 is 3
    assert bad.should_stop(10, 3.5)


def test_trials_left_running_are_failed_and_their_points_asked_again(study_ref):
    study = open_test_study(study_ref)
    space = {"x": FloatDistribution(0, 1)}
    finished, killed = study.ask(space), study.ask(space)
    study.tell(finished, 0.5)
    again = open_test_study(study_ref)  # the command run again
    storage = search.open_storage(study_ref.storage)
    assert search.requeue_interrupted(again, storage, space) == 1
    rerun = again.ask(space)
    assert rerun.params == killed.params and rerun.number == 2
    trials = again.get_trials()
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs[search.INTERRUPTED_ATTR]
    assert [search.counted(t) for t in trials] == [True, False, False]


def test_a_trial_killed_while_being_asked_is_failed_and_not_asked_again(study_ref):
    study = open_test_study(study_ref)
    space = {"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)}
    half_asked = study.ask()  # the kill came between its two parameters
    half_asked.suggest_float("x", 0, 1)
    again = open_test_study(study_ref)
    storage = search.open_storage(study_ref.storage)
    assert search.requeue_interrupted(again, storage, space) == 0
    (trial,) = again.get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs[search.INTERRUPTED_ATTR]
    assert again.get_trials(states=(TrialState.WAITING,)) == []


def test_warm_start_adds_the_runs_of_earlier_sweeps_inside_the_space(tmp_path, new_store,
                                                                      study_ref):
    uri = new_store(tmp_path / "store")
    grid = recorded_sweep(uri, {"train.lr": [0.01, 0.3], "seed": [1, 2]}, fixed=SMALL)
    recorded_sweep(uri, {"seed": [3]}, fixed=["train.epochs=60", "model.hidden_size=8"])
    base = compose_config([*SMALL, f"tracking.uri={uri}"])
    space = {"train.lr": FloatDistribution(0.005, 0.2, log=True),
             "seed": CategoricalDistribution([1, 2, 3])}
    study = open_test_study(study_ref)
    assert search.warm_start(study, grid.client, grid.exp_id, base, space) == 2
    inside = sorted((r for r in grid.children if r.data.params["train.lr"] == "0.01"),
                    key=lambda r: r.info.start_time)
    trials = study.get_trials()
    assert [t.params for t in trials] == [{"train.lr": 0.01, "seed": int(r.data.params["seed"])}
                                          for r in inside]
    assert [t.value for t in trials] == [r.data.metrics["true_mse"] for r in inside]
    assert [t.user_attrs[search.RUN_ATTR] for t in trials] == [r.info.run_id for r in inside]
    for trial in trials:  # the loss history as its reports, for the pruner
        history = grid.client.get_metric_history(trial.user_attrs[search.RUN_ATTR], "loss")
        assert trial.intermediate_values == {m.step: m.value for m in history}
        assert sorted(trial.intermediate_values) == [1, *range(10, 121, 10)]
    assert not any(search.counted(t) for t in trials)  # they do not count towards n_trials
    # each run is added once, however often the command is run
    assert search.warm_start(study, grid.client, grid.exp_id, base, space) == 0


def test_the_progress_line_counts_pruned_trials_apart():
    records = [{"status": s, "overrides": [], "run_id": None, "error": None}
               for s in ("done", "pruned", "pruned", "diverged")]
    line = Summary(records, 10).line(5.0)
    assert "4/10 done" in line and "2 pruned" in line and "1 diverged" in line
    assert "pruned" not in Summary(records[:1], 10).line(5.0)  # a grid's line as before


def test_optuna_is_4_or_later():
    assert int(optuna.__version__.split(".")[0]) >= 4


def test_the_pruner_judges_a_trial_by_the_trials_complete_when_it_was_asked(study_ref):
    study = open_test_study(study_ref)
    space = {"x": FloatDistribution(0, 1)}
    early = study.ask(space)  # asked before any trial completed: a batch-mate of theirs
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):
        trial = study.ask(space)
        trial.report(value, 10)
        study.tell(trial, value)
    late = study.ask(space)
    assert not search.TrialReporter(study_ref, early.number).should_stop(10, 4.5)
    assert search.TrialReporter(study_ref, late.number).should_stop(10, 4.5)


def test_a_continued_study_does_not_propose_the_first_runs_points_again(study_ref):
    space = {"x": FloatDistribution(0, 1)}
    first = open_test_study(study_ref)
    points = [first.ask(space).params for _ in range(2)]
    again = open_test_study(study_ref)  # the same seed, the study continued
    assert [again.ask(space).params for _ in range(2)] != points
    other = open_test_study(search.StudyRef(study_ref.storage, "another", "median"))
    assert [other.ask(space).params for _ in range(2)] == points  # a new study: the same


def test_a_searchs_seed_pruner_and_warm_start_make_another_study_its_batch_size_does_not():
    from scratchnet.sweep.grid import sweep_key

    base = compose_config()
    key = sweep_key(base, multirun_hydra(["search=optuna"]))
    for other in ("hydra.sweeper.sampler.seed=2", "hydra.sweeper.pruner=none",
                  "hydra.sweeper.warm_start=true", "hydra.sweeper.n_trials=31"):
        assert sweep_key(base, multirun_hydra(["search=optuna", other])) != key, other
    assert sweep_key(base, multirun_hydra(["search=optuna", "hydra.sweeper.n_jobs=4"])) == key


@pytest.mark.parametrize("pruner, prunes_worst", [("median", True), ("percentile", True),
                                                  ("hyperband", None), ("none", False)])
def test_every_pruner_can_be_chosen_and_none_asks_nothing(tmp_path, pruner, prunes_worst):
    ref = search.StudyRef(str(tmp_path / "journal.log"), "s", pruner, prune_after=10)
    study = open_test_study(ref)
    space = {"x": FloatDistribution(0, 1)}
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):
        trial = study.ask(space)
        for step in (10, 20):
            trial.report(value, step)
        study.tell(trial, value)
    reporter = search.TrialReporter(ref, study.ask(space).number)
    assert reporter.prunes == (pruner != "none")
    answer = reporter.should_stop(10, 9.0)  # worse than every complete trial
    assert isinstance(answer, bool)
    if prunes_worst is not None:  # hyperband's answer depends on its bracket
        assert answer is prunes_worst


def test_the_eta_waits_for_a_few_jobs_then_follows_the_pace_they_finish_at():
    def records(ends, skipped=0):
        return ([{"status": "skipped", "time": 0.0}] * skipped
                + [{"status": "done", "time": t} for t in ends])

    # 54 jobs; the first one ended 10 s in (start-up), then one every 0.25 s
    assert Summary(records([10.0]), 54).eta() == "?"  # not 10 s per job
    assert Summary(records([10.0, 10.25, 10.5, 10.75]), 54).eta() == "?"
    assert Summary(records([10.0, 10.25, 10.5, 10.75, 11.0]), 54).eta() == "0:12"  # 49 x 0.25
    assert Summary(records([10.0, 10.5, 11.0, 11.5, 12.0], skipped=20), 54).eta() == "0:14"
    assert Summary(records([1.0] * 3, skipped=51), 54).eta() == "0:00"  # all done
