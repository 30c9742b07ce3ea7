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


def stage(name: str) -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]


# ---------------------------------------------------------------- the project files


def test_a_clone_is_a_dvc_project_with_hydra_composition():
    config = (ROOT / ".dvc" / "config").read_text()
    for line in ("enabled = true", "config_dir = conf", "config_name = config",
                 "analytics = false", "check_update = false"):
        assert line in config
    assert "/metrics/" in (ROOT / ".gitignore").read_text().splitlines()
    tracked = git(ROOT, "ls-files", ".dvc", "dvc.yaml", "params.yaml").splitlines()
    assert {".dvc/config", ".dvc/.gitignore", "dvc.yaml", "params.yaml"} <= set(tracked)


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
    # grid sweeper Hydra loads, and which may run its jobs through the Dask launcher
    assert dep_files("sweep") == (scratchnet_imports("scratchnet.stages")
                                  | scratchnet_imports("scratchnet.train")
                                  | scratchnet_imports("hydra_plugins.scratchnet_sweeper")
                                  | scratchnet_imports("hydra_plugins.scratchnet_dask_launcher"))
    assert SRC / "report" / "__init__.py" in dep_files("sweep")
    assert SRC / "report" / "__init__.py" not in dep_files("train")


def test_stage_params_are_the_keys_that_change_the_numbers():
    keys = {k for k in flatten(compose_config()) if not k.startswith("tracking.")}
    assert set(stage("train")["params"]) == keys
    axes = stages.grid_axes(ROOT / "conf")
    assert axes == {"model.hidden_size", "train.lr", "data.noise", "seed"}
    plain = {p for p in stage("sweep")["params"] if isinstance(p, str)}
    assert plain == keys - axes
    assert {"conf/search/grid.yaml": ["hydra.sweeper.params"]} in stage("sweep")["params"]


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
    assert {k: run.data.metrics[k] for k in metrics} == metrics
    assert run.data.params["model.hidden_size"] == "16"
    loss = (copy / "plots" / "train" / "loss.csv").read_text().splitlines()
    assert loss[0] == "epoch,loss" and len(loss) == 3001
    assert loss[-1] == f"3000,{metrics['final_mse']!r}"  # %.17g: the exact float
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
    """A git copy of this checkout after its first ``dvc repro``."""
    repo = git_copy(tmp_path_factory.mktemp("dvc") / "repo")
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
    assert {k: run.data.metrics[k] for k in metrics} == metrics
    sweep = json.loads((repo / "metrics" / "sweep.json").read_text())
    assert sweep["runs"] == {"finished": 4, "diverged": 0, "crashed": 0}
    assert sweep["best"]["hidden_size"] in (4, 8) and sweep["best"]["true_mse_mean"] > 0
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
    loss = plots["Training loss (MSE per epoch)"][0]["content"]["data"]["values"]
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
    assert metrics == {k: run.data.metrics[k] for k in ("initial_mse", "final_mse", "true_mse")}
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
    recorded = {float(r.data.params["train.lr"]): r.data.metrics["final_mse"]
                for r in single_runs(repo) if r.data.params["model.hidden_size"] == "16"}
    assert recorded[0.01] == by_lr[0.01] and recorded[0.1] == by_lr[0.1]
