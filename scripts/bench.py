"""Benchmark scratchnet against its yardsticks, every figure measured in one invocation.

    python scripts/bench.py                     # everything (about 6 min on 2 cores)
    python scripts/bench.py --skip-sweeps       # trainer rows only (under a minute)
    python scripts/bench.py --quick             # tiny versions of everything: a CI smoke test
    python scripts/bench.py --repeats 7 --sweep-repeats 5 --scaling-repeats 3

Measures, each figure the median of several repeats, side by side:

1. Trainer: the training loop of the article's run (60 points, 16 tanh units, full-batch
   SGD, lr 0.05, 3000 epochs), `train_network(config).train_seconds`, against the same
   network in PyTorch eager (float64, one thread, same data and initial weights) when torch
   is installed, trained by the article's own section-5 loop (SGD for its sketch's Adam),
   and for information with nn.MSELoss as its loss, the three taking turns within each
   repeat; and scratchnet at 16, 128 and 1024 hidden units.
2. Sweep: the default 54-run sweep, 2 workers, fresh store, end to end, against the
   hand-written scripts/baseline_sweep.py on the same grid.
3. Scaling: wall time per run at 54 and 540 runs, the report CLI over the 540-run sweep,
   and the peak resident memory of a single sweep worker process.

Prints a versions line, one markdown table (| what | scratchnet | reference | ratio | target |
met |) and the command line; progress goes to stderr. A sweep or report that exits non-zero
stops the bench with its stderr. Speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from scratchnet.config import to_config
from scratchnet.nn.training import initial_state, train_network

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
BASELINE = ROOT / "scripts" / "baseline_sweep.py"

SIZES = (16, 128, 1024)  # hidden sizes of the trainer size rows
SIZE_LR = 0.005  # the largest of 0.05/0.02/0.01/0.005 at which hidden 1024 runs all 3000 epochs
WORKERS = 2  # sweep worker processes (hydra.launcher.n_jobs)
RSS_INTERVAL = 0.1  # seconds between memory samples of a running sweep

# The sweep grids, as Hydra overrides: scratchnet's keys, then the baseline's names for them.
FULL_GRID = {"hidden": "8,16,32", "lr": "0.01,0.05,0.1", "noise": "0.03,0.06", "seed": "1,2,3",
             "epochs": "3000"}
QUICK_GRID = {"hidden": "8,16", "lr": "0.05", "noise": "0.06", "seed": "1,2", "epochs": "200"}
SCALED_SEEDS = "range(1,31)"  # the 540-run grid: the default grid with 30 seeds
SCRATCHNET_KEYS = {"hidden": "model.hidden_size", "lr": "train.lr", "noise": "data.noise",
                   "seed": "seed", "epochs": "train.epochs"}

# Floors: simplicity first, within these
TRAINER_SPEEDUP = 10.0  # PyTorch eager time / scratchnet time, at least
SWEEP_SPEEDUP = 2.0  # baseline sweep wall time / scratchnet's, at least
SCALING_RATIO = 1.1  # per-run time at 540 runs / per-run time at 54 runs, at most
WORKER_MB = 300.0  # peak resident memory of one worker process, under
MSE_AGREEMENT = 1e-9  # |scratchnet final MSE - torch final MSE|: same network, same data


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Trainer


def compose_config(overrides: list[str]):
    """A checked Config composed from conf/ as the app does (as tests/conftest.py does)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_config(compose(config_name="config", overrides=overrides))


def time_scratchnet(config, repeats: int):
    """(median seconds of the training loop alone, the last TrainResult)."""
    results = [train_network(config) for _ in range(repeats)]
    return statistics.median(r.train_seconds for r in results), results[-1]


def time_torch_once(config, torch, article_loss: bool = True) -> tuple[float, float]:
    """One PyTorch eager run of the article's section 5: (seconds of the epoch loop, final MSE).

    The loop is the article's own (its loss written out, ``((yhat - Y)**2).mean()``), with
    the article's run's SGD in place of the Adam its sketch shows. ``article_loss=False``:
    ``nn.MSELoss`` instead, one fused autograd node for the loss's three. The final MSE is
    the last epoch's loss before its update, as scratchnet records it."""
    from torch import nn

    curve, (w1, b1, w2, b2) = initial_state(config)  # the data and weights scratchnet uses
    t, y_obs = curve.t, curve.y_obs
    x, y = torch.tensor(t[:, None]), torch.tensor(y_obs[:, None])  # float64, (60, 1)
    model = nn.Sequential(nn.Linear(1, config.model.hidden_size), nn.Tanh(),
                          nn.Linear(config.model.hidden_size, 1)).double()
    with torch.no_grad():  # Linear keeps weights as (fan_out, fan_in): scratchnet's transposed
        model[0].weight.copy_(torch.tensor(w1.T))
        model[0].bias.copy_(torch.tensor(b1))
        model[2].weight.copy_(torch.tensor(w2.T))
        model[2].bias.copy_(torch.tensor(b2))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.train.lr)
    loss_fn = nn.MSELoss()
    start = time.perf_counter()
    for _ in range(config.train.epochs):
        yhat = model(x)
        loss = ((yhat - y) ** 2).mean() if article_loss else loss_fn(yhat, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    return seconds, loss.item()


def import_torch():
    """torch with one thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


@dataclass
class ArticleRunTimes:
    ours: float  # median seconds of scratchnet's training loop
    result: object  # scratchnet's last TrainResult
    torch: float | None = None  # PyTorch, the article's loop
    torch_mse: float | None = None
    torch_fused: float | None = None  # PyTorch with nn.MSELoss


def time_article_run(config, repeats: int, torch) -> ArticleRunTimes:
    """Medians of scratchnet and (when torch is installed) of the two PyTorch loops, taking
    turns within each repeat after one untimed run of each, so that all three see the same
    machine: its speed drifts by tens of percent within minutes here."""
    def ours() -> tuple[float, object]:
        result = train_network(config)
        return result.train_seconds, result

    # each contender returns (seconds, what else the table needs)
    contenders = {"ours": ours}
    if torch is not None:
        contenders["torch"] = lambda: time_torch_once(config, torch)
        contenders["torch_fused"] = lambda: time_torch_once(config, torch, article_loss=False)
    last = {name: run() for name, run in contenders.items()}  # warm-up: first calls, caches
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            last[name] = run()
            seconds[name].append(last[name][0])
    times = ArticleRunTimes(statistics.median(seconds["ours"]), last["ours"][1])
    if torch is not None:
        times.torch, times.torch_mse = statistics.median(seconds["torch"]), last["torch"][1]
        times.torch_fused = statistics.median(seconds["torch_fused"])
    return times


def trainer_rows(args) -> list[list[str]]:
    epochs = 300 if args.quick else 3000
    repeats = 1 if args.quick else args.repeats
    config = compose_config([f"train.epochs={epochs}"])
    torch = import_torch()
    log(f"trainer: article's run, scratchnet{'' if torch is None else ' and PyTorch in turn'}, "
        f"{repeats} repeat(s)")
    times = time_article_run(config, repeats, torch)
    ours, result = times.ours, times.result
    what = (f"trainer: article's run ({config.data.n_points} points, {config.model.hidden_size} "
            f"tanh units, SGD lr {config.train.lr:g}, {epochs} epochs), training loop alone")
    mse_what = f"sanity: final MSE after {epochs} epochs, same data and initial weights"
    if torch is None:
        rows = [[what, seconds(ours), "torch not installed", "—",
                 f"≥ {TRAINER_SPEEDUP:g}x faster", "—"],
                [mse_what, f"{result.final_mse:.12f}", "torch not installed", "—", "—", "—"]]
    else:
        theirs, torch_mse, version = times.torch, times.torch_mse, torch.__version__
        # The two agree to about 1e-12, not bit for bit: numpy and torch sum in different orders.
        diff = abs(result.final_mse - torch_mse)
        rows = [[what, seconds(ours),
                 f"PyTorch {version} eager, float64, 1 thread: {seconds(theirs)}",
                 ratio(theirs / ours), f"≥ {TRAINER_SPEEDUP:g}x faster",
                 met(theirs / ours >= TRAINER_SPEEDUP)],
                [mse_what, f"{result.final_mse:.12f}", f"PyTorch: {torch_mse:.12f}",
                 f"diff {diff:.1e}", f"agree to {MSE_AGREEMENT:g}", met(diff <= MSE_AGREEMENT)]]
        fused = times.torch_fused
        rows.append(["for information: the same, PyTorch's loss as nn.MSELoss", seconds(ours),
                     f"PyTorch eager with nn.MSELoss: {seconds(fused)}", ratio(fused / ours),
                     "—", "—"])
    return rows + [size_row(hidden, epochs, repeats) for hidden in SIZES]


def size_row(hidden: int, epochs: int, repeats: int) -> list[str]:
    log(f"trainer: {hidden} hidden units, {repeats} repeat(s)")
    config = compose_config([f"model.hidden_size={hidden}", f"train.lr={SIZE_LR}",
                             f"train.epochs={epochs}"])
    median, result = time_scratchnet(config, repeats)
    epochs_run = len(result.fit.losses)
    figure = f"{seconds(median)} = {median / epochs_run * 1e6:.1f} µs/epoch"  # µs per epoch run
    if result.diverged:
        figure += f" (DIVERGED at epoch {result.fit.diverged_epoch})"
    return [f"trainer: {hidden} hidden units, lr {SIZE_LR:g}, {epochs} epochs",
            figure, "—", "—", "—", "—"]


# ---------------------------------------------------------------------------------------------
# Sweeps


@dataclass
class SweepRun:
    seconds: float  # wall time, process start to exit
    peak_rss: int  # bytes: the largest RSS of any single descendant of the launching process


def descendants_peak_rss(pid: int) -> int:
    """The largest RSS (bytes) of any one descendant process of pid right now (0 if none)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    peak = 0
    for child in children:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.NoSuchProcess:  # ended between listing and sampling
            pass
    return peak


def run_measured(command: list[str], cwd: Path, what: str) -> SweepRun:
    """Run a command in cwd to its end: wall time and the peak RSS of its descendants,
    sampled every RSS_INTERVAL s. A non-zero exit stops the bench with the command's stderr."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out_path, err_path = cwd / "bench-stdout.txt", cwd / "bench-stderr.txt"
    peak = 0
    with open(out_path, "w") as out, open(err_path, "w") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        while True:
            peak = max(peak, descendants_peak_rss(process.pid))
            try:
                process.wait(timeout=RSS_INTERVAL)
                break
            except subprocess.TimeoutExpired:
                pass
        elapsed = time.perf_counter() - start
    if process.returncode != 0:
        tail = "\n".join(err_path.read_text().splitlines()[-30:])
        sys.exit(f"bench: FAILED: {what} exited {process.returncode}\n"
                 f"command: {shlex.join(command)}\n--- last lines of its stderr ---\n{tail}")
    return SweepRun(elapsed, peak)


def check_jobs(cwd: Path, expected: int, what: str) -> None:
    """Every job of the grid ran: Hydra made one numbered folder per job under multirun/."""
    jobs = [p for p in (cwd / "multirun").glob("*/*/*") if p.is_dir() and p.name.isdigit()]
    if len(jobs) != expected:
        sys.exit(f"bench: FAILED: {what} ran {len(jobs)} jobs, expected {expected}")


def axis_size(values: str) -> int:
    """Number of values of one sweep axis: "8,16,32" or "range(1,31)"."""
    if values.startswith("range("):
        return len(range(*map(int, values[len("range("):-1].split(","))))
    return len(values.split(","))


def grid_size(grid: dict[str, str]) -> int:
    return int(np.prod([axis_size(v) for k, v in grid.items() if k != "epochs"]))


def scratchnet_sweep(grid: dict[str, str], report_repeats: int = 0) -> tuple[SweepRun, list[float]]:
    """One scratchnet sweep on a fresh store, cwd a fresh temp dir; then report_repeats timings
    of the report CLI over it, before the temp dir goes."""
    jobs, what = grid_size(grid), f"scratchnet sweep of {grid_size(grid)} runs"
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        command = [sys.executable, "-m", "scratchnet.train", "--multirun",
                   *(f"{SCRATCHNET_KEYS[k]}={v}" for k, v in grid.items()),
                   f"hydra.launcher.n_jobs={WORKERS}", f"tracking.uri={uri}",
                   f"hydra.callbacks.sweep.report_dir={Path(tmp) / 'reports'}"]
        log(f"{what} ...")
        run = run_measured(command, Path(tmp), what)
        check_jobs(Path(tmp), jobs, what)
        log(f"  {run.seconds:.1f} s")
        reports = [time_report(uri, jobs) for _ in range(report_repeats)]
    return run, reports


def baseline_sweep(grid: dict[str, str]) -> SweepRun:
    """One run of scripts/baseline_sweep.py on the same grid, fresh store, fresh temp dir."""
    jobs, what = grid_size(grid), f"baseline sweep of {grid_size(grid)} runs"
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        command = [sys.executable, str(BASELINE), "--multirun",
                   *(f"{k}={v}" for k, v in grid.items()),
                   f"uri=sqlite:///{Path(tmp) / 'baseline.db'}", "hydra/launcher=joblib",
                   f"hydra.launcher.n_jobs={WORKERS}"]
        log(f"{what} ...")
        run = run_measured(command, Path(tmp), what)
        check_jobs(Path(tmp), jobs, what)
        log(f"  {run.seconds:.1f} s")
    return run


def time_report(uri: str, jobs: int) -> float:
    """Wall seconds of `python -m scratchnet.report` over the latest sweep in uri, start-up
    included, cwd and --out a fresh temp dir."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        command = [sys.executable, "-m", "scratchnet.report", "--tracking-uri", uri,
                   "--out", str(Path(tmp) / "reports")]
        log(f"report CLI over {jobs} runs ...")
        report_seconds = run_measured(command, Path(tmp), "report CLI").seconds
        log(f"  {report_seconds:.2f} s")
    return report_seconds


def sweep_rows(args) -> list[list[str]]:
    """The default sweep against the baseline, alternating so that both see the same machine
    load; then the 540-run sweep, the report CLI over it, and worker memory. --quick: a 4-run
    sweep, the report over it, no 540-run sweep."""
    grid = QUICK_GRID if args.quick else FULL_GRID
    repeats = 1 if args.quick else args.sweep_repeats
    ours, theirs, reports = [], [], []
    for i in range(repeats):
        log(f"sweep pair {i + 1}/{repeats}")
        run, reports_here = scratchnet_sweep(grid, report_repeats=1 if args.quick else 0)
        ours.append(run)
        reports += reports_here
        theirs.append(baseline_sweep(grid))
    jobs = grid_size(grid)
    our_wall = statistics.median(r.seconds for r in ours)
    their_wall = statistics.median(r.seconds for r in theirs)
    speedup = their_wall / our_wall
    rows = [[f"sweep: {jobs} runs, {WORKERS} workers, fresh store, end to end (wall)",
             seconds(our_wall, 1), f"scripts/baseline_sweep.py: {seconds(their_wall, 1)}",
             ratio(speedup), f"≥ {SWEEP_SPEEDUP:g}x faster", met(speedup >= SWEEP_SPEEDUP)]]
    per_run = our_wall / jobs  # seconds per run
    peak, baseline_peak = max(r.peak_rss for r in ours), max(r.peak_rss for r in theirs)
    if args.quick:
        return rows + [[f"scaling: wall time per run, {jobs} vs 540 runs", "skipped (--quick)",
                        f"{jobs} runs: {seconds(per_run, 3)}/run", "—",
                        f"≤ {SCALING_RATIO:g}x", "—"],
                       report_row(jobs, statistics.median(reports)),
                       memory_row(f"{jobs}-run", peak, baseline_peak)]
    return rows + scaling_rows(args, grid, per_run, peak, baseline_peak)


def scaling_rows(args, grid: dict[str, str], per_run_small: float, peak_small: int,
                 baseline_peak: int) -> list[list[str]]:
    """The same grid with 30 seeds (540 runs): per-run time against the 54-run figure, the
    report CLI over it (timed on the first 540-run sweep), peak worker memory over all sweeps."""
    big = {**grid, "seed": SCALED_SEEDS}
    jobs_small, jobs_big = grid_size(grid), grid_size(big)
    runs, reports = [], []
    for i in range(args.scaling_repeats):
        log(f"scaling sweep {i + 1}/{args.scaling_repeats}")
        report_repeats = args.sweep_repeats if i == 0 else 0  # the report over the first one
        run, reports_here = scratchnet_sweep(big, report_repeats)
        runs.append(run)
        reports += reports_here
    per_run_big = statistics.median(r.seconds for r in runs) / jobs_big  # seconds per run
    growth = per_run_big / per_run_small
    peak = max([peak_small] + [r.peak_rss for r in runs])
    return [[f"scaling: wall time per run at {jobs_big} runs vs {jobs_small} (sweep wall / runs)",
             f"{jobs_big} runs: {seconds(per_run_big, 3)}/run",
             f"{jobs_small} runs: {seconds(per_run_small, 3)}/run", ratio(growth),
             f"≤ {SCALING_RATIO:g}x", met(growth <= SCALING_RATIO)],
            report_row(jobs_big, statistics.median(reports)),
            memory_row(f"{jobs_small}- and {jobs_big}-run", peak, baseline_peak)]


def report_row(jobs: int, report_seconds: float) -> list[str]:
    what = (f"report CLI (`python -m scratchnet.report`) over the {jobs}-run sweep, "
            "wall incl. start-up")
    return [what, seconds(report_seconds, 2), "—", "—", "(for information)", "—"]


def memory_row(sweeps: str, peak: int, baseline_peak: int) -> list[str]:
    what = (f"peak RSS of one worker: max RSS of any single process below the launching one "
            f"(joblib workers, their job processes), sampled every {RSS_INTERVAL:g} s during the {sweeps} "
            "sweeps")
    return [what, megabytes(peak), f"baseline's: {megabytes(baseline_peak)}", "—",
            f"< {WORKER_MB:g} MB", met(peak / 2**20 < WORKER_MB)]


# ---------------------------------------------------------------------------------------------
# Output


def seconds(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f} s"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def megabytes(value: int) -> str:
    return f"{value / 2**20:.0f} MB"  # MiB


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def versions_line() -> str:
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return (f"python {platform.python_version()}, numpy {np.__version__}, torch {torch_version}; "
            f"{os.cpu_count()} CPUs, {cpu}, {platform.machine()}")


def markdown_table(rows: list[list[str]]) -> str:
    header = ["what", "scratchnet", "reference", "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="trainer repeats (default 5)")
    parser.add_argument("--sweep-repeats", type=int, default=3,
                        help="54-run sweep pairs and report CLI runs (default 3)")
    parser.add_argument("--scaling-repeats", type=int, default=1,
                        help="540-run sweeps (default 1: one is ~10 min on 2 cores)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny versions (1 repeat, 300 epochs, a 4-run 200-epoch sweep, "
                             "no 540-run sweep): a smoke test")
    parser.add_argument("--skip-sweeps", action="store_true", help="trainer rows only")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    rows = trainer_rows(args)
    if not args.skip_sweeps:
        rows += sweep_rows(args)
    log(f"done in {time.perf_counter() - start:.0f} s")
    print(versions_line())
    print()
    print(markdown_table(rows))
    print()
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))


if __name__ == "__main__":
    main()
