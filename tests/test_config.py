"""Config validation: each bad value or key stops the run with one line naming the key,
a non-zero exit, and nothing written to the MLflow store (the Hydra app's main, called in
this process as `python -m scratchnet.train` runs it)."""

import hashlib
import json

import pytest

from conftest import compose_config, one_error_line, run_train
from scratchnet.config import SCHEDULE_KEYS, ConfigError, config_hash, flatten, from_flat
from scratchnet.reproduce import config_from_params

BAD = [
    ("model.hidden_size=0", "model.hidden_size"),
    ("model.hidden_size=1.5", "model.hidden_size"),
    ("model.depth=0", "model.depth"),
    ("model.init_scale=0", "model.init_scale"),
    ("train.lr=0", "train.lr"),
    ("train.lr=-0.1", "train.lr"),
    ("data.noise=-0.01", "data.noise"),
    ("train.epochs=0", "train.epochs"),
    ("train.epochs=abc", "train.epochs"),
    ("data.n_points=1", "data.n_points"),
    ("data.width=0", "data.width"),
    ("tracking.log_every=0", "tracking.log_every"),
    ("tracking.registered_model=team/scratchnet", "tracking.registered_model"),  # MLflow: no /
    ("tracking.registered_model=a:b", "tracking.registered_model"),
    ("tracking.registered_model=' '", "tracking.registered_model"),
    ("tracking.log_model=maybe", "tracking.log_model"),
    ("model.activation=softmax", "model.activation"),
    ("train.optimizer=rmsprop", "train.optimizer"),
    ("data.rng=python", "data.rng"),
    ("seed=-1", "seed"),
    ("seed=abc", "seed"),
    ("model.foo=1", "model.foo"),
    ("+model.foo=1", "model.foo"),
    ("+extra=1", "extra"),
    ("model.hidden_size=[1", "model.hidden_size"),
]


@pytest.mark.parametrize("override,key", BAD)
def test_bad_value_is_one_line_naming_the_key_and_writes_nothing(override, key, tmp_path,
                                                                 monkeypatch, capsys):
    store = tmp_path / "mlflow.db"
    result = run_train([override, f"tracking.uri=sqlite:///{store}"], tmp_path, monkeypatch,
                       capsys)
    one_error_line(result, key)
    assert not store.exists()


def test_the_line_says_what_is_wrong_with_the_value(tmp_path, monkeypatch, capsys):
    result = run_train(["model.hidden_size=0", f"tracking.uri=sqlite:///{tmp_path}/m.db"],
                       tmp_path, monkeypatch, capsys)
    assert result.returncode == 1
    assert result.stderr == "error: model.hidden_size: must be >= 1, got 0\n"
    assert not (tmp_path / "m.db").exists()


def test_hash_ignores_tracking_and_changes_with_anything_else():
    base = compose_config(["train.epochs=5"])
    elsewhere = compose_config(["train.epochs=5", "tracking.uri=sqlite:///elsewhere.db",
                                "tracking.experiment=other", "tracking.log_every=7"])
    assert config_hash(base) == config_hash(elsewhere)
    assert config_hash(base) != config_hash(compose_config(["train.epochs=6"]))


def test_constant_rate_hash_is_the_hash_before_schedules_existed():
    """Runs recorded before train.lr_schedule existed keep their identity (so sweeps resume):
    at a constant rate the schedule's keys are left out, as if they did not exist. The old
    hash recomputed here: SHA-256 of the sorted compact JSON of the non-tracking keys."""
    config = compose_config(["model.hidden_size=8", "train.patience=7"])
    before = {k: v for k, v in flatten(config).items()
              if not k.startswith("tracking.") and k not in SCHEDULE_KEYS}
    canonical = json.dumps(before, sort_keys=True, separators=(",", ":")).encode()
    assert config_hash(config) == hashlib.sha256(canonical).hexdigest()[:16]
    assert config_hash(config) == config_hash(compose_config(["model.hidden_size=8"]))


def test_hash_tells_schedules_and_their_settings_apart():
    halve = compose_config(["train.lr_schedule=halve_on_plateau"])
    assert config_hash(halve) != config_hash(compose_config())
    assert config_hash(halve) != config_hash(compose_config(
        ["train.lr_schedule=halve_on_plateau", "train.patience=7"]))


@pytest.mark.parametrize("overrides", [
    ["model.hidden_size=7", "train.optimizer=adam"],
    ["tracking.registered_model=null", "tracking.log_model=true"],
    ["tracking.registered_model=my model"],
])
def test_flat_params_round_trip(overrides):
    config = compose_config(overrides)
    params = {k: str(v) for k, v in flatten(config).items()}  # as MLflow stores params
    assert config_from_params("run", params) == config


def test_checks_run_on_rebuilt_configs_too():
    flat = flatten(compose_config())
    flat["train.lr"] = -1.0
    with pytest.raises(ConfigError, match="train.lr"):
        from_flat(flat)


def test_every_public_override_path_exists():
    keys = set(flatten(compose_config()))
    assert keys == {"seed", "data.n_points", "data.peak", "data.width", "data.noise", "data.rng",
                    "model.hidden_size", "model.depth", "model.activation", "model.init_scale",
                    "train.optimizer", "train.lr", "train.epochs", "train.lr_schedule",
                    "train.plateau_tol", "train.patience", "train.max_halvings",
                    "tracking.uri", "tracking.experiment", "tracking.log_every",
                    "tracking.registered_model", "tracking.log_model"}
