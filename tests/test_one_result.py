"""One result per (setting, seed): the report reads one run per config hash from a real store,
the sweep's own child where there is one, else the newest finished (tracking.answering_runs,
the resume lookup's rule), however often a config was recorded."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy import stats

from conftest import compose_config, recorded_sweep, run_cli, store_uri
from scratchnet import tracking
from scratchnet.report.runs import sweep_runs
from scratchnet.run import run

FAST = ["train.epochs=20", "data.noise=0.06"]
AXES = {"model.hidden_size": [8, 16], "seed": [1, 2, 3]}


def test_a_standalone_run_and_an_earlier_sweep_count_once_in_a_sweep(tmp_path, new_store):
    uri = new_store(tmp_path)
    standalone = run(compose_config(["model.hidden_size=16", "seed=1", *FAST,
                                     f"tracking.uri={uri}"]), overrides=[])
    first = recorded_sweep(uri, AXES, FAST, name="first")
    second = recorded_sweep(uri, AXES, FAST, name="second")
    # the second sweep as if it had reused the standalone run and all of the first sweep's
    reused = [standalone.run_id,
              *(child.info.run_id for child in first.children)]
    runs = sweep_runs(second.client, second.exp_id, second.parent_id, reused)
    hashes = Counter(r.data.tags[tracking.TAG_CONFIG_HASH] for r in runs)
    assert len(runs) == 6 and set(hashes.values()) == {1}
    assert {r.data.tags[tracking.TAG_PARENT] for r in runs} == {second.parent_id}
    # without children of its own (a sweep that reused everything): the newest finished
    only_reused = sweep_runs(second.client, second.exp_id, "no-such-parent", reused)
    assert len(only_reused) == 6
    assert {r.data.tags.get(tracking.TAG_PARENT) for r in only_reused} == {first.parent_id}


@pytest.mark.slow
def test_a_single_run_then_a_sweep_then_its_rerun_report_three_seeds_in_every_row(tmp_path):
    from mlflow import MlflowClient

    from scratchnet.report import analyse

    uri = store_uri(tmp_path)
    small = ["model.hidden_size=8,16", "train.lr=0.05", "data.noise=0.06", "seed=1,2,3",
             "train.epochs=200"]
    single = run_cli(["model.hidden_size=16", "train.lr=0.05", "data.noise=0.06", "seed=1",
                      "train.epochs=200", f"tracking.uri={uri}"], tmp_path)
    assert single.returncode == 0, single.stderr
    for _ in range(2):  # the sweep, then the same command again (every job answered)
        sweep = run_cli(["--multirun", *small, f"tracking.uri={uri}"], tmp_path)
        assert sweep.returncode == 0, sweep.stderr
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("scratchnet")
        (parent,) = client.search_runs([exp.experiment_id],
                                       f"tags.`{tracking.TAG_SWEEP_KEY}` != ''")
        report = analyse(client, exp.experiment_id, parent.info.run_id)
        assert report.summary.seeds.tolist() == [3, 3], report.summary
        assert len(report.runs) == 6
    # the parent carries the outcome; the sweep printed the best run and how to reproduce it
    parent = client.get_run(parent.info.run_id)
    (name, gmean), = [(k, v) for k, v in parent.data.metrics.items()
                      if k.startswith("best_true_mse_gmean")]
    assert name == "best_true_mse_gmean-noise-0.06"
    runs = report.runs
    by_hidden = {h: runs[runs["model.hidden_size"] == h] for h in (8, 16)}
    gmeans = {h: stats.gmean(rows.true_mse) for h, rows in by_hidden.items()}
    best = min(gmeans, key=gmeans.get)
    assert gmean == pytest.approx(gmeans[best], rel=1e-12)
    tags = parent.data.tags
    assert tags["scratchnet.best-noise-0.06.setting"] == f"hidden_size={best} lr=0.05"
    best_run = by_hidden[best].sort_values("true_mse").run_id.iloc[0]
    assert tags["scratchnet.best-noise-0.06.run_id"] == best_run
    command = f"python -m scratchnet.reproduce {best_run} --tracking-uri {uri}"
    assert f"Best run at noise=0.06: {best_run} " in sweep.stdout
    assert f"reproduce it: {command}" in sweep.stdout
    again = run_cli(command.split()[3:], tmp_path, module="scratchnet.reproduce")
    assert again.returncode == 0 and "bit-identical" in again.stdout, again.stderr


def test_the_report_lists_the_runs_it_reused(tmp_path, new_store):
    from scratchnet.report import analyse
    from scratchnet.report.html import report_page

    uri = new_store(tmp_path)
    first = recorded_sweep(uri, AXES, FAST, name="first")
    second = recorded_sweep(uri, {"model.hidden_size": [16], "seed": [1, 2, 3]}, FAST,
                            name="second")
    tracking.record_reused_runs(second.client, second.parent_id,
                                [c.info.run_id for c in first.children])
    report = analyse(second.client, second.exp_id, second.parent_id)
    expected = sorted(c.info.run_id for c in first.children
                      if c.data.params["model.hidden_size"] == "8")
    assert report.reused == expected
    assert (report.summary.seeds == 3).all() and len(report.summary) == 2
    assert "Reused runs: 3" in report.console_text()
    page = report_page(report, {}, {})
    assert "Reused runs: 3 recorded outside this sweep" in page
    assert all(run_id in page for run_id in expected)
