"""scratchnet's launchers (hydra/launcher=local, the default, and dask) pass Hydra's own
launcher conformance suites, the tests every Hydra launcher plugin runs (as
hydra_plugins/hydra_joblib_launcher/tests does in Hydra's repository): LauncherTestSuite
sweeps Hydra's test configs in this process, IntegrationTestSuite runs Hydra apps as
subprocesses. Hydra's own joblib launcher stays selectable beside them."""

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from mlflow import MlflowClient

from conftest import run_cli, store_uri
from hydra_plugins.scratchnet_dask_launcher import DaskLauncher
from hydra_plugins.scratchnet_local_launcher import LocalLauncher
from scratchnet import tracking
from scratchnet.sweep import cluster

LAUNCHERS = {"scratchnet_local": ["hydra.launcher.n_jobs=2"],
             "scratchnet_dask": ["hydra.launcher.n_jobs=2"]}


def test_hydra_finds_both_launchers_and_its_own_joblib_launcher():
    found = {launcher.__name__ for launcher in Plugins.instance().discover(Launcher)}
    assert {LocalLauncher.__name__, DaskLauncher.__name__, "JoblibLauncher"} <= found
    assert "WorkerLauncher" not in found  # the abstract base the two share


@pytest.fixture(autouse=True)
def hydra_compat_version_base():
    """Hydra's suites expect the version base of a Hydra app that sets none: the 1.1
    compatibility defaults (a job runs in its own folder). Composing with version_base="1.3"
    anywhere earlier in this pytest process (conftest.compose_config) sets Hydra's
    process-wide VersionBase for good, so it is set to 1.1 here and put back after."""
    import warnings

    from hydra.version import VersionBase, setbase

    before = VersionBase.instance().getbase()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1.1 warns that Hydra 1.4 will drop it
        setbase("1.1")
    yield
    VersionBase.instance().version_base = before


@pytest.fixture(autouse=True)
def no_dask_cluster_left_running():
    yield
    cluster.stop()  # a sweep's callback stops it; Hydra's test apps have no such callback


@pytest.mark.slow
@pytest.mark.parametrize("launcher_name, overrides", list(LAUNCHERS.items()))
class TestLauncher(LauncherTestSuite):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [
    ({}, ["-m", "hydra/job_logging=hydra_debug", "hydra/job_logging=disabled",
          f"hydra/launcher={name}", *overrides])
    for name, overrides in LAUNCHERS.items()])
class TestLauncherIntegration(IntegrationTestSuite):
    pass


@pytest.mark.slow
def test_hydras_joblib_launcher_still_runs_a_sweep_recording_each_job_once(tmp_path):
    result = run_cli(["--multirun", "seed=1,2", "model.hidden_size=4,8", "train.lr=0.05",
                      "data.noise=0.06", "train.epochs=50", "hydra/launcher=joblib",
                      "hydra.launcher.n_jobs=2", "hydra/hydra_logging=default",
                      f"tracking.uri={store_uri(tmp_path)}"], tmp_path)
    assert result.returncode == 0, result.stderr
    # Hydra's launcher's own line, not ours ('joblib with 2 workers is launching ...')
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    client = MlflowClient(store_uri(tmp_path))
    experiment = client.get_experiment_by_name("scratchnet")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if tracking.TAG_PARENT in r.data.tags]
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    assert len({r.data.tags[tracking.TAG_CONFIG_HASH] for r in children}) == 4
