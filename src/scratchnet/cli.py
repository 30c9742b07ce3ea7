"""What every command-line entry point shares: the process's MLflow settings, and errors
ended with one line on stderr."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

# MLflow's own variables, as defaults: set any of them in the environment to choose otherwise.
MLFLOW_DEFAULTS = {
    # our runs send nothing over the network
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # MLflow draws a progress bar on stderr for every artifact download; ours is one line
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # with a server, MLflow prints two "View run/experiment at" links per run; we print ours
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # A tracking server that has gone away fails a job within about 10 s (3 retries, backoff
    # 0 + 2 + 4 s plus jitter; a server that hangs: 4 x 10 s), not after the minutes of
    # MLflow's defaults (7 retries, backoff factor 2, 120 s timeout).
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # A sqlite store's connections are opened per use, never pooled: a sweep job's process
    # is forked from its worker, and the two must not share a sqlite connection.
    "MLFLOW_SQLALCHEMYSTORE_POOLCLASS": "NullPool",
}


def conf_dir() -> str:
    """conf/ at the top of the checkout (editable install), or inside an installed wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "conf", package.parent.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"conf/config.yaml not found beside {package}")


def set_mlflow_defaults() -> None:
    """Called first by every entry point; worker processes inherit the environment."""
    for name, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)


def one_line(error: BaseException) -> str:
    """The first line of an error and of its cause, e.g. Hydra's composition errors; for a
    key that does not exist, 'no key model.hiden_size; did you mean model.hidden_size?'."""
    key = unknown_key(error)
    if key is not None:
        return no_key_message(key, known_keys())
    choice = missing_choice(error)
    if choice is not None:
        return choice

    def first(e: BaseException) -> str:
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        return lines[0].strip() if lines else type(e).__name__

    text = first(error)
    override = getattr(error, "override", None)  # Hydra's OverrideParseException
    if override:
        text = f"malformed override {override!r}: {text}"
    cause = error.__cause__
    if cause is not None and first(cause) not in text:
        text += " " + first(cause)
        key = getattr(cause, "full_key", None)
        if key and key not in text:
            text = f"{key}: {text}"
    return text


@contextlib.contextmanager
def exit_on(*errors: type[BaseException], code: int = 1) -> Iterator[None]:
    """Any of ``errors`` ends the process with 'error: <one line>' on stderr and ``code``."""
    try:
        yield
    except errors as error:
        message = f"error: {one_line(error)}"
        if code == 1:
            sys.exit(message)  # SystemExit carries the line: callers and tests can read it
        print(message, file=sys.stderr)
        sys.exit(code)


def unknown_key(error: BaseException | None) -> str | None:
    """The dotted key an override or schema check found no place for, from OmegaConf's
    error in the chain of errors (Hydra's 'Could not override' wraps it, our schema check
    replaces it); None for any other error."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        # Hydra names the whole override ('trian.lr'), OmegaConf the first unknown part
        override = re.match(r"Could not override '([^']+)'", str(error))
        if override:
            return override.group(1)
        if isinstance(error, (ConfigAttributeError, ConfigKeyError)) and error.full_key:
            return str(error.full_key)
        error = error.__cause__ or error.__context__
    return None


def missing_choice(error: BaseException | None) -> str | None:
    """For a config group given an option it does not have (``search=optuan``), 'no
    search=optuan; did you mean search=optuna? choices: grid, optuna, race' from Hydra's
    MissingConfigException; None for any other error."""
    from hydra.errors import MissingConfigException

    while error is not None and not isinstance(error, MissingConfigException):
        error = error.__cause__ or error.__context__
    if error is None or not error.options or not error.missing_cfg_file:
        return None
    group, _, name = error.missing_cfg_file.rpartition("/")
    close = closest(name, list(error.options))
    hint = f"did you mean {' or '.join(f'{group}={c}' for c in close)}? " if close else ""
    return f"no {group}={name}; {hint}choices: {', '.join(error.options)}"


def no_key_message(key: str, keys: list[str]) -> str:
    """'no key KEY; did you mean A?' with the closest valid keys (difflib's ratio): names in
    the same group when the group exists, else whole dotted keys; if none is close, the
    keys of the group."""
    group, _, name = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in keys if k.rpartition(".")[0] == group}
    if siblings:
        close = [siblings[n] for n in closest(name, list(siblings))]
    else:  # the group itself is misspelt ('trian.lr')
        close = closest(key, keys)
    if close:
        return f"no key {key}; did you mean {' or '.join(close)}?"
    if group and siblings:
        return f"no key {key}; {group} has {', '.join(siblings.values())}"
    return f"no key {key}; python -m scratchnet.train --help lists the keys"


def closest(word: str, choices: list[str]) -> list[str]:
    """The closest of choices (ratio >= 0.6), with any others as close as it."""
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    if not close:
        return []
    best = difflib.SequenceMatcher(None, word, close[0]).ratio()
    return [c for c in close if difflib.SequenceMatcher(None, word, c).ratio() > best - 0.02]


def known_keys() -> list[str]:
    """Every dotted key of the composed config, the hydra node's included (Hydra's compose
    API, in the process that just failed to compose or check one); the schema's keys if
    Hydra is not set up here."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from .config import schema_keys

    try:
        if GlobalHydra.instance().is_initialized():  # in a sweep's callback
            config = compose(config_name="config", return_hydra_config=True)
        else:  # hydra.main has given up composing
            with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
                config = compose(config_name="config", return_hydra_config=True)
    except Exception:  # noqa: BLE001 (a hint must never replace the error it explains)
        return schema_keys()
    return dotted_keys(OmegaConf.to_container(config, resolve=False))


def dotted_keys(tree: dict, prefix: str = "") -> list[str]:
    """{'model': {'depth': 1}} -> ['model', 'model.depth']."""
    keys = []
    for name, value in tree.items():
        key = f"{prefix}{name}"
        keys.append(key)
        if isinstance(value, dict):
            keys += dotted_keys(value, key + ".")
    return keys
