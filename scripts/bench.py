"""Benchmark scratchnet against its yardsticks, every figure measured in one invocation.

    python scripts/bench.py                     # everything (about 25 min on 2 cores)
    python scripts/bench.py --skip-sweeps       # trainer rows only (under a minute)
    python scripts/bench.py --quick             # tiny versions of everything: a CI smoke test
    python scripts/bench.py --repeats 7 --sweep-repeats 5 --scaling-repeats 2

Measures, each figure the median of several repeats, side by side:

1. Trainer: the training loop of the article's run (60 points, 16 tanh units, full-batch
   SGD, lr 0.05, 3000 epochs), `train_network(config).train_seconds`, against the same
   network in PyTorch eager (float64, one thread, same data and initial weights) when torch
   is installed, trained by the article's own section-5 loop (SGD for its sketch's Adam),
   and for information with nn.MSELoss as its loss, the three taking turns within each
   repeat; and scratchnet at 16, 128 and 1024 hidden units.
2. Sweep: the default 54-run sweep, 2 workers, fresh store, end to end, against the
   hand-written scripts/baseline_sweep.py on the same grid, taking turns; and the per-job
   overhead: (wall of the 54-run sweep - wall of a 2-run sweep) x workers / the 54 runs'
   summed train_seconds, i.e. a worker's time per job beyond training, in units of training.
3. Search: 24 Optuna trials with the median pruner against pruner=none, taking turns: wall
   time, and the pruned search's best true_mse against the unpruned one's seed-to-seed spread
   (the sd over seeds 1-3 of the unpruned best's setting, trained here).
4. Scaling: wall time per run at 5,400 runs (5 hidden sizes x 6 rates x 3 noise levels x 60
   seeds) against the 54-run figure, the report CLI over the 5,400-run sweep, and the peak
   resident memory of a single sweep worker process.

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
SMALL_GRID = {"hidden": "16", "lr": "0.05", "noise": "0.06", "seed": "1,2", "epochs": "3000"}
SCALED_GRID = {"hidden": "4,8,16,32,64", "lr": "0.005,0.01,0.02,0.05,0.1,0.2",
               "noise": "0.03,0.06,0.1", "seed": "range(1,61)", "epochs": "3000"}  # 5,400 runs
QUICK_SCALED_GRID = {**QUICK_GRID, "seed": "range(1,6)"}  # 10 runs
SEARCH_TRIALS = 24
SCRATCHNET_KEYS = {"hidden": "model.hidden_size", "lr": "train.lr", "noise": "data.noise",
                   "seed": "seed", "epochs": "train.epochs"}

# Floors: simplicity first, within these
TRAINER_SPEEDUP = 10.0  # PyTorch eager time / scratchnet time, at least
SWEEP_SPEEDUP = 3.0  # baseline sweep wall time / scratchnet's, at least
OVERHEAD = 2.5  # a worker's time per job beyond training / its training, at most
SCALING_RATIO = 1.0  # per-run time at 5,400 runs / per-run time at 54 runs, at most
REPORT_SECONDS = 10.0  # the report CLI over the 5,400-run sweep, at most
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
    runs: list | None = None  # scratchnet's sweeps: the child runs recorded (MLflow Run objects)

    @property
    def train_seconds(self) -> float:
        return sum(r.data.metrics.get("train_seconds", 0.0) for r in self.runs)


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


def child_runs(uri: str) -> list:
    """Every child run of the store's sweeps, read back through MLflow's client."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    runs, token = [], None
    while True:
        page = client.search_runs([experiment.experiment_id],
                                  "tags.`mlflow.parentRunId` != ''", max_results=1000,
                                  page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def axis_size(values: str) -> int:
    """Number of values of one sweep axis: "8,16,32" or "range(1,31)"."""
    if values.startswith("range("):
        return len(range(*map(int, values[len("range("):-1].split(","))))
    return len(values.split(","))


def grid_size(grid: dict[str, str]) -> int:
    return int(np.prod([axis_size(v) for k, v in grid.items() if k != "epochs"]))


def scratchnet_sweep(grid: dict[str, str], report_repeats: int = 0, extra: tuple[str, ...] = (),
                     jobs: int | None = None) -> tuple[SweepRun, list[float]]:
    """One scratchnet sweep (grid axes, or a search's with ``extra``) on a fresh store, cwd a
    fresh temp dir, its child runs read back (each job recorded exactly once); then
    report_repeats timings of the report CLI over it, before the temp dir goes."""
    jobs = grid_size(grid) if jobs is None else jobs
    what = f"scratchnet {' '.join(extra) or 'sweep'} of {jobs} runs"
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        command = [sys.executable, "-m", "scratchnet.train", "--multirun",
                   *(f"{SCRATCHNET_KEYS[k]}={v}" for k, v in grid.items()), *extra,
                   f"hydra.launcher.n_jobs={WORKERS}", f"tracking.uri={uri}",
                   f"hydra.callbacks.sweep.report_dir={Path(tmp) / 'reports'}"]
        log(f"{what} ...")
        run = run_measured(command, Path(tmp), what)
        run.runs = child_runs(uri)
        if len(run.runs) != jobs:
            sys.exit(f"bench: FAILED: {what} recorded {len(run.runs)} runs, expected {jobs}")
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
        folders = [p for p in (Path(tmp) / "multirun").glob("*/*/*")
                   if p.is_dir() and p.name.isdigit()]
        if len(folders) != jobs:
            sys.exit(f"bench: FAILED: {what} ran {len(folders)} jobs, expected {jobs}")
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


def sweep_rows(args) -> tuple[list[list[str]], float, int, int]:
    """The default sweep against the baseline and a 2-run sweep, taking turns so that all see
    the same machine load: the speed-up and the per-job overhead; (rows, wall per run of the
    default sweep, peak worker RSS of ours and of the baseline's)."""
    grid = QUICK_GRID if args.quick else FULL_GRID
    small = {**grid, "hidden": "16", "lr": "0.05", "noise": "0.06", "seed": "1,2"}
    repeats = 1 if args.quick else args.sweep_repeats
    ours, theirs, smalls = [], [], []
    for i in range(repeats):
        log(f"sweep round {i + 1}/{repeats}")
        ours.append(scratchnet_sweep(grid)[0])
        theirs.append(baseline_sweep(grid))
        smalls.append(scratchnet_sweep(small)[0])
    jobs = grid_size(grid)
    our_wall = statistics.median(r.seconds for r in ours)
    their_wall = statistics.median(r.seconds for r in theirs)
    small_wall = statistics.median(r.seconds for r in smalls)
    trained = statistics.median(r.train_seconds for r in ours)  # the 54 runs' summed training
    speedup = their_wall / our_wall
    per_job = (our_wall - small_wall) * WORKERS / (jobs - grid_size(small))  # a worker's seconds
    overhead = (per_job - trained / jobs) / (trained / jobs)
    rows = [[f"sweep: {jobs} runs, {WORKERS} workers, fresh store, end to end (wall)",
             seconds(our_wall, 1), f"scripts/baseline_sweep.py: {seconds(their_wall, 1)}",
             ratio(speedup), f"≥ {SWEEP_SPEEDUP:g}x faster", met(speedup >= SWEEP_SPEEDUP)],
            [(f"per-job overhead: ({jobs}-run wall {seconds(our_wall, 1)} - 2-run wall "
             f"{seconds(small_wall, 1)}) x {WORKERS} workers / {jobs - 2} jobs = a worker's "
             f"time per job, beyond its training, in units of its training"),
             f"{per_job:.3f} s/job, {overhead:.2f}x training",
             f"training {trained / jobs:.4f} s/job (summed train_seconds {trained:.2f} s)",
             ratio(overhead), f"≤ {OVERHEAD:g}x", met(overhead <= OVERHEAD)]]
    peak, baseline_peak = max(r.peak_rss for r in ours), max(r.peak_rss for r in theirs)
    return rows, our_wall / jobs, peak, baseline_peak


def best_unpruned(run: SweepRun):
    """A search's best child run: the lowest true_mse among runs not pruned."""
    finished = [r for r in run.runs if "scratchnet.pruned" not in r.data.tags
                and np.isfinite(r.data.metrics.get("true_mse", np.inf))]
    return min(finished, key=lambda r: r.data.metrics["true_mse"])


def seed_spread(best, seeds=(1, 2, 3), epochs: int = 3000) -> float:
    """The sd (ddof 1) of true_mse over these seeds at the best run's setting, trained here."""
    keys = ("model.hidden_size", "train.lr", "data.noise")
    setting = [f"{key}={best.data.params[key]}" for key in keys]
    values = [train_network(compose_config([*setting, f"seed={seed}",
                                            f"train.epochs={epochs}"])).true_mse
              for seed in seeds]
    return float(np.std(values, ddof=1))


def search_rows(args) -> list[list[str]]:
    """24 trials with the median pruner against pruner=none, taking turns."""
    trials = 4 if args.quick else SEARCH_TRIALS
    grid = {"epochs": "200"} if args.quick else {}
    repeats = 1 if args.quick else args.sweep_repeats
    runs: dict[str, list[SweepRun]] = {"median": [], "none": []}
    for i in range(repeats):
        log(f"search round {i + 1}/{repeats}")
        for pruner, done in runs.items():
            extra = ("search=optuna", f"hydra.sweeper.n_trials={trials}",
                     f"hydra.sweeper.pruner={pruner}")
            done.append(scratchnet_sweep(grid, extra=extra, jobs=trials)[0])
    wall = {pruner: statistics.median(r.seconds for r in done) for pruner, done in runs.items()}
    best = {pruner: best_unpruned(done[0]) for pruner, done in runs.items()}  # TPE is seeded
    value = {pruner: run.data.metrics["true_mse"] for pruner, run in best.items()}
    pruned = sum("scratchnet.pruned" in r.data.tags for r in runs["median"][0].runs)
    spread = seed_spread(best["none"], epochs=200 if args.quick else 3000)
    gap = value["median"] - value["none"]
    return [[(f"search: {trials} Optuna trials, median pruner ({pruned} pruned) against "
             "pruner=none, end to end (wall)"), seconds(wall["median"], 1),
             f"pruner=none: {seconds(wall['none'], 1)}", ratio(wall["none"] / wall["median"]),
             "median faster", met(wall["median"] < wall["none"])],
            [("search: best true_mse, median pruner against pruner=none, and the sd over seeds "
             "1-3 of the unpruned best's setting"), f"{value['median']:.4f}",
             f"pruner=none: {value['none']:.4f}; seed sd {spread:.4f}",
             f"diff {gap:+.4f}", "diff ≤ seed sd", met(gap <= spread)]]


def scaling_rows(args, per_run_small: float, jobs_small: int, peak_small: int,
                 baseline_peak: int) -> list[list[str]]:
    """The 5,400-run grid: per-run time against the default sweep's, the report CLI over it
    (timed on the first one), peak worker memory over all sweeps."""
    big = QUICK_SCALED_GRID if args.quick else SCALED_GRID
    jobs_big = grid_size(big)
    runs, reports = [], []
    for i in range(args.scaling_repeats):
        log(f"scaling sweep {i + 1}/{args.scaling_repeats}")
        report_repeats = (1 if args.quick else args.sweep_repeats) if i == 0 else 0
        run, reports_here = scratchnet_sweep(big, report_repeats)
        runs.append(run)
        reports += reports_here
    per_run_big = statistics.median(r.seconds for r in runs) / jobs_big  # seconds per run
    growth = per_run_big / per_run_small
    peak = max([peak_small] + [r.peak_rss for r in runs])
    report = statistics.median(reports)
    return [[f"scaling: wall time per run at {jobs_big} runs vs {jobs_small} (sweep wall / runs)",
             f"{jobs_big} runs: {seconds(per_run_big, 3)}/run",
             f"{jobs_small} runs: {seconds(per_run_small, 3)}/run", ratio(growth),
             f"≤ {SCALING_RATIO:g}x", met(growth <= SCALING_RATIO)],
            [(f"report CLI (`python -m scratchnet.report`) over the {jobs_big}-run sweep, wall "
             "incl. start-up"), seconds(report, 2), "—", "—", f"≤ {REPORT_SECONDS:g} s",
             met(report <= REPORT_SECONDS)],
            memory_row(f"{jobs_small}- and {jobs_big}-run", peak, baseline_peak)]


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
                        help="rounds of the 54-run, baseline and 2-run sweeps, of the two "
                             "searches, and report CLI runs (default 3)")
    parser.add_argument("--scaling-repeats", type=int, default=1,
                        help="5,400-run sweeps (default 1: one is ~17 min on 2 cores)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny versions (1 repeat, 300 epochs, 4-run and 10-run 200-epoch "
                             "sweeps, a 4-trial search): a smoke test")
    parser.add_argument("--skip-sweeps", action="store_true", help="trainer rows only")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    rows = trainer_rows(args)
    if not args.skip_sweeps:
        sweeps, per_run, peak, baseline_peak = sweep_rows(args)
        jobs = grid_size(QUICK_GRID if args.quick else FULL_GRID)
        rows += sweeps + search_rows(args) + scaling_rows(args, per_run, jobs, peak,
                                                          baseline_peak)
    log(f"done in {time.perf_counter() - start:.0f} s")
    print(versions_line())
    print()
    print(markdown_table(rows))
    print()
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))


if __name__ == "__main__":
    main()
