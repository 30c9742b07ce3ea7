"""The DVC pipeline.

Fast: the project files (.dvc/config, params.yaml as DVC composes it, each stage's deps and
params against the code and config), and the train stage's command run in this process.
Slow: the real ``dvc`` on a temporary git copy of this checkout, its grid shrunk to 2 hidden
sizes x 2 seeds run in one process (hydra.launcher.n_jobs=1); the train stage keeps the
default config and so reproduces the article's numbers. The tests after the ``project``
fixture share one project and run in file order: repro, no-op, forced rerun, a param
change, an experiment, queued experiments.
"""

from __future__ import annotations

import ast
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from conftest import ROOT, call_main, compose_config, dvc, git, git_copy, ok
from scratchnet import stages
from scratchnet.config import flatten
from scratchnet.nn.training import train_network
from scratchnet.tracking import TAG_PARENT, TAG_SWEEP_KEY

SRC = ROOT / "src" / "scratchnet"
DETERMINISTIC_FILES = ["metrics/train.json", "metrics/sweep.json", "plots/train/loss.csv",
                       "plots/train/fit.csv", "reports/pipeline/sweep_summary.csv"]
ARTICLE = (0.423582, 0.034461)  # the default config's initial and final MSE, to 6 decimals


def store(repo: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")


def single_runs(repo: Path) -> list:
    """MLflow runs of the train stage (neither a sweep parent nor a sweep job), newest first."""
    client = store(repo)
    experiment = client.get_experiment_by_name("scratchnet")
    runs = client.search_runs([experiment.experiment_id], max_results=1000,
                              order_by=["attributes.start_time DESC"])
    return [r for r in runs if TAG_PARENT not in r.data.tags and TAG_SWEEP_KEY not in r.data.tags]


def run_count(repo: Path) -> int:
    client = store(repo)
    return len(client.search_runs([client.get_experiment_by_name("scratchnet").experiment_id],
                                  max_results=1000))


def at_dvc_precision(mlflow_metrics: dict) -> dict:
    """A run's train metrics as the train stage writes them (10 significant digits)."""
    return {k: stages.at_dvc_precision(mlflow_metrics[k])
            for k in ("initial_mse", "final_mse", "true_mse")}


def stage(name: str) -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]


# ---------------------------------------------------------------- the project files


def test_a_clone_is_a_dvc_project_with_hydra_composition():
    config = (ROOT / ".dvc" / "config").read_text()
    for line in ("enabled = true", "config_dir = conf", "config_name = config",
                 "analytics = false", "check_update = false"):
        assert line in config
    tracked = git(ROOT, "ls-files", ".dvc", "dvc.yaml", "dvc.lock", "params.yaml", "metrics",
                  "plots").splitlines()
    assert {".dvc/config", ".dvc/.gitignore", ".dvc/plots/linear_log.json", "dvc.yaml",
            "dvc.lock", "params.yaml"} <= set(tracked)
    # metrics and plot tables are in git (cache: false), so a fresh clone has them
    assert {"metrics/train.json", "metrics/sweep.json", "plots/train/loss.csv",
            "plots/train/fit.csv"} <= set(tracked)
    assert stage("train")["metrics"] == [{"metrics/train.json": {"cache": False}}]
    assert stage("train")["outs"] == [{"plots/train": {"cache": False}}]
    assert stage("sweep")["metrics"] == [{"metrics/sweep.json": {"cache": False}}]


def test_params_yaml_is_dvcs_composition_of_conf(tmp_path):
    """`dvc repro` reads the committed params.yaml; it must be what `dvc exp run` composes
    from conf/ (after editing conf/, `dvc exp run` rewrites it: commit the result)."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(tmp_path / "params.yaml", str(ROOT / "conf"), None, "config", str(ROOT), [])
    assert (ROOT / "params.yaml").read_text() == (tmp_path / "params.yaml").read_text(), (
        "params.yaml is stale: `dvc exp run` rewrites it from conf/ (or, without running: "
        "python -c \"import os; from dvc.utils.hydra import compose_and_dump; "
        "compose_and_dump('params.yaml', os.path.abspath('conf'), None, 'config', '.', [])\""
        "); commit it")


def scratchnet_imports(module: str) -> set[Path]:
    """Files of scratchnet (and its hydra_plugins) reachable from ``module`` (a dotted name
    under src/) by their imports, lazy ones included; a package brings its __init__.py."""
    def file_of(dotted: str) -> Path | None:
        path = SRC.parent.joinpath(*dotted.split("."))
        for candidate in (path.with_suffix(".py"), path / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    todo, seen = [module], set()
    while todo:
        path = file_of(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        package = ".".join(path.relative_to(SRC.parent).parent.parts)
        todo += [".".join(package.split(".")[:i + 1]) for i in range(len(package.split(".")))]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
                todo += [module] + [f"{module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module.startswith(("scratchnet",
                                                                           "hydra_plugins.scratchnet")):
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return seen


def dep_files(name: str) -> set[Path]:
    """The .py files a stage's src/ deps name: a file, or every file of a folder."""
    files = set()
    for dep in stage(name)["deps"]:
        path = ROOT / dep
        if dep.startswith("src/"):
            files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return files


def test_stage_deps_are_exactly_the_code_each_stage_runs():
    assert dep_files("train") == scratchnet_imports("scratchnet.stages")
    # the sweep stage runs `python -m scratchnet.train --multirun` in a subprocess, whose
    # grid sweeper and local launcher Hydra loads, and which may run its jobs through the
    # Dask launcher
    assert dep_files("sweep") == (scratchnet_imports("scratchnet.stages")
                                  | scratchnet_imports("scratchnet.train")
                                  | scratchnet_imports("hydra_plugins.scratchnet_sweeper")
                                  | scratchnet_imports("hydra_plugins.scratchnet_local_launcher")
                                  | scratchnet_imports("hydra_plugins.scratchnet_dask_launcher"))
    assert SRC / "report" / "__init__.py" in dep_files("sweep")
    assert SRC / "report" / "__init__.py" not in dep_files("train")


def test_the_sweep_stage_passes_every_key_as_hydra_reads_it_back():
    config = compose_config(["tracking.registered_model=null", "tracking.log_model=true",
                             "tracking.experiment='null'", "train.lr=0.1"])
    command = stages.sweep_command(config, ROOT / "conf", Path("reports"))
    base = command[command.index("--multirun") + 1:-2]  # before report_dir and fresh
    assert "tracking.registered_model=null" in base and "tracking.log_model=true" in base
    assert compose_config(base + ["train.lr=0.1"]) == config  # train.lr: a grid axis


def test_stage_params_are_the_keys_that_change_the_numbers():
    keys = {k for k in flatten(compose_config()) if not k.startswith("tracking.")}
    assert set(stage("train")["params"]) == keys
    axes = stages.grid_axes(ROOT / "conf")
    assert axes == {"model.hidden_size", "train.lr", "data.noise", "seed"}
    plain = {p for p in stage("sweep")["params"] if isinstance(p, str)}
    assert plain == keys - axes
    assert {"conf/search/grid.yaml": ["hydra.sweeper.params"]} in stage("sweep")["params"]


# ---------------------------------------------------------------- a fresh clone of HEAD


def stale_code_or_params(repo: Path) -> dict:
    """What `dvc status` finds changed in each stage besides outputs that are only not in
    DVC's cache (a fresh clone has no cache: `reports/`): code, params, git-tracked outputs."""
    status = json.loads(ok(dvc(repo, "status", "--json")))
    stale = {}
    for name, entries in status.items():
        for entry in entries:
            outs = entry.get("changed outs", {}) if isinstance(entry, dict) else {}
            if not (isinstance(entry, dict) and set(entry) == {"changed outs"}
                    and set(outs.values()) == {"not in cache"}):
                stale.setdefault(name, []).append(entry)
    return stale


@pytest.fixture
def clone_of_head(tmp_path) -> Path:
    repo = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(ROOT), str(repo))
    return repo


def test_the_committed_lock_matches_the_code_and_params_of_head(clone_of_head):
    """`dvc status` on a fresh clone of HEAD: every stage's code and params are what dvc.lock
    recorded. A commit that changes them must come with `dvc repro` and the new dvc.lock."""
    repo = clone_of_head
    assert stale_code_or_params(repo) == {}, (
        "dvc.lock does not match HEAD's code or params: run `dvc repro` and commit dvc.lock, "
        "metrics/ and plots/")
    # and the check sees a change: a commit that edits a dependency of both stages
    with open(repo / "src" / "scratchnet" / "cli.py", "a") as handle:
        handle.write("# changed\n")
    git(repo, "commit", "-qam", "change a stage's code, not the lock")
    stale = stale_code_or_params(repo)
    assert set(stale) == {"train", "sweep"}
    assert all("src/scratchnet/cli.py" in str(entries) for entries in stale.values())


@pytest.mark.slow
def test_metrics_diff_and_exp_show_work_against_head_on_a_fresh_clone(clone_of_head):
    repo = clone_of_head
    committed = json.loads((repo / "metrics" / "train.json").read_text())
    assert ok(dvc(repo, "metrics", "diff", "--json")).strip() == "{}"
    shown = json.loads(ok(dvc(repo, "exp", "show", "--json")))
    head = next(row for row in shown if row["rev"] != "workspace")
    assert head["data"]["metrics"]["metrics/train.json"]["data"] == committed
    # a changed metric is reported against HEAD's
    (repo / "metrics" / "train.json").write_text(json.dumps({**committed, "final_mse": 0.5}))
    diff = json.loads(ok(dvc(repo, "metrics", "diff", "--json")))
    assert diff["metrics/train.json"]["final_mse"] == {
        "old": committed["final_mse"], "new": 0.5, "diff": 0.5 - committed["final_mse"]}


def test_dvc_numbers_have_10_significant_digits_and_ignore_last_bit_differences():
    """What another CPU changes (a few ulp) leaves the metrics files unchanged."""
    import numpy as np

    final = 0.03446110150963725  # the article's final MSE, as this machine computes it
    assert stages.at_dvc_precision(final) == 0.03446110151
    for ulps in (-2, -1, 1, 2):
        neighbour = final
        for _ in range(abs(ulps)):
            neighbour = float(np.nextafter(neighbour, np.sign(ulps) * np.inf))
        assert neighbour != final and stages.at_dvc_precision(neighbour) == 0.03446110151
    committed = json.loads((ROOT / "metrics" / "train.json").read_text())
    assert committed["final_mse"] == 0.03446110151  # the article's number, in git


def test_dvc_plots_draw_the_loss_on_a_log_axis():
    (loss,) = [p for p in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
               if isinstance(p, dict) and "plots/train/loss.csv" in str(p)]
    props = next(iter(loss.values()))
    template = json.loads((ROOT / ".dvc" / "plots" / f"{props['template']}.json").read_text())
    assert template["encoding"]["y"]["scale"] == {"type": "log"}
    assert template["encoding"]["y"]["field"] == "<DVC_METRIC_Y>"


# ---------------------------------------------------------------- the train stage's command


def train_stage(cwd: Path, monkeypatch, capsys):
    """dvc.yaml's train command, ``python -m scratchnet.stages train ...``, in this process."""
    monkeypatch.chdir(cwd)
    return call_main(stages.main, ["train", "--params", "params.yaml", "--metrics",
                                   "metrics/train.json", "--plots", "plots/train"],
                     capsys=capsys)


def test_the_train_stage_writes_the_article_run_and_records_it_in_the_projects_store(
        tmp_path, new_store, monkeypatch, capsys):
    """As in a queued experiment: the stage runs in a copy of the project (cwd) with the
    committed params.yaml, and records into the store of the project at $DVC_ROOT."""
    project, copy = tmp_path / "project", tmp_path / "copy"
    new_store(project)
    copy.mkdir()
    shutil.copyfile(ROOT / "params.yaml", copy / "params.yaml")  # tracking.uri=sqlite:///mlflow.db
    monkeypatch.setenv("DVC_ROOT", str(project))
    done = train_stage(copy, monkeypatch, capsys)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((copy / "metrics" / "train.json").read_text())
    assert set(metrics) == {"initial_mse", "final_mse", "true_mse"}
    assert (round(metrics["initial_mse"], 6), round(metrics["final_mse"], 6)) == ARTICLE
    assert not (copy / "mlflow.db").exists()
    (run,) = single_runs(project)  # the same numbers are in MLflow, in the project's store
    assert run.info.run_id in done.stdout
    assert at_dvc_precision(run.data.metrics) == metrics  # to 10 significant digits
    # MLflow: full precision, the bits this machine computes (the last bits depend on its
    # BLAS kernel: docs/reliability.md), R's to 1e-13
    assert run.data.metrics["final_mse"] == train_network(compose_config()).final_mse
    assert run.data.metrics["final_mse"] == pytest.approx(0.03446110150963725, rel=1e-13)
    assert metrics["final_mse"] == 0.03446110151
    assert run.data.params["model.hidden_size"] == "16"
    loss = (copy / "plots" / "train" / "loss.csv").read_text().splitlines()
    assert loss[0] == "epoch,loss" and len(loss) == 3001
    assert loss[-1] == "3000,0.03446110151"  # 10 significant digits
    fit = (copy / "plots" / "train" / "fit.csv").read_text().splitlines()
    assert fit[0] == "t,observed,truth,fit" and len(fit) == 61


def test_a_train_stage_that_cannot_run_is_one_line(tmp_path, new_store, monkeypatch, capsys):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    missing = train_stage(tmp_path, monkeypatch, capsys)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == ("error: params.yaml: no such params file (dvc exp run composes "
                              "it from conf/)\n")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["lr"] = 50.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    new_store(tmp_path)  # params.yaml's tracking.uri, sqlite:///mlflow.db
    diverged = train_stage(tmp_path, monkeypatch, capsys)
    assert diverged.returncode == 1
    assert diverged.stderr.startswith("error: training diverged at epoch ")
    assert len(diverged.stderr.splitlines()) == 1
    assert not (tmp_path / "metrics").exists()  # DVC records nothing of a failed stage
    (run,) = single_runs(tmp_path)
    assert run.info.status == "FAILED"


# ---------------------------------------------------------------- dvc on a fresh clone


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git copy of this checkout, without its committed metrics and plots, after its
    first ``dvc repro``."""
    repo = git_copy(tmp_path_factory.mktemp("dvc") / "repo", pipeline_outputs=False)
    started = time.monotonic()
    first = dvc(repo, "repro")
    ok(first)
    return repo, first, time.monotonic() - started


@pytest.mark.slow
def test_repro_runs_both_stages_and_writes_deterministic_metrics(project):
    repo, first, _ = project
    assert "Running stage 'train'" in first.stdout and "Running stage 'sweep'" in first.stdout
    metrics = json.loads((repo / "metrics" / "train.json").read_text())
    assert set(metrics) == {"initial_mse", "final_mse", "true_mse"}
    assert (round(metrics["initial_mse"], 6), round(metrics["final_mse"], 6)) == ARTICLE
    run = single_runs(repo)[0]  # the same numbers are in MLflow
    assert at_dvc_precision(run.data.metrics) == metrics
    sweep = json.loads((repo / "metrics" / "sweep.json").read_text())
    assert sweep["runs"] == {"finished": 4, "diverged": 0, "crashed": 0}
    assert sweep["best"]["hidden_size"] in (4, 8) and sweep["best"]["true_mse_gmean"] > 0
    loss = (repo / "plots" / "train" / "loss.csv").read_text().splitlines()
    assert loss[0] == "epoch,loss" and len(loss) == 3001
    assert (repo / "plots" / "train" / "fit.csv").read_text().startswith("t,observed,truth,fit\n")
    assert {"sweep_summary.csv", "sweep_summary.md", "report.html", "mse_vs_hidden_size.png"} <= {
        p.name for p in (repo / "reports" / "pipeline").iterdir()}


@pytest.mark.slow
def test_runs_record_the_clean_commit_they_ran(project):
    repo, _, _ = project
    tags = single_runs(repo)[-1].data.tags  # the first run, before any workspace change
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["scratchnet.git_dirty"] == "false"


@pytest.mark.slow
def test_second_repro_does_nothing(project):
    repo, _, _ = project
    before = run_count(repo)
    again = ok(dvc(repo, "repro"))
    assert "Stage 'train' didn't change, skipping" in again
    assert "Stage 'sweep' didn't change, skipping" in again
    assert "Running stage" not in again
    assert run_count(repo) == before


@pytest.mark.slow
def test_forced_repro_rewrites_metrics_byte_for_byte(project):
    repo, _, _ = project
    before = {name: (repo / name).read_bytes() for name in DETERMINISTIC_FILES}
    runs = run_count(repo)
    forced = ok(dvc(repo, "repro", "-f"))
    assert "Running stage 'train'" in forced and "Running stage 'sweep'" in forced
    assert run_count(repo) == runs + 1 + 5  # train, and a new sweep parent with 4 jobs
    for name, content in before.items():
        assert (repo / name).read_bytes() == content, name


@pytest.mark.slow
def test_metrics_show_and_plots_show(project):
    repo, _, _ = project
    shown = json.loads(ok(dvc(repo, "metrics", "show", "--json")))[""]["data"]
    assert set(shown["metrics/train.json"]["data"]) == {"initial_mse", "final_mse", "true_mse"}
    assert shown["metrics/sweep.json"]["data"]["runs"]["finished"] == 4
    plots = json.loads(ok(dvc(repo, "plots", "show", "--json")))["data"]
    loss_plot = plots["Training loss (MSE per epoch, log axis)"][0]["content"]
    assert loss_plot["encoding"]["y"]["scale"] == {"type": "log"}  # as fit.png draws it
    loss = loss_plot["data"]["values"]
    assert len(loss) == 3000 and loss[0]["epoch"] == "1"
    fit = plots["Fit against the truth"][0]["content"]["data"]["values"][0]
    assert {"t", "observed", "truth", "fit"} <= set(fit)
    assert plots["reports/pipeline/loss_best_worst.png"][0]["type"] == "image"


def set_param(repo: Path, dotted: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    group, _, key = dotted.partition(".")
    params[group][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_a_param_change_reruns_only_the_stages_using_it(project):
    repo, _, _ = project
    set_param(repo, "model.hidden_size", 8)  # swept by the grid: only train uses it
    assert set(json.loads(ok(dvc(repo, "status", "--json")))) == {"train"}
    rerun = ok(dvc(repo, "repro"))
    assert "Running stage 'train'" in rerun
    assert "Stage 'sweep' didn't change, skipping" in rerun
    assert single_runs(repo)[0].data.params["model.hidden_size"] == "8"
    set_param(repo, "train.epochs", 100)  # both stages use it
    assert set(json.loads(ok(dvc(repo, "status", "--json")))) == {"train", "sweep"}
    git(repo, "checkout", "params.yaml")


def experiments(repo: Path) -> list[tuple[dict, dict]]:
    """(params.yaml values, train metrics) of each experiment `dvc exp show --json` lists."""
    def rows(shown):
        for row in shown:
            yield row
            for experiment in row.get("experiments") or []:
                yield from rows(experiment["revs"])

    shown = json.loads(ok(dvc(repo, "exp", "show", "--json")))
    return [(row["data"]["params"]["params.yaml"]["data"],
             row["data"]["metrics"]["metrics/train.json"]["data"])
            for row in rows(shown) if row["rev"] != "workspace" and row.get("experiments") is None
            and "metrics/train.json" in row["data"]["metrics"]]


@pytest.mark.slow
def test_exp_run_set_param_is_listed_by_exp_show(project):
    repo, _, _ = project
    ran = ok(dvc(repo, "exp", "run", "-S", "model.hidden_size=32"))
    assert "Running stage 'train'" in ran and "Stage 'sweep' didn't change, skipping" in ran
    params = yaml.safe_load((repo / "params.yaml").read_text())  # composed from conf/
    assert params["model"]["hidden_size"] == 32 and params["train"]["epochs"] == 3000
    mine = [(p, m) for p, m in experiments(repo) if p["model"]["hidden_size"] == 32]
    assert len(mine) == 1
    metrics = mine[0][1]
    run = single_runs(repo)[0]
    assert run.data.params["model.hidden_size"] == "32"
    assert metrics == at_dvc_precision(run.data.metrics)
    assert run.data.tags["scratchnet.git_dirty"] == "true"  # params.yaml differs from HEAD


@pytest.mark.slow
def test_queued_experiments_run_and_record_into_the_projects_store(project):
    repo, _, _ = project
    ok(dvc(repo, "exp", "run", "--queue", "-S", "train.lr=0.01,0.1"))
    ok(dvc(repo, "queue", "start"))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = ok(dvc(repo, "queue", "status"))
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert status.count("Success") >= 2, status
    by_lr = {p["train"]["lr"]: m["final_mse"] for p, m in experiments(repo)
             if p["model"]["hidden_size"] == 16}
    assert {0.01, 0.1} <= set(by_lr) and by_lr[0.01] != by_lr[0.1]
    # they ran in copies under .dvc/tmp/exps, but recorded into the project's mlflow.db
    recorded = {float(r.data.params["train.lr"]):
                stages.at_dvc_precision(r.data.metrics["final_mse"])
                for r in single_runs(repo) if r.data.params["model.hidden_size"] == "16"}
    assert recorded[0.01] == by_lr[0.01] and recorded[0.1] == by_lr[0.1]
