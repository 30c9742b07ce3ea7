"""Shared helpers: configs composed from conf/ with Hydra's compose API (as the app does),
shrunk for speed, and pointed at a fresh MLflow store under the test's tmp_path; the entry
points called in this process as ``python -m`` would run them; a recorded sweep built in
this process; subprocess helpers (the CLI, sweeps, an MLflow server, DVC) for the slow
suite and the one CLI smoke test."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from scratchnet.config import Config, to_config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose_config(overrides: list[str] = ()) -> Config:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_config(compose(config_name="config", overrides=list(overrides)))


def store_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="session")
def new_store(tmp_path_factory) -> Callable[[Path], str]:
    """``new_store(folder)``: the URI of a new, empty MLflow store in ``folder``, for tests
    that record into a store rather than test its creation. MLflow creates and migrates a
    sqlite store in over a second; it does so once here, and each new store is a copy of
    that database file (a real, fully migrated MLflow store, as open_store leaves it)."""
    from scratchnet import tracking

    template = tmp_path_factory.mktemp("empty-store")
    launched_in = os.getcwd()
    os.chdir(template)  # MLflow's Default experiment points at ./mlruns of the creator
    try:
        tracking.open_store(store_uri(template))
    finally:
        os.chdir(launched_in)

    def make(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        assert not (folder / "mlflow.db").exists(), folder
        shutil.copyfile(template / "mlflow.db", folder / "mlflow.db")
        return store_uri(folder)

    return make


@dataclass
class Exited:
    """What a command left behind, from a subprocess or from ``main`` in this process."""
    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail the test if the block is still running after ``seconds``: an entry point
    called in this process that trains (or waits) where it should stop at once fails
    instead of hanging the suite. SIGALRM interrupts numpy's training loop between epochs;
    pytest's Failed is a BaseException, so no ``except Exception`` swallows it."""
    def expire(signum, frame):
        pytest.fail(f"still running after {seconds} s: it trained or hung")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call_main(main: Callable[..., None], *args, capsys, seconds: float = 120) -> Exited:
    """An entry point's ``main`` in this process, ending as ``python -m`` would: exit code,
    stdout, stderr, with ``sys.exit("error: ...")`` printed to stderr and exit status 1.
    The environment (entry points set MLflow's and Hydra's variables) is restored after."""
    capsys.readouterr()  # what came before is not this command's output
    environment = dict(os.environ)
    try:
        with deadline(seconds):
            main(*args)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        os.environ.clear()
        os.environ.update(environment)
    out, err = capsys.readouterr()
    if isinstance(code, str):
        err, code = err + code + "\n", 1
    return Exited(0 if code is None else code, out, err)


def run_train(args: list[str], cwd: Path, monkeypatch, capsys, seconds: float = 120) -> Exited:
    """``python -m scratchnet.train ARGS`` (the Hydra app) in this process, in ``cwd``."""
    from scratchnet.train import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["scratchnet-train", *args])
    return call_main(main, capsys=capsys, seconds=seconds)


def one_error_line(result: Exited | subprocess.CompletedProcess, *names: str) -> str:
    """The single stderr line of a failed command, which names every one of ``names``;
    nothing was trained."""
    assert result.returncode not in (0, None), result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    # a run that ends in an error after its store was made (a diverged run is recorded)
    # may be preceded by the one note that says the store is new
    lines = [line for line in result.stderr.strip().splitlines()
             if not line.startswith("[mlflow] created a new store ")]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for name in names:
        assert name in line, (name, line)
    assert "Initial MSE" not in result.stdout  # no training happened
    return line


# ---------------------------------------------------------------- a sweep built in-process

@dataclass
class Sweep:
    uri: str
    client: object  # MlflowClient
    exp_id: str
    parent_id: str
    children: list  # the children's mlflow Run records, read back from the store


def recorded_sweep(uri: str, axes: dict[str, list], fixed: list[str] = (),
                   name: str = "sweep") -> Sweep:
    """The records of a grid sweep without a launcher: a parent run as the sweep callback
    makes it, and one real recorded run (scratchnet.run.run) per point of the grid under
    it, in this process. The children come back as MLflow read them from the store."""
    from mlflow import MlflowClient

    from scratchnet import tracking
    from scratchnet.run import run

    points = [[f"{key}={value}" for key, value in zip(axes, values)]
              for values in itertools.product(*axes.values())]
    client = tracking.open_store(uri)
    exp_id = tracking.experiment_id(client, "scratchnet", uri)
    parent = tracking.start_run(client, exp_id, name, {tracking.TAG_SWEEP_KEY: name},
                                {"sweep.size": len(points)})
    for point in points:
        overrides = [*point, *fixed]
        run(compose_config([*overrides, f"tracking.uri={uri}"]), parent_run_id=parent,
            overrides=overrides)
    tracking.end_run(client, parent, "FINISHED")
    reader = MlflowClient(uri)
    children = reader.search_runs([exp_id], f"tags.`{tracking.TAG_PARENT}` = '{parent}'",
                                  max_results=1000)
    assert len(children) == len(points)
    return Sweep(uri, reader, exp_id, parent, children)


# ---------------------------------------------------------------- subprocesses

def run_cli(args: list[str], cwd: Path, module: str = "scratchnet.train", timeout: float = 600,
            **kwargs) -> subprocess.CompletedProcess:
    """Run one of our entry points in a real subprocess, as a user would."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def start_sweep(folder: Path, *args: str) -> subprocess.Popen:
    """A sweep in the background, in its own process group (so tests can signal all of it),
    with tests/ on the path for the fault-injection callbacks."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "scratchnet.train", "--multirun", *args,
               f"tracking.uri={store_uri(folder)}"]
    return subprocess.Popen(command, cwd=folder, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_answering(url: str, process: subprocess.Popen, seconds: float = 120,
                         log: Path | None = None) -> None:
    """Poll ``url`` until it answers; fail if the server's process ends first (with its
    ``log``, if given) or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert process.poll() is None, log.read_text() if log else f"no server at {url}"
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.5)


def stop_server(process: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM to a server's process group (the UI script, mlflow, uvicorn); SIGKILL to
    what is left after ``seconds`` (uvicorn waits for a browser's open connections)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TrackingServer:
    """scripts/mlflow-server.sh as a real subprocess on a loopback port, in its own process
    group (mlflow server, uvicorn and its workers) so stop() ends all of it."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder, self.port = folder, port or free_port()
        self.process: subprocess.Popen | None = None
        self.printed = ""

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, seconds: float = 120) -> TrackingServer:
        env = {**os.environ, "MLFLOW_SERVER_PORT": str(self.port),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        # Output to files, not pipes: uvicorn logs every request to stdout, and a pipe
        # nobody reads fills up and blocks the server.
        out = self.folder.parent / "server.out"
        with open(out, "w") as stdout, open(self.folder.parent / "server.log", "a") as stderr:
            self.process = subprocess.Popen(
                ["bash", str(ROOT / "scripts" / "mlflow-server.sh"), str(self.folder),
                 "--workers", "1"],
                env=env, start_new_session=True, stdout=stdout, stderr=stderr)
        deadline = time.monotonic() + seconds
        while True:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2):
                    self.printed = out.read_text().splitlines()[0]  # the script's first line
                    return self
            except OSError:
                assert self.process.poll() is None, "mlflow server exited"
                assert time.monotonic() < deadline, f"no MLflow server at {self.uri}"
                time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)


# ---------------------------------------------------------------- DVC on a copy of this checkout

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
SMALL_GRID = {"model.hidden_size": "4,8", "train.lr": "0.05", "data.noise": "0.06",
              "seed": "1,2"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_IDENTITY},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def git_copy(dest: Path, grid: dict[str, str] | None = SMALL_GRID,
             pipeline_outputs: bool = True) -> Path:
    """The tracked files of this checkout (working-tree contents) as a new, committed git
    repository: a fresh clone, with uncommitted work included. ``grid`` replaces the
    sweep grid in conf/search/grid.yaml, and conf/config.yaml runs its jobs in one process.
    ``pipeline_outputs=False`` leaves out the DVC outputs kept in git (metrics/, plots/): a
    project before its first ``dvc repro``."""
    import yaml

    files = git(ROOT, "ls-files", "-z").split("\0")
    if not pipeline_outputs:
        files = [name for name in files if not name.startswith(("metrics/", "plots/"))]
    for name in filter(None, files):
        if (ROOT / name).is_file():  # a tracked file deleted in the working tree is skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    if grid is not None:
        search = dest / "conf" / "search" / "grid.yaml"
        composed = yaml.safe_load(search.read_text())
        composed["hydra"]["sweeper"]["params"] = grid
        search.write_text("# @package _global_\n" + yaml.safe_dump(composed, sort_keys=False))
        conf = dest / "conf" / "config.yaml"
        composed = yaml.safe_load(conf.read_text())
        composed["hydra"].setdefault("launcher", {})["n_jobs"] = 1
        conf.write_text(yaml.safe_dump(composed, sort_keys=False))
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "copy")
    return dest


def dvc(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real dvc CLI of this interpreter, with no user or system DVC config, no
    analytics, and this interpreter's ``python`` first on PATH for the stage commands."""
    home = repo.parent / "dvc-home"
    env = {**os.environ, **GIT_IDENTITY, "DVC_NO_ANALYTICS": "1", "PYTHONWARNINGS": "ignore",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DVC_GLOBAL_CONFIG_DIR": str(home / "global"),
           "DVC_SYSTEM_CONFIG_DIR": str(home / "system"),
           "DVC_SITE_CACHE_DIR": str(home / "site")}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, check=False,
                          capture_output=True, text=True, timeout=timeout)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"{done.args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


# ---------------------------------------------------------------- a browser (slow tests)

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path):
    with browser_for(tmp_path) as driver:
        yield driver


@contextlib.contextmanager
def browser_for(tmp_path: Path):
    """Headless Debian chromium driven by its chromedriver (.ci/run installs both)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "needs Debian's chromium and chromium-driver (apt-get install, as .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: missing there is a broken CI, not a skip
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1600,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
