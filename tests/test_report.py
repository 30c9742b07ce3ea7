"""The report's fast paths: what they must leave unchanged (tick labels, a missing or busy
store, the garbage collector) and what they must do (query statistics, no Hydra import)."""

import contextlib
import gc
import io
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from scratchnet import tracking
from scratchnet.plots import plain_log_ticks
from scratchnet.report import gc_paused


def labelled_ticks(axis) -> list[tuple[float, str]]:
    """(position, label) of every labelled major and minor tick, as drawn."""
    ticks = axis.get_major_ticks() + axis.get_minor_ticks()
    return sorted((tick.get_loc(), tick.label1.get_text()) for tick in ticks
                  if tick.label1.get_visible() and tick.label1.get_text())


def drawn_log_axes(low: float, high: float, plain: bool):
    figure = Figure()
    ax = figure.subplots()
    ax.plot([1, 2], [low, high])
    ax.set_yscale("log")
    if plain:
        plain_log_ticks(ax.yaxis)
    figure.savefig(io.BytesIO(), format="png")
    return ax.yaxis


def test_plain_log_ticks_label_the_ticks_matplotlib_labels_with_their_values():
    # under a decade (minor ticks labelled), about one, several decades
    for low, high in ((0.021, 0.095), (0.02, 0.9), (1e-4, 2.0)):
        default = labelled_ticks(drawn_log_axes(low, high, plain=False))
        plain = labelled_ticks(drawn_log_axes(low, high, plain=True))
        assert [loc for loc, _ in plain] == [loc for loc, _ in default]
        assert plain and all(float(text) == pytest.approx(loc, rel=1e-9) for loc, text in plain)


def sqlite_store_with_metrics(folder) -> tuple[str, list[str]]:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = tracking.open_store(uri)
    exp_id = tracking.experiment_id(client, "scratchnet", uri)
    runs = [tracking.start_run(client, exp_id, f"run{k}", {}, {"seed": k}) for k in range(3)]
    for run_id in runs:
        tracking.log_metrics(client, run_id, np.geomspace(1, 0.01, 200), 10, {"true_mse": 0.1})
    return uri, runs


def test_query_statistics_let_sqlite_find_a_metric_history_by_run(tmp_path):
    uri, runs = sqlite_store_with_metrics(tmp_path)
    tracking.refresh_query_statistics(uri)
    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as db:
        analysed = {index for (index,) in db.execute(
            "SELECT idx FROM sqlite_stat1 WHERE tbl = 'metrics'")}
    assert "index_metrics_run_uuid_key_step" in analysed
    client = tracking.open_existing_store(uri)  # and MLflow still reads the store
    assert len(client.get_metric_history(runs[0], "loss")) == len(tracking.history_steps(200, 10))


def test_query_statistics_never_create_or_wait_for_a_store(tmp_path):
    missing = tmp_path / "missing.db"
    tracking.refresh_query_statistics(f"sqlite:///{missing}")
    assert not missing.exists()
    tracking.refresh_query_statistics("http://127.0.0.1:9")  # a server: nothing to do
    uri, _ = sqlite_store_with_metrics(tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as writer:
        writer.execute("BEGIN EXCLUSIVE")  # a sweep in the middle of a write
        tracking.refresh_query_statistics(uri)  # gives up after its short timeout
        writer.rollback()


def test_the_report_module_does_not_import_hydra():
    code = "import sys, scratchnet.report; print(sorted({'hydra', 'omegaconf'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def test_gc_paused_restores_the_collector_as_it_was():
    assert gc.isenabled()
    with pytest.raises(KeyError), gc_paused():
        assert not gc.isenabled()
        raise KeyError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # not switched on behind the caller's back
    finally:
        gc.enable()


def figure_that_fails(data) -> Figure:
    raise ValueError(f"cannot draw {data}")


def test_a_figure_that_fails_in_the_figure_process_fails_the_report(tmp_path):
    from scratchnet.report import FigureDrawer, figure_process

    with (figure_process() as pool, pytest.raises(ValueError, match="cannot draw this"),
          FigureDrawer(tmp_path, pool) as draw):
        draw("bad.png", figure_that_fails, "this")
    assert not (tmp_path / "bad.png").exists()
