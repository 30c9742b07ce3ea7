"""One result per (setting, seed): the report reads one run per config hash from a real store,
the sweep's own child where there is one, else the newest finished (tracking.answering_runs,
the resume lookup's rule), however often a config was recorded."""

from __future__ import annotations

from collections import Counter

from conftest import compose_config, recorded_sweep
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
