"""Shared helpers: configs composed from conf/ with Hydra's compose API (as the app does),
shrunk for speed, and pointed at a fresh MLflow store under the test's tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from scratchnet.config import Config
from scratchnet.configure import to_config

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
