"""Where a run's code came from, and values made safe to record (no credentials, no home
path)."""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np


@functools.cache
def provenance() -> dict[str, str]:
    """Git commit and dirtiness of scratchnet's own checkout, and the versions of Python,
    numpy and scratchnet, as MLflow tags (never environment values)."""
    from .. import __version__

    tags = {"scratchnet.version": __version__, "python_version": platform.python_version(),
            "numpy_version": np.__version__, "mlflow.source.name": "scratchnet.train",
            "mlflow.source.type": "LOCAL"}
    source = Path(__file__).resolve().parent
    try:
        commit = _git(source, "rev-parse", "HEAD").strip()
        status = _git(source, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return tags  # not a git checkout (an installed wheel): no commit to record
    tags["mlflow.source.git.commit"] = commit
    tags["scratchnet.git_dirty"] = str(bool(status.strip())).lower()
    return tags


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                          text=True, timeout=10).stdout


def strip_credentials(text: str) -> str:
    """http://user:token@host -> http://host, anywhere in text."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def redact(text: str) -> str:
    """A value safe to record: no credentials in URLs, no absolute home path."""
    text = strip_credentials(text)
    home = os.path.expanduser("~")
    return text.replace(home, "~") if home not in ("", "/") else text


def dumps_overrides(overrides: Iterable[str]) -> str:
    """A job's Hydra overrides as the JSON list recorded in its run's tag."""
    return json.dumps([redact(o) for o in overrides])
