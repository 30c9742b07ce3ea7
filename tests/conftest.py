"""Shared helpers: configs composed from conf/ with Hydra's compose API (as the app does),
shrunk for speed, and pointed at a fresh MLflow store under the test's tmp_path."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


@pytest.fixture
def store(tmp_path: Path) -> str:
    """URI of an MLflow store that does not exist yet."""
    return store_uri(tmp_path)


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
