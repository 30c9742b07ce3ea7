"""Smoke test of scripts/bench.py --quick: it runs to the end and prints its table with a
number in every measured row. Speed is never asserted here, only that it was measured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Row label prefix -> the pattern its scratchnet cell must match.
SECONDS = r"\d+\.\d+ s"
EXPECTED_ROWS = {
    "trainer: article's run": SECONDS,
    "sanity: final MSE": r"0\.\d+",
    "trainer: 16 hidden units": SECONDS + r" = \d+\.\d µs/epoch",
    "trainer: 128 hidden units": SECONDS + r" = \d+\.\d µs/epoch",
    "trainer: 1024 hidden units": SECONDS + r" = \d+\.\d µs/epoch",
    "sweep:": SECONDS,
    "per-job overhead": r"-?\d+\.\d+ s/job, -?\d+\.\d+x training",  # --quick: noise
    "search: 4 Optuna trials": SECONDS,
    "search: best true_mse": r"0\.\d+",
    "scaling:": r"10 runs: \d+\.\d+ s/run",
    "report CLI": SECONDS,
    "peak RSS of one worker": r"[1-9]\d* MB",
}
TORCH_ONLY_ROW = "for information: the same, PyTorch's loss as nn.MSELoss"


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The markdown table's body rows, by label: [scratchnet, reference, ratio, target, met]."""
    rows = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and cells[0] != "what":
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow  # about two minutes on a busy 2-core machine: six sweeps and the report CLI
def test_quick_bench_prints_the_table(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("python ") and "numpy" in lines[0] and "CPUs" in lines[0]
    assert lines[-1].startswith("command: ") and "--quick" in lines[-1]

    rows = table_rows(done.stdout)
    article = next(label for label in rows if label.startswith("trainer: article's"))
    if rows[article][1] != "torch not installed":  # then also the nn.MSELoss row
        fused = rows.pop(TORCH_ONLY_ROW)[1]
        assert re.fullmatch(r"PyTorch eager with nn\.MSELoss: \d+\.\d+ s", fused)
    assert len(rows) == len(EXPECTED_ROWS), list(rows)
    for prefix, pattern in EXPECTED_ROWS.items():
        matching = [label for label in rows if label.startswith(prefix)]
        assert len(matching) == 1, (prefix, list(rows))
        cells = rows[matching[0]]
        assert len(cells) == 5, cells
        assert re.fullmatch(pattern, cells[0]), (prefix, cells[0])
        assert cells[4] in {"met", "NOT met", "—"}, cells

    torch_cell = rows[next(label for label in rows if label.startswith("trainer: article's"))][1]
    assert torch_cell == "torch not installed" or re.search(r"PyTorch .*: \d+\.\d+ s$", torch_cell)
    sweep = rows[next(label for label in rows if label.startswith("sweep:"))]
    assert re.fullmatch(r"scripts/baseline_sweep\.py: \d+\.\d+ s", sweep[1])
    assert re.fullmatch(r"\d+\.\d+x", sweep[2])
