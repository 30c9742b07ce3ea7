"""The jobs of a grid sweep, as the sweep callback counts and checks them before fan-out,
against the jobs Hydra's own basic sweeper launches (in-process here; a real multirun in
test_sweep.py compares with every job's .hydra/overrides.yaml)."""

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from conftest import CONF, compose_config
from scratchnet.config import ConfigError, overrides_config, to_config
from scratchnet.sweep.grid import job_grid, sweep_axes, sweep_key, value_probes


def multirun_hydra(overrides: list[str]):
    """The hydra node of a multirun's config, as the sweep callback receives it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        return loader.load_configuration("config", overrides, RunMode.MULTIRUN).hydra


def test_the_default_grid_is_54_jobs_in_hydras_order():
    jobs = job_grid(multirun_hydra([]))
    assert len(jobs) == 54
    assert jobs[0] == ["model.hidden_size=8", "train.lr=0.01", "data.noise=0.03", "seed=1"]
    assert jobs[1] == ["model.hidden_size=8", "train.lr=0.01", "data.noise=0.03", "seed=2"]
    assert jobs[-1] == ["model.hidden_size=32", "train.lr=0.1", "data.noise=0.06", "seed=3"]
    assert len({tuple(job) for job in jobs}) == 54


def test_the_command_line_replaces_an_axis_pins_one_and_adds_keys():
    hydra = multirun_hydra(["model.hidden_size=4,64", "data.noise=0.06", "seed=range(1,3)",
                            "train.epochs=10"])
    jobs = job_grid(hydra)
    assert len(jobs) == 2 * 3 * 1 * 2
    assert jobs[0] == ["model.hidden_size=4", "train.lr=0.01", "data.noise=0.06", "seed=1",
                       "train.epochs=10"]
    assert {job[0] for job in jobs} == {"model.hidden_size=4", "model.hidden_size=64"}
    assert sweep_axes(hydra) == {"model.hidden_size": "4,64", "train.lr": "0.01,0.05,0.1",
                                 "data.noise": "0.06", "seed": "range(1,3)"}


def test_a_search_has_no_grid():
    assert job_grid(multirun_hydra(["search=optuna"])) is None


def test_the_sweep_key_is_the_command_not_where_it_is_recorded():
    base = compose_config()
    key = sweep_key(base, multirun_hydra(["seed=1,2"]))
    assert key == sweep_key(base, multirun_hydra(["seed=1,2", "tracking.uri=sqlite:///x.db"]))
    assert key != sweep_key(base, multirun_hydra(["seed=1,2,3"]))
    assert key != sweep_key(compose_config(["train.epochs=10"]), multirun_hydra(["seed=1,2"]))


def test_an_interval_is_no_grid_and_is_refused():
    from hydra.errors import HydraException

    with pytest.raises(HydraException):
        job_grid(multirun_hydra(["train.lr=interval(0,1)"]))


def test_the_probes_hold_every_value_of_every_axis_once_each_changed_from_the_first_job():
    jobs = job_grid(multirun_hydra(["model.hidden_size=4,8,16,32,64",
                                    "train.lr=0.005,0.01,0.02,0.05,0.1,0.2",
                                    "data.noise=0.03,0.06,0.1", "seed=range(1,61)"]))
    probes = value_probes(jobs)
    assert len(jobs) == 5400 and len(probes) == 1 + 4 + 5 + 2 + 59
    assert {line for job in jobs for line in job} == {line for job in probes for line in job}
    for probe in probes[1:]:  # one key changed from the first job
        assert sum(a != b for a, b in zip(probe, jobs[0])) == 1


def test_a_bad_value_late_in_the_grid_fails_its_probe_naming_the_key():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        cfg = loader.load_configuration("config", ["train.lr=0.01,-1,0.05", "seed=1,2,3"],
                                        RunMode.MULTIRUN)
    jobs = job_grid(cfg.hydra)
    failing = []
    for probe in value_probes(jobs):
        try:
            to_config(overrides_config(cfg, probe))
        except ConfigError as error:
            failing.append((probe, str(error)))
    (probe, error), = failing
    assert "train.lr=-1" in probe and error.startswith("train.lr:")
