"""The jobs of a grid sweep, and the identity and name of any sweep, from the multirun's
``hydra`` config node."""

from __future__ import annotations

import hashlib
import itertools
import json

from omegaconf import DictConfig, OmegaConf

from ..config import Config, config_hash

RACE_KEYS = ("first_test", "alpha", "max_runs")  # hydra.sweeper's keys of search=race
SWEEP_FUNCTIONS = ("range(", "choice(", "interval(", "tag(", "glob(")


GRID_SWEEPERS = ("grid", "basic")  # hydra/sweeper choices that sweep a grid
# The sweeper a grid sweep's key names: the one grid sweeps were first keyed with (Hydra's
# basic sweeper), so that a sweep recorded then resumes under the same parent now.
GRID_IDENTITY = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def job_grid(hydra_cfg: DictConfig) -> list[list[str]] | None:
    """The override list of every job a grid multirun will launch, in its order, or None
    when another sweeper (Optuna) chooses jobs as it goes."""
    if hydra_cfg.runtime.choices.get("hydra/sweeper") not in GRID_SWEEPERS:
        return None
    return expand(hydra_cfg.sweeper.params or {}, list(hydra_cfg.overrides.task))


def expand(params: dict[str, str], arguments: list[str]) -> list[list[str]]:
    """The jobs of a grid as Hydra's basic sweeper makes them: ``params`` (key -> values),
    then the command line's ``arguments``, a later value of a key replacing an earlier one,
    and the product of every key's values, the first key varying slowest."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{key}={values}" for key, values in params.items()] + list(arguments)
    values: dict[str, list[str]] = {}  # key -> its 'key=value' overrides
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        if override.is_sweep_override():
            values[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
        else:
            values[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*values.values())]


def value_probes(jobs: list[list[str]]) -> list[list[str]]:
    """Jobs that between them hold every value of every axis: the first job, and for each
    other value of a key the first job with that one value changed. The config's checks are
    each on one key, so these pass if and only if every job would: 74 configs checked for a
    5,400-run grid of 5 x 6 x 3 x 60 values instead of 5,400 (about 3 ms each)."""
    first = jobs[0]
    probes, seen = [first], set(first)
    for job in jobs:
        for position, line in enumerate(job):
            if line not in seen:
                seen.add(line)
                probes.append([*first[:position], line, *first[position + 1:]])
    return probes


def sweep_axes(hydra_cfg: DictConfig) -> dict[str, str]:
    """Swept key -> its sweep expression, command line over conf/ (as Hydra merges them)."""
    axes = {str(k): str(v) for k, v in (hydra_cfg.sweeper.params or {}).items()}
    for override in hydra_cfg.overrides.task:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if "," in value or value.startswith(SWEEP_FUNCTIONS) or key in axes:
            axes[key] = value  # a single value on the command line pins that axis
    return axes


SEARCH_IDENTITY = ("sampler", "pruner", "prune_after", "report_every", "warm_start")


def sweep_key(base: Config, hydra_cfg: DictConfig) -> str:
    """Identity of a sweep command: the base config (tracking excluded), the sweeper and its
    axes. The same command run again has the same key, so it resumes the same parent."""
    axes = {k: v for k, v in sweep_axes(hydra_cfg).items() if not k.startswith("tracking.")}
    grid = hydra_cfg.runtime.choices.get("hydra/sweeper") in GRID_SWEEPERS
    sweeper = GRID_IDENTITY if grid else str(hydra_cfg.sweeper.get("_target_"))
    identity = {"base": config_hash(base), "sweeper": sweeper, "axes": axes,
                "n_trials": hydra_cfg.sweeper.get("n_trials")}
    if not grid:  # a search: its seed, pruner (and when it judges) and warm start make another
        sweeper_cfg = OmegaConf.to_container(hydra_cfg.sweeper, resolve=True)
        identity["search"] = {key: sweeper_cfg.get(key) for key in SEARCH_IDENTITY}
        # a race's keys (absent from a search's config, whose identity stays as it was)
        identity["search"].update({key: sweeper_cfg[key] for key in RACE_KEYS
                                   if key in sweeper_cfg})
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def sweep_name(axes: dict[str, str]) -> str:
    """The parent run's name, e.g. 'sweep hidden_size=8,16,32 lr=0.01,0.05,0.1 ...'."""
    return ("sweep " + " ".join(f"{k.split('.')[-1]}={v}" for k, v in axes.items()))[:240]
