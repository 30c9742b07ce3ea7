"""A Hydra multirun as one MLflow sweep.

- ``callback``: the Hydra callback around a multirun, in the launching process: every job's
  values checked, a parent run made (or resumed) while the workers start, the report at the end.
- ``grid``: which jobs a grid sweep will launch, and the identity and name of a sweep.
- ``job``: one job, in a launcher's worker: skipped if already recorded, else run in the
  worker's job process so that a job that kills its process fails alone.
- ``progress``: the jobs' progress file, the progress line, the crash summary.
- ``cluster``: the Dask client of ``hydra/launcher=dask``.
- ``sweeper``: what the grid and Optuna sweeper plugins share: the launcher, the sweep folder.

The callback and the jobs talk through two files in the sweep folder: ``sweep.json``
(parent run id, flags), which each job waits for before it trains, and ``progress.jsonl``, a line per job.
"""

from .callback import SweepCallback, SweepFailed, interrupt_active_sweep

__all__ = ["SweepCallback", "SweepFailed", "interrupt_active_sweep"]
