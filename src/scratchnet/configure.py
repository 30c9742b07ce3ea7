"""Where Hydra's config stops: a composed DictConfig becomes a checked ``Config``.

Types and unknown keys are checked by merging into the structured schema (OmegaConf names
the full key); ranges and choices by the dataclasses themselves. Kept apart from the Hydra
app so the sweep callback and ``reproduce`` share it.
"""

from __future__ import annotations

import functools

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import Config, ConfigError


class SchemaError(ConfigError):
    """A config that does not fit the schema (wrong type, unknown or missing key)."""


def to_config(cfg: DictConfig) -> Config:
    """A validated Config from a composed config (its ``hydra`` node, if any, is ignored)."""
    if "hydra" in cfg:  # hydra's own nodes resolve per job
        cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    plain = OmegaConf.to_container(cfg, resolve=True)
    try:
        merged = OmegaConf.merge(_schema(), plain)  # a new config: the schema is not changed
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or ""
        message = str(getattr(error, "msg", None) or error).strip().splitlines()[0]
        raise SchemaError(f"{key}: {message}" if key else message) from None
    config.check()
    return config


@functools.cache
def _schema() -> DictConfig:
    """The structured schema of Config (6 ms to build: built once)."""
    return OmegaConf.structured(Config)


def overrides_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """cfg without its hydra node, with 'key=value' overrides applied (values parsed as
    Hydra parses them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    updated = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])  # a copy
    for override in OverridesParser.create().parse_overrides(overrides):
        OmegaConf.update(updated, override.key_or_group, override.value(), force_add=True)
    return updated


def one_line(error: BaseException) -> str:
    """The first line of an error and of its cause, e.g. Hydra's composition errors."""
    def first(e: BaseException) -> str:
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        return lines[0].strip() if lines else type(e).__name__

    text = first(error)
    override = getattr(error, "override", None)  # Hydra's OverrideParseException
    if override:
        text = f"malformed override {override!r}: {text}"
    cause = error.__cause__
    if cause is not None and first(cause) not in text:
        text += " " + first(cause)
        key = getattr(cause, "full_key", None)
        if key and key not in text:
            text = f"{key}: {text}"
    return text
