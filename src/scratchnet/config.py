"""The typed schema of a run: dataclasses that OmegaConf checks types against, each with
a ``check()`` of ranges and choices, so a bad value stops the run before any work; and
``to_config``, where Hydra's config stops: a composed DictConfig becomes a checked Config.

Values live in ``conf/config.yaml``; these classes hold no defaults of their own so the
YAML stays the one place a default is written. Each check names the dotted key, which is
also the Hydra override path and the MLflow param name.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .nn.network import ACTIVATIONS
from .nn.optim import OPTIMIZERS, SCHEDULES

RNG_KINDS = ("r", "numpy")


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


class SchemaError(ConfigError):
    """A config that does not fit the schema (wrong type, unknown or missing key)."""


def _require(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: must be {rule}, got {value!r}")


def _choice(key: str, value: str, allowed) -> None:
    _require(value in allowed, key, "one of " + ", ".join(allowed), value)


@dataclass
class DataConfig:
    n_points: int = MISSING
    peak: float = MISSING
    width: float = MISSING
    noise: float = MISSING
    rng: str = MISSING

    def check(self) -> None:
        _require(self.n_points >= 2, "data.n_points", ">= 2", self.n_points)
        _require(self.width > 0, "data.width", "> 0", self.width)
        _require(self.noise >= 0, "data.noise", ">= 0", self.noise)
        _require(abs(self.peak) < 1e6, "data.peak", "finite", self.peak)
        _choice("data.rng", self.rng, RNG_KINDS)


@dataclass
class ModelConfig:
    hidden_size: int = MISSING
    depth: int = MISSING
    activation: str = MISSING
    init_scale: float = MISSING

    def check(self) -> None:
        _require(self.hidden_size >= 1, "model.hidden_size", ">= 1", self.hidden_size)
        _require(self.depth >= 1, "model.depth", ">= 1", self.depth)
        _require(0 < self.init_scale < 1e6, "model.init_scale", "> 0 and finite", self.init_scale)
        _choice("model.activation", self.activation, tuple(ACTIVATIONS))


@dataclass
class TrainConfig:
    optimizer: str = MISSING
    lr: float = MISSING
    epochs: int = MISSING
    lr_schedule: str = MISSING
    plateau_tol: float = MISSING
    patience: int = MISSING
    max_halvings: int = MISSING

    def check(self) -> None:
        _require(0 < self.lr < 1e6, "train.lr", "> 0 and finite", self.lr)
        _require(self.epochs >= 1, "train.epochs", ">= 1", self.epochs)
        _choice("train.optimizer", self.optimizer, tuple(OPTIMIZERS))
        _choice("train.lr_schedule", self.lr_schedule, SCHEDULES)
        _require(0 <= self.plateau_tol < 1, "train.plateau_tol", "in [0, 1)", self.plateau_tol)
        _require(self.patience >= 1, "train.patience", ">= 1", self.patience)
        _require(self.max_halvings >= 0, "train.max_halvings", ">= 0", self.max_halvings)


@dataclass
class TrackingConfig:
    uri: str = MISSING
    experiment: str = MISSING
    log_every: int = MISSING
    registered_model: str | None = MISSING
    log_model: bool = MISSING

    def check(self) -> None:
        _require(bool(self.uri.strip()), "tracking.uri", "non-empty", self.uri)
        _require(bool(self.experiment.strip()), "tracking.experiment", "non-empty",
                 self.experiment)
        _require(self.log_every >= 1, "tracking.log_every", ">= 1", self.log_every)
        name = self.registered_model
        # MLflow's rules for a registered model's name, and no quote (it goes in its filters)
        _require(name is None or (bool(name.strip()) and not set(name) & set("/:'\"")),
                 "tracking.registered_model", "null or a non-empty name without / : or quotes",
                 name)


@dataclass
class Config:
    """One run, fully resolved. ``seed`` alone determines every random draw."""

    seed: int = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def check(self) -> None:
        _require(0 <= self.seed < 2**31, "seed", "in [0, 2^31)", self.seed)
        for group in (self.data, self.model, self.train, self.tracking):
            group.check()


def flatten(config: Config) -> dict[str, Any]:
    """Dotted key -> value, e.g. {'model.hidden_size': 16, 'seed': 1, ...}."""
    flat: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if hasattr(value, "__dataclass_fields__"):
            flat.update({f"{f.name}.{k}": v for k, v in asdict(value).items()})
        else:
            flat[f.name] = value
    return flat


# Keys that change nothing at a constant rate: a constant-rate run's identity leaves them
# out, so the hashes of runs recorded before schedules existed (and the sweeps that resume
# from them) stay as they were.
SCHEDULE_KEYS = ("train.lr_schedule", "train.plateau_tol", "train.patience",
                 "train.max_halvings")


def config_hash(config: Config) -> str:
    """Identity of what a run computes: every key except ``tracking.*`` (where it is
    recorded does not change the numbers) and, at a constant rate, the schedule's keys.
    16 hex digits of a SHA-256."""
    flat = {k: v for k, v in flatten(config).items() if not k.startswith("tracking.")}
    if config.train.lr_schedule == "constant":
        flat = {k: v for k, v in flat.items() if k not in SCHEDULE_KEYS}
    canonical = json.dumps(flat, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def from_flat(flat: dict[str, Any]) -> Config:
    """Rebuild a Config from dotted keys (as recorded in MLflow params), with checks."""
    groups: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}, "tracking": {}}
    seed = None
    for key, value in flat.items():
        if key == "seed":
            seed = value
        else:
            group, _, name = key.partition(".")
            groups[group][name] = value
    config = Config(seed=seed, data=DataConfig(**groups["data"]),
                    model=ModelConfig(**groups["model"]), train=TrainConfig(**groups["train"]),
                    tracking=TrackingConfig(**groups["tracking"]))
    config.check()
    return config


def to_config(cfg: DictConfig) -> Config:
    """A validated Config from a composed config (its ``hydra`` node, if any, is ignored).
    Types and unknown keys are checked by merging into the structured schema (OmegaConf
    names the full key); ranges and choices by the dataclasses' checks."""
    if "hydra" in cfg:  # hydra's own nodes resolve per job
        cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    plain = OmegaConf.to_container(cfg, resolve=True)
    try:
        config = OmegaConf.to_object(OmegaConf.merge(_schema(), plain))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or ""
        message = str(getattr(error, "msg", None) or error).strip().splitlines()[0]
        raise SchemaError(f"{key}: {message}" if key else message) from None
    config.check()
    return config


def schema_keys() -> list[str]:
    """Every dotted key of a run's config ('seed', 'data', 'data.n_points', ...)."""
    keys = []
    for name, value in OmegaConf.to_container(_schema()).items():
        keys.append(name)
        if isinstance(value, dict):
            keys += [f"{name}.{key}" for key in value]
    return keys


@functools.cache
def _schema() -> DictConfig:
    """The structured schema of Config, built once (merge makes a new config)."""
    return OmegaConf.structured(Config)


def overrides_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """cfg without its hydra node, with 'key=value' overrides applied (values parsed as
    Hydra parses them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    updated = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])  # a copy
    for override in OverridesParser.create().parse_overrides(overrides):
        OmegaConf.update(updated, override.key_or_group, override.value(), force_add=True)
    return updated
