"""``scratchnet.reproduce``: rerun a recorded run from its MLflow params and compare the
loss history bit for bit, on real runs in a sqlite store under tmp_path, some of them
tampered with after the fact (an overwritten history.csv, params from another config)."""

from __future__ import annotations

import platform
import subprocess

import numpy as np
import pytest
from mlflow import MlflowClient

import scratchnet
from conftest import ROOT, call_main, compose_config, store_uri
from scratchnet import reproduce, tracking
from scratchnet.config import SCHEDULE_KEYS, config_hash, flatten
from scratchnet.run import run

EPOCHS = 300


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store) -> str:
    return new_store(tmp_path_factory.mktemp("store"))


def new_run(store: str, *overrides: str):
    """A real recorded run (pipeline.run) of a short config: (config, outcome)."""
    config = compose_config([f"train.epochs={EPOCHS}", f"tracking.uri={store}", *overrides])
    return config, run(config)


def run_count(store: str) -> int:
    client = MlflowClient(store)
    return len(client.search_runs([client.get_experiment_by_name("scratchnet").experiment_id]))


def rerun(store: str, run_id: str, capsys) -> tuple[int, str, str]:
    """``python -m scratchnet.reproduce RUN_ID`` in this process: (exit code, stdout, stderr)."""
    done = call_main(reproduce.main, [run_id, "--tracking-uri", store], capsys=capsys)
    return done.returncode, done.stdout, done.stderr


def replace_history(store: str, run_id: str, folder, edit) -> np.ndarray:
    """Overwrite the run's history.csv artifact with edit(losses); returns the originals."""
    client = MlflowClient(store)
    path = client.download_artifacts(run_id, "history.csv", str(folder))
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    edited = edit(table.copy())
    np.savetxt(path, edited, delimiter=",", header="epoch,loss", comments="", fmt=["%d", "%.17g"])
    client.log_artifact(run_id, path)  # same name: replaces the recorded file
    return table[:, 1]


def test_a_recorded_run_reproduces_bit_identically(store, capsys):
    _, outcome = new_run(store)
    before = run_count(store)
    done = call_main(reproduce.main, [outcome.run_id, "--tracking-uri", store], capsys=capsys)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"run {outcome.run_id}: loss history bit-identical over {EPOCHS} epochs\n"
    assert "Traceback" not in done.stderr and "Downloading" not in done.stderr
    assert run_count(store) == before  # the rerun is not recorded


def test_a_diverged_run_reproduces_and_says_it_diverged_and_where(store, capsys):
    _, outcome = new_run(store, "train.lr=5.0")
    failure = outcome.failure
    assert failure is not None and failure.startswith("diverged at epoch ")
    code, out, err = rerun(store, outcome.run_id, capsys)
    assert code == 0, err
    epochs = len(outcome.result.fit.losses)
    assert out.strip() == (f"run {outcome.run_id}: loss history bit-identical over {epochs} "
                           f"epochs; the run {failure}, and the rerun with it")


def test_runs_record_their_provenance(store):
    config, outcome = new_run(store)
    tags = MlflowClient(store).get_run(outcome.run_id).data.tags
    commit = tags["mlflow.source.git.commit"]
    kind = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-t", commit],
                          capture_output=True, text=True, check=False).stdout.strip()
    assert kind == "commit"  # a commit of this repository
    assert tags["scratchnet.git_dirty"] in ("true", "false")
    assert tags["python_version"] == platform.python_version()
    assert tags["numpy_version"] == np.__version__
    assert tags["scratchnet.version"] == scratchnet.__version__
    assert tags[tracking.TAG_CONFIG_HASH] == config_hash(config)


def test_params_come_back_as_the_config_that_ran(store):
    config, outcome = new_run(store, "train.lr=0.07", "model.activation=relu", "data.rng=numpy")
    params = MlflowClient(store).get_run(outcome.run_id).data.params
    rebuilt = reproduce.config_from_params(outcome.run_id, params)
    assert flatten(rebuilt) == flatten(config)
    assert type(rebuilt.model.hidden_size) is int and type(rebuilt.train.lr) is float


def test_an_overwritten_history_is_caught_at_its_epoch(store, tmp_path, capsys):
    _, outcome = new_run(store)

    def one_ulp_up_at_epoch_37(table):
        table[36, 1] = np.nextafter(table[36, 1], np.inf)
        return table

    original = replace_history(store, outcome.run_id, tmp_path, one_ulp_up_at_epoch_37)
    code, out, _ = rerun(store, outcome.run_id, capsys)
    assert code == 1
    tampered = float(np.nextafter(original[36], np.inf))
    assert out == (f"run {outcome.run_id}: loss history differs first at epoch 37: "
                   f"recorded {tampered!r}, rerun {float(original[36])!r}\n")


def test_a_shorter_history_is_caught_where_it_ends(store, tmp_path, capsys):
    _, outcome = new_run(store)
    original = replace_history(store, outcome.run_id, tmp_path, lambda table: table[:250])
    code, out, _ = rerun(store, outcome.run_id, capsys)
    assert code == 1
    assert out.endswith(f"differs first at epoch 251: recorded (no epoch: training had "
                        f"stopped), rerun {float(original[250])!r}\n")


def test_params_of_another_config_differ_after_the_first_update(store, tmp_path, capsys):
    """A record whose params say lr=0.1 but whose history is lr=0.05's: epoch 1 (the loss
    before any update) agrees, epoch 2 does not; the config hash tag gives it away."""
    real_config, real = new_run(store)
    claimed = compose_config([f"train.epochs={EPOCHS}", f"tracking.uri={store}", "train.lr=0.1"])
    client = MlflowClient(store)
    exp_id = client.get_experiment_by_name("scratchnet").experiment_id
    fake = tracking.start_run(client, exp_id, "fake", {tracking.TAG_CONFIG_HASH:
                                                      config_hash(real_config)}, flatten(claimed))
    history = client.download_artifacts(real.run_id, "history.csv", str(tmp_path))
    client.log_artifact(fake, history)
    code, out, err = rerun(store, fake, capsys)
    assert code == 1
    assert f"differs first at epoch 2: recorded {float(real.result.fit.losses[1])!r}, rerun " in out
    assert (f"warning: run {fake}: its params hash to {config_hash(claimed)}, but it recorded "
            f"config hash {config_hash(real_config)}") in err


def test_a_run_whose_rate_was_halved_reproduces_bit_identically(store, capsys):
    _, outcome = new_run(store, "train.lr=1", "train.lr_schedule=halve_on_plateau")
    assert outcome.result.fit.halvings == 2  # it went back to its best weights twice
    code, out, err = rerun(store, outcome.run_id, capsys)
    assert code == 0 and "hash" not in err, err
    assert out == f"run {outcome.run_id}: loss history bit-identical over {EPOCHS} epochs\n"


def test_a_run_recorded_before_schedules_existed_reproduces(store, tmp_path, capsys):
    """Its params lack the train.lr_schedule keys: it trained at a constant rate, and its
    recorded config hash is still the hash of that config."""
    config, real = new_run(store)
    client = MlflowClient(store)
    exp_id = client.get_experiment_by_name("scratchnet").experiment_id
    params = {k: v for k, v in flatten(config).items() if k not in SCHEDULE_KEYS}
    old = tracking.start_run(client, exp_id, "old", {tracking.TAG_CONFIG_HASH:
                                                    config_hash(config)}, params)
    client.log_artifact(old, client.download_artifacts(real.run_id, "history.csv",
                                                       str(tmp_path)))
    code, out, err = rerun(store, old, capsys)
    assert (code, err) == (0, "")  # bit-identical, and no warning that the hash differs
    assert out == f"run {old}: loss history bit-identical over {EPOCHS} epochs\n"


def test_another_commit_is_warned_about(store, capsys):
    _, outcome = new_run(store)
    MlflowClient(store).set_tag(outcome.run_id, "mlflow.source.git.commit", "0" * 40)
    code, out, err = rerun(store, outcome.run_id, capsys)
    assert code == 0 and "bit-identical" in out  # same code in fact: still identical
    current = tracking.provenance()["mlflow.source.git.commit"]
    assert (f"warning: run {outcome.run_id} was recorded with git commit {'0' * 40}, "
            f"this is {current}") in err


def test_unknown_run_is_one_line_naming_it(store, capsys):
    code, out, err = rerun(store, "0123456789abcdef", capsys)
    assert (code, out) == (2, "")
    assert err == f"error: no run '0123456789abcdef' in {store}\n"


def test_missing_store_and_incomplete_record_are_one_line_errors(store, tmp_path, capsys):
    code, _, err = rerun(store_uri(tmp_path), "abc", capsys)
    assert (code, err) == (2, f"error: no MLflow store at {store_uri(tmp_path)}\n")
    client = MlflowClient(store)
    exp_id = client.get_experiment_by_name("scratchnet").experiment_id
    params = flatten(compose_config())
    del params["model.depth"]
    partial = tracking.start_run(client, exp_id, "partial", {}, params)
    code, _, err = rerun(store, partial, capsys)
    assert (code, err) == (2, f"error: run {partial}: no param 'model.depth' recorded\n")
    no_history = tracking.start_run(client, exp_id, "no-history", {}, flatten(compose_config()))
    code, _, err = rerun(store, no_history, capsys)
    assert (code, err) == (2, f"error: run {no_history}: no history.csv artifact\n")
