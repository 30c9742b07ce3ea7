"""The first hour of a new user: a quiet console, help that explains the app and every
option, and a misspelt key answered with the closest valid ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, one_error_line, run_train, store_uri

# ---------------------------------------------------------------- typos


@pytest.mark.parametrize(("args", "line"), [
    (["model.hiden_size=8"], "error: no key model.hiden_size; did you mean model.hidden_size?"),
    (["trian.lr=0.1"], "error: no key trian.lr; did you mean train.lr?"),
    (["+data.nois=0.1"], "error: no key data.nois; did you mean data.noise?"),
    (["hydra.callbacks.sweep.frsh=true"],
     "error: no key hydra.callbacks.sweep.frsh; did you mean hydra.callbacks.sweep.fresh?"),
    # sweeps: a misspelt key given one value, and a misspelt swept key (checked per job)
    (["--multirun", "seeed=3"], "error: no key seeed; did you mean seed?"),
    (["--multirun", "model.hiden_size=8,16"],
     "error: no key model.hiden_size; did you mean model.hidden_size?"),
    # a config group's option: Hydra's own choices (conf/search/*.yaml), the closest first
    (["--multirun", "search=optuan"],
     "error: no search=optuan; did you mean search=optuna? choices: grid, optuna, race"),
    (["search=zzz"], "error: no search=zzz; choices: grid, optuna, race"),
])
def test_a_misspelt_key_gets_one_line_with_the_closest_valid_key(args, line, tmp_path,
                                                                  monkeypatch, capsys):
    result = run_train([*args, f"tracking.uri={store_uri(tmp_path)}"], tmp_path, monkeypatch,
                       capsys, seconds=60)
    assert one_error_line(result) == line
    assert not (tmp_path / "mlflow.db").exists()  # nothing was recorded


def test_a_key_like_none_lists_the_keys_of_its_group():
    from scratchnet.cli import no_key_message
    from scratchnet.config import schema_keys

    assert no_key_message("model.zzz", schema_keys()) == (
        "no key model.zzz; model has model.hidden_size, model.depth, model.activation, "
        "model.init_scale")


# ---------------------------------------------------------------- help

def composed_keys() -> dict[str, object]:
    """Every leaf key of the default config with its value, from conf/config.yaml itself."""
    config = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())
    leaves = {}
    for group, value in config.items():
        if group in ("defaults", "hydra"):
            continue
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for name, leaf in items:
            leaves[f"{group}.{name}" if name else group] = leaf
    for name, leaf in config["hydra"]["callbacks"]["sweep"].items():
        if name != "_target_":
            leaves[f"hydra.callbacks.sweep.{name}"] = leaf
    return leaves


def test_train_help_explains_the_app_and_every_key_with_its_default(tmp_path, monkeypatch,
                                                                     capsys):
    result = run_train(["--help", "train.lr=0.1"], tmp_path, monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "powered by Hydra" not in text
    for words in ("--multirun", "search=optuna", "MLflow", "scripts/mlflow-ui.sh", "outputs/",
                  "multirun/", "--hydra-help"):
        assert words in text, words
    keys = composed_keys()
    assert {"seed", "train.lr", "tracking.uri", "hydra.callbacks.sweep.fresh"} <= set(keys)
    for key, default in keys.items():
        shown = 0.1 if key == "train.lr" else default  # the override given is shown
        line = next((ln for ln in text.splitlines() if ln.split()[:1] == [key]), None)
        assert line is not None, f"{key} missing from --help"
        assert line.rstrip().endswith(f"[{shown}]"), line
        assert len(line.split()) > 2, f"{key} has no meaning in --help"  # key, words, [value]
    grid = yaml.safe_load((ROOT / "conf" / "search" / "grid.yaml").read_text())
    axes = grid["hydra"]["sweeper"]["params"]
    one_line_text = " ".join(text.split())
    for key, values in axes.items():
        assert f"{key}={values}" in one_line_text, key
    size = 1
    for values in axes.values():
        size *= len(str(values).split(","))
    assert f"{size} runs" in one_line_text


def help_problems(text: str) -> list[str]:
    """What makes a --help text unhelpful: reST markup, or an option without a word of help
    (argparse prints such an option alone on its line, the next option right under it)."""
    problems = [f"reST or markdown markup: {line.strip()}" for line in text.splitlines()
                if "`" in line or ":func:" in line or "(drawn by" in line]
    lines = text.splitlines()
    for i, line in enumerate(lines):
        option = re.match(r"^\s{2}(-\S+(?: [A-Z_]+)?(?:, -\S+(?: [A-Z_]+)?)?)\s*$", line)
        if option:
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not following.strip() or re.match(r"^\s{2}-", following):
                problems.append(f"no help for {option.group(1)}")
        elif re.match(r"^\s{2}-", line) and not re.search(r"\S\s{2,}\S", line):
            problems.append(f"no help for {line.strip()}")
    return problems


def test_help_problems_finds_a_missing_option_help():
    text = "options:\n  -h, --help   show this\n  --tracking-uri TRACKING_URI\n  --out OUT   a folder\n"
    assert help_problems(text) == ["no help for --tracking-uri TRACKING_URI"]
    assert help_problems("a ``python -m x`` b") != []


# (module, argv): the argparse CLIs, called in this process
ARGPARSE_HELP = [("scratchnet.report.__main__", ["--help"]), ("scratchnet.reproduce", ["--help"]),
                 ("scratchnet.stages", ["--help"]), ("scratchnet.stages", ["train", "--help"]),
                 ("scratchnet.stages", ["sweep", "--help"])]


def assert_helpful(text: str) -> None:
    assert len(text.splitlines()) >= 5, text
    assert help_problems(text) == []
    assert "Powered by Hydra" not in text


@pytest.mark.parametrize(("module", "argv"), ARGPARSE_HELP, ids=lambda a: str(a))
def test_every_cli_help_is_plain_text_with_every_option_explained(module, argv, capsys):
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert_helpful(capsys.readouterr().out)


def run_help(command: list[str], cwd: Path) -> str:
    """--help of a command in a real process, warnings on as a user has them (no
    RuntimeWarning from runpy either); it writes nothing (no store, no outputs/)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert list(cwd.iterdir()) == []
    return done.stdout


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "scratchnet.train", "--help"],
    [str(Path(sys.executable).parent / "scratchnet-train"), "--help"],  # the console script
    ["bash", str(ROOT / "scripts" / "mlflow-ui.sh"), "--help"],
    ["bash", str(ROOT / "scripts" / "mlflow-server.sh"), "--help"],
], ids=lambda c: Path(c[-2]).name + (" (console script)" if len(c) == 2 else ""))
def test_command_help_in_a_real_process(command, tmp_path):
    assert_helpful(run_help(command, tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("script", ["bench.py", "baseline_sweep.py", "race_ties.py"])
def test_the_scripts_help(script, tmp_path):
    assert_helpful(run_help([sys.executable, str(ROOT / "scripts" / script), "--help"],
                            tmp_path))


def test_the_package_does_not_import_its_entry_points():
    """runpy warns ('found in sys.modules ... prior to execution') when importing the
    package has already imported the module ``python -m`` is about to run."""
    entry_points = ["scratchnet.train", "scratchnet.report.__main__", "scratchnet.reproduce",
                    "scratchnet.stages"]
    code = ("import sys, scratchnet, scratchnet.report; "
            f"print([m for m in {entry_points!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------- the console of a sweep

def sweep_command(folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scratchnet.train", "--multirun", "model.hidden_size=4,8",
            "seed=1,2", "train.lr=0.05", "data.noise=0.06", "train.epochs=50",
            f"tracking.uri={store_uri(folder)}", *extra]


@pytest.mark.slow
def test_a_sweep_prints_its_grid_then_progress_and_no_warning(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    done = subprocess.run(sweep_command(tmp_path), cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "Warning" not in done.stderr and "runpy" not in done.stderr, done.stderr
    assert lines[0].startswith("[sweep] 4 runs: model.hidden_size=4,8 x train.lr=0.05 x "
                               "data.noise=0.06 x seed=1,2"), lines[0]
    new_store = [line for line in lines if line.startswith("[mlflow] created a new store ")]
    assert len(new_store) == 1, lines  # tmp_path has no store yet: said once
    assert all(line.startswith("[sweep] ") for line in lines if line not in new_store), lines
    assert lines[-1].startswith("[sweep] 4/4 done"), lines
    assert not re.search(r"#\d+ : ", done.stdout + done.stderr)
    # Hydra's own logging config brings its per-job listing back
    verbose = subprocess.run(sweep_command(tmp_path, "hydra/hydra_logging=default"),
                             cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600, check=False)
    assert verbose.returncode == 0, verbose.stderr
    assert len(re.findall(r"#\d+ : model.hidden_size=", verbose.stdout + verbose.stderr)) == 4


def test_grid_line_names_every_axis_and_the_size():
    from scratchnet.sweep.callback import grid_line

    line = grid_line({"model.hidden_size": "8,16", "seed": "1,2,3"}, 6, True, Path("m/1"))
    assert line == "[sweep] 6 runs: model.hidden_size=8,16 x seed=1,2,3 (Hydra's folders: m/1)"
    search = grid_line({"train.lr": "interval(0.01, 0.1)", "seed": "choice(1, 2)"}, 20, False,
                       Path("m/2"))
    assert search == ("[sweep] 20 trials of a search over train.lr=interval(0.01, 0.1), "
                      "seed=choice(1, 2) (Hydra's folders: m/2)")


# ---------------------------------------------------------------- the UI's addresses

def test_ui_addresses_follow_the_ui_script_or_the_tracking_server(monkeypatch):
    from urllib.parse import parse_qs, urlsplit

    from scratchnet.tracking import ui

    monkeypatch.delenv("MLFLOW_UI_PORT", raising=False)
    monkeypatch.delenv("MLFLOW_UI_HOST", raising=False)
    assert ui.ui_address("sqlite:///mlflow.db") == "http://127.0.0.1:5000"
    assert ui.start_hint("sqlite:///mlflow.db") == "scripts/mlflow-ui.sh"
    assert ui.start_hint("sqlite:///x.db") == "scripts/mlflow-ui.sh sqlite:///x.db"
    monkeypatch.setenv("MLFLOW_UI_PORT", "5050")
    assert ui.ui_address("sqlite:///x.db") == "http://127.0.0.1:5050"
    assert ui.ui_address("http://host:5000/") == "http://host:5000"
    assert ui.start_hint("http://host:5000") == ""
    # the sweep's address: the runs table's own URL state, in the hash route's query
    route = urlsplit(ui.sweep_url("http://h:1", "7", "abc")).fragment
    path, _, query = route.partition("?")
    assert path == "/experiments/7/runs"
    assert parse_qs(query) == {"searchFilter": ["tags.mlflow.parentRunId = 'abc'"],
                               "orderByKey": ["metrics.`true_mse`"], "orderByAsc": ["true"],
                               "workflowType": ["machine_learning"]}
    assert ui.artifact_url("http://h:1", "7", "abc") == (
        "http://h:1/#/experiments/7/runs/abc/artifacts/report/report.html"
        "?workflowType=machine_learning")
