"""A tracking store that cannot work, and report requests for things that are not there:
each ends the command with one line on stderr naming the key or file, a non-zero exit,
no traceback, nothing written to the store, and (for servers) no wait of more than a
few seconds and no training first. The entry points' main functions run in this process,
as `python -m` runs them (a subprocess only where the command must run as another user).
Bad config values are covered by test_config.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import (
    Exited,
    call_main,
    compose_config,
    free_port,
    one_error_line,
    run_cli,
    run_train,
    store_uri,
)
from scratchnet.report.__main__ import main as report_main
from scratchnet.run import run

# So many epochs that training first would blow the time bound: the check must come first.
HUGE = ["train.epochs=5000000", "model.hidden_size=64"]
SERVER_SECONDS = 15  # generous: the health check's own timeout is 3 s, Python start-up ~3 s


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under folder with its bytes (None for a directory)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def dirs(tmp_path):
    """(cwd, store folder): apart, so Hydra's outputs/ in cwd are not mistaken for the store."""
    cwd, folder = tmp_path / "cwd", tmp_path / "store"
    cwd.mkdir()
    folder.mkdir()
    return cwd, folder


@contextlib.contextmanager
def silent_server():
    """A port on 127.0.0.1 that accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            accepted.append(connection)  # held open, never read, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


@pytest.fixture
def cli(dirs, monkeypatch, capsys):
    """``cli(args)``: ``python -m scratchnet.train ARGS`` in the cwd folder, in this process,
    failed if it runs for more than 60 s (it trained or hung on the server)."""
    cwd, _ = dirs
    return lambda args: run_train(args, cwd, monkeypatch, capsys, seconds=60)


def timed(cli, args: list[str]) -> tuple[Exited, float]:
    start = time.monotonic()
    result = cli(args)
    return result, time.monotonic() - start


# --- tracking.uri: scheme and servers ---------------------------------------------------------

def test_unknown_scheme(dirs, cli):
    cwd, folder = dirs
    result = cli(["tracking.uri=foo://x", *HUGE])
    one_error_line(result, "tracking.uri", "foo://x")
    assert listing(folder) == {}
    assert not (cwd / "mlruns").exists() and not (cwd / "mlflow.db").exists()


def test_no_server_on_the_port_fails_fast_before_training(dirs, cli):
    cwd, _ = dirs
    uri = f"http://127.0.0.1:{free_port()}"
    result, seconds = timed(cli, [f"tracking.uri={uri}", *HUGE])
    one_error_line(result, "tracking.uri", uri)
    assert seconds < SERVER_SECONDS
    assert not (cwd / "mlruns").exists() and not (cwd / "mlflow.db").exists()


def test_port_that_never_answers_http_fails_fast_before_training(dirs, cli):
    cwd, _ = dirs
    with silent_server() as (port, accepted):
        uri = f"http://127.0.0.1:{port}"
        result, seconds = timed(cli, [f"tracking.uri={uri}", *HUGE])
        assert accepted, "the CLI never connected to the silent port"
    one_error_line(result, "tracking.uri", uri)
    assert seconds < SERVER_SECONDS
    assert not (cwd / "mlruns").exists() and not (cwd / "mlflow.db").exists()


def test_server_error_message_does_not_echo_credentials(cli):
    port = free_port()
    result = cli([f"tracking.uri=http://alice:s3cr3t@127.0.0.1:{port}", *HUGE])
    line = one_error_line(result, "tracking.uri", f"127.0.0.1:{port}")
    assert "s3cr3t" not in line and "alice" not in line
    assert "refused" in line.lower()  # the credentials did not break the address either


# --- tracking.uri: sqlite files ---------------------------------------------------------------

def test_sqlite_in_missing_directory(dirs, cli):
    _, folder = dirs
    missing = folder / "no" / "such" / "dir"
    result = cli([f"tracking.uri={store_uri(missing)}", *HUGE])
    one_error_line(result, "tracking.uri", str(missing))
    assert listing(folder) == {}


def test_file_that_is_not_sqlite_is_named_and_untouched(dirs, cli):
    _, folder = dirs
    notadb = folder / "notadb.db"
    notadb.write_text("these are my lab notes, not a database\n")
    before = listing(folder)
    result = cli([f"tracking.uri=sqlite:///{notadb}", *HUGE])
    one_error_line(result, "tracking.uri", str(notadb))
    assert listing(folder) == before


def test_directory_where_the_database_file_should_be(dirs, cli):
    _, folder = dirs
    (folder / "mlflow.db").mkdir()
    result = cli([f"tracking.uri={store_uri(folder)}", *HUGE])
    one_error_line(result, "tracking.uri", str(folder / "mlflow.db"))
    assert listing(folder) == {"mlflow.db": None}


# --- tracking.uri: read-only locations --------------------------------------------------------
#
# As root, chmod does not stop writes, so the fixture finds a location that is read-only for
# the process under test: a directory without write permission when not root; as root a
# read-only tmpfs mount; failing that, the CLI run as user 65534 via setpriv; else a skip.
# SCRATCHNET_TEST_READONLY=chmod|mount|setpriv forces one approach.

NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]


class ReadOnly:
    """A directory that starts writable (to put files in) and is sealed read-only."""

    def __init__(self, base: Path, how: str):
        self.how = how
        self.base = base
        self.dir = base / "ro"
        self.cwd = base / "cwd"
        self.dir.mkdir()
        self.cwd.mkdir()
        if how == "mount":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "rw,size=16m,mode=0755", "tmpfs",
                            str(self.dir)], check=True, capture_output=True)
        if how == "setpriv":  # user 65534 must reach the folder and write Hydra's outputs/
            os.chmod(base, 0o755)
            os.chmod(self.cwd, 0o777)

    def seal(self) -> None:
        if self.how == "mount":
            subprocess.run(["mount", "-o", "remount,ro", str(self.dir)], check=True,
                           capture_output=True)
        else:
            for path in self.dir.rglob("*"):
                os.chmod(path, 0o444)
            os.chmod(self.dir, 0o555)

    def writable(self) -> bool:
        """Whether the process under test could create a file in the directory."""
        probe = self.dir / ".probe"
        if self.how == "setpriv":
            return subprocess.run(["setpriv", *NOBODY, "touch", str(probe)],
                                  capture_output=True, check=False).returncode == 0
        try:
            probe.touch()
        except OSError:
            return False
        probe.unlink()
        return True

    def run_cli(self, args: list[str], monkeypatch, capsys) -> Exited | subprocess.CompletedProcess:
        """The train command in the cwd folder: in this process, or run by user 65534."""
        if self.how != "setpriv":
            return run_train(args, self.cwd, monkeypatch, capsys, seconds=60)
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "HOME": str(self.cwd),
               "MPLCONFIGDIR": str(self.cwd / ".mpl")}
        return subprocess.run(["setpriv", *NOBODY, sys.executable, "-m", "scratchnet.train",
                               *args], cwd=self.cwd, env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    def close(self) -> None:
        if self.how == "mount":
            if subprocess.run(["umount", str(self.dir)], capture_output=True,
                              check=False).returncode:
                subprocess.run(["umount", "-l", str(self.dir)], capture_output=True, check=False)
        else:
            os.chmod(self.dir, 0o755)


def _can_mount(base: Path) -> bool:
    probe = base / "probe"
    probe.mkdir()
    try:
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(probe)],
                              capture_output=True, check=False)
    except OSError:
        return False
    if made.returncode:
        return False
    subprocess.run(["umount", str(probe)], capture_output=True, check=False)
    return True


def _can_setpriv() -> bool:
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(["setpriv", *NOBODY, sys.executable, "-c", "import scratchnet"],
                           capture_output=True, check=False)
    return probe.returncode == 0


def _approach(base: Path) -> str | None:
    forced = os.environ.get("SCRATCHNET_TEST_READONLY")
    if forced:
        return forced
    if os.geteuid() != 0:
        return "chmod"
    if _can_mount(base):
        return "mount"
    if _can_setpriv():
        return "setpriv"
    return None


@pytest.fixture
def readonly():
    base = Path(tempfile.mkdtemp(prefix="scratchnet-ro-"))
    how = _approach(base)
    if how is None:
        shutil.rmtree(base)
        pytest.skip("running as root without mount or setpriv: no genuinely read-only place")
    location = ReadOnly(base, how)
    try:
        yield location
    finally:
        location.close()
        shutil.rmtree(base, ignore_errors=True)


def test_sqlite_in_read_only_directory(readonly, monkeypatch, capsys):
    readonly.seal()
    assert not readonly.writable(), f"{readonly.how} did not make {readonly.dir} read-only"
    result = readonly.run_cli([f"tracking.uri={store_uri(readonly.dir)}", *HUGE], monkeypatch,
                              capsys)
    one_error_line(result, "tracking.uri", str(readonly.dir))
    assert listing(readonly.dir) == {}


def test_existing_store_on_read_only_location_is_named_and_untouched(readonly, monkeypatch,
                                                                    capsys):
    database = readonly.dir / "mlflow.db"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("create table notes (line text)")
        connection.execute("insert into notes values ('day 1')")
        connection.commit()
    readonly.seal()
    assert not readonly.writable(), f"{readonly.how} did not make {readonly.dir} read-only"
    before = listing(readonly.dir)
    result = readonly.run_cli([f"tracking.uri=sqlite:///{database}", *HUGE], monkeypatch, capsys)
    one_error_line(result, "tracking.uri", str(database))
    assert listing(readonly.dir) == before


# --- scratchnet.report ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory, new_store):
    """A real store holding experiment 'scratchnet' with one (non-sweep) run."""
    folder = tmp_path_factory.mktemp("report-store")
    uri = new_store(folder)
    outcome = run(compose_config([f"tracking.uri={uri}", "train.epochs=5"]))
    return folder, uri, outcome.run_id


@pytest.fixture
def report(tmp_path, monkeypatch, capsys):
    """``report(args)``: ``python -m scratchnet.report ARGS --out reports`` in this process,
    in tmp_path."""
    def command(args: list[str]) -> Exited:
        monkeypatch.chdir(tmp_path)
        return call_main(report_main, [*args, "--out", str(tmp_path / "reports")],
                         capsys=capsys, seconds=60)

    return command


def test_report_unknown_experiment(recorded_store, report, tmp_path):
    folder, uri, _ = recorded_store
    before = listing(folder)
    result = report(["--tracking-uri", uri, "--experiment", "no-such-experiment"])
    one_error_line(result, "--experiment", "no-such-experiment")
    assert listing(folder) == before
    assert not (tmp_path / "reports").exists()


def test_report_unknown_parent_run(recorded_store, report, tmp_path):
    folder, uri, _ = recorded_store
    before = listing(folder)
    missing = uuid.uuid4().hex
    result = report(["--tracking-uri", uri, "--parent-run-id", missing])
    one_error_line(result, "--parent-run-id", missing)
    assert listing(folder) == before
    assert not (tmp_path / "reports").exists()


def test_report_experiment_without_sweeps(recorded_store, report, tmp_path):
    folder, uri, _ = recorded_store
    before = listing(folder)
    result = report(["--tracking-uri", uri])
    one_error_line(result, "no sweep")
    assert listing(folder) == before


def test_report_missing_store_is_not_created(report, tmp_path):
    database = tmp_path / "nothing-here.db"
    result = report(["--tracking-uri", f"sqlite:///{database}"])
    one_error_line(result, str(database))
    assert not database.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- the same, from a real process ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("module,args,code,names", [
    ("scratchnet.train", ["model.hidden_size=0"], 1, ["model.hidden_size: must be >= 1, got 0"]),
    ("scratchnet.train", ["tracking.uri=foo://x", *HUGE], 1, ["tracking.uri", "foo://x"]),
    ("scratchnet.train", ["train.lr=5", "train.epochs=200"], 1, ["training diverged at epoch"]),
    ("scratchnet.report", ["--tracking-uri", "sqlite:///none.db"], 1, ["none.db"]),
    ("scratchnet.reproduce", ["0123", "--tracking-uri", "sqlite:///none.db"], 2, ["none.db"]),
], ids=["bad-value", "bad-uri", "diverged", "report", "reproduce"])
def test_a_real_process_ends_with_the_one_line_and_its_exit_status(tmp_path, module, args,
                                                                    code, names):
    """What the tests above see in this process (sys.exit's message; exit status 2 with
    the message printed) is what a user's shell sees: one line on stderr, the status."""
    result = run_cli(args, tmp_path, module=module, timeout=60)
    one_error_line(result, *names)
    assert result.returncode == code
