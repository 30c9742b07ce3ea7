"""A sweep's progress: each job appends one JSON line to ``progress.jsonl`` in the sweep
folder; the launching process reads it back for the progress line and the final summary."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

PROGRESS_FILE = "progress.jsonl"
ETA_AFTER = 5  # jobs run before an ETA: the first ones also paid for the workers' start-up


def append_progress(path: Path, status: str, overrides: list[str], run_id: str | None,
                    error: str | None = None) -> None:
    """Record a job's outcome: done, diverged, pruned (stopped by a search's pruner), skipped
    (answered by an earlier run) or failed; and when (``time``: seconds since the epoch)."""
    line = json.dumps({"status": status, "overrides": list(overrides), "run_id": run_id,
                       "error": error, "time": time.time()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:  # one write of a short line with O_APPEND: atomic between worker processes
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Summary:
    """The progress records of a sweep of ``total`` jobs (``at_most``: a race, which stops
    when its tests decide, so its total and ETA are bounds)."""

    def __init__(self, records: list[dict], total: int, at_most: bool = False):
        self.records, self.total, self.at_most = records, total, at_most

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r["status"] == status)

    def jobs_with(self, status: str) -> list[list[str]]:
        return [r["overrides"] for r in self.records if r["status"] == status]

    def eta(self) -> str:
        """The time left at the pace jobs have been finishing: the span from the first run
        job's end to the latest's, over the jobs finished in it ('?' until ETA_AFTER have
        run: skipped jobs take no time, and the first job's time is mostly start-up)."""
        done = len(self.records)
        if self.total and done >= self.total:
            return "0:00"
        ends = sorted(r["time"] for r in self.records if r["status"] != "skipped" and "time" in r)
        if not self.total or len(ends) < ETA_AFTER or ends[-1] <= ends[0]:
            return "?"
        per_job = (ends[-1] - ends[0]) / (len(ends) - 1)  # seconds between job ends
        return _clock(per_job * (self.total - done))

    def line(self, elapsed: float, final: bool = False) -> str:
        """The progress line; ``final``: the last one, which gives a race no ETA."""
        done = len(self.records)
        eta = self.eta()
        pruned = self.count("pruned")  # only a search prunes: the grid's line does not change
        bound = "at most " if self.at_most and eta != "0:00" else ""
        return (f"[sweep] {done}/{bound}{self.total or '?'} done, {self.count('skipped')} skipped, "
                + (f"{pruned} pruned, " if pruned else "")
                + f"{self.count('diverged')} diverged, {self.count('failed')} failed, "
                f"elapsed {_clock(elapsed)}"
                + ("" if final and self.at_most else f", ETA {bound if eta != '?' else ''}{eta}"))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    if minutes >= 60:
        return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


class Progress:
    """A background thread that redraws one progress line from the jobs' progress file:
    in place on a terminal, a line every 10 s or so to a file or pipe."""

    def __init__(self, path: Path, total: int, interval: float = 1.0, at_most: bool = False):
        self.path, self.total, self.interval, self.at_most = path, total, interval, at_most
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()
        self._tty = sys.stderr.isatty()
        self.shown = -1  # jobs counted in the last line logged to a file or pipe

    def read(self) -> Summary:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        return Summary([json.loads(line) for line in lines if line.strip()], self.total,
                       self.at_most)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Summary:
        """Stop redrawing; the final summary, its line printed unless just logged."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self._tty:
            sys.stderr.write("\n")
        summary = self.read()
        if self.shown != len(summary.records):
            print(summary.line(time.monotonic() - self.started, final=True), file=sys.stderr)
            self.shown = len(summary.records)
        return summary

    def _loop(self, log_every: float = 10.0) -> None:
        last_logged = -log_every
        while not self._stop.wait(self.interval):
            summary = self.read()
            now = time.monotonic()
            line = summary.line(now - self.started)
            if self._tty:  # redraw in place
                sys.stderr.write("\r" + line)
                sys.stderr.flush()
            elif len(summary.records) != self.shown and now - last_logged >= log_every:
                print(line, file=sys.stderr, flush=True)  # logs and pipes: a line now and then
                self.shown, last_logged = len(summary.records), now


def crash_message(summary: Summary) -> str:
    """'3 of 8 jobs crashed: <reason>: [job] [job]; <reason>: [job]', jobs grouped by reason."""
    by_reason: dict[str, list[str]] = {}
    for record in summary.records:
        if record["status"] == "failed":
            job = "[" + " ".join(record["overrides"]) + "]"
            by_reason.setdefault(record.get("error") or "unknown error", []).append(job)
    return (f"{sum(map(len, by_reason.values()))} of {summary.total} jobs crashed: "
            + "; ".join(f"{reason}: {' '.join(jobs)}" for reason, jobs in by_reason.items()))
