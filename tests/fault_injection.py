"""Hydra callbacks that inject faults into sweep jobs, for the fault tests.

Added on the command line, e.g. +hydra.callbacks.die._target_=fault_injection.DieInJob
+hydra.callbacks.die.when=model.hidden_size=16; the tests put this folder on PYTHONPATH.
on_job_start runs in the joblib worker before the job. A worker runs its jobs in a job
process forked before its first job (sweep.JobProcess), which sees the worker's modules as
they were then: so the first job patches the job function once, and the patched function
decides per job, inside the job process, whether to die in the middle of training.
"""

import os

from hydra.experimental.callback import Callback


class DieInJob(Callback):
    """os._exit(3) halfway through training, in jobs whose overrides include ``when``."""

    def __init__(self, when: str) -> None:
        self.when = when

    def on_job_start(self, config, **kwargs) -> None:
        from scratchnet import sweep, training

        if "_real_job" in sweep.__dict__:  # patched by an earlier job of this worker
            return
        real_job, real_fit_loop, when = sweep._job, training._fit_loop, self.when
        sweep._real_job = real_job

        def job(config, overrides, info, progress):
            chosen = when in overrides

            def fit_loop(params, x, y, optimizer, losses, activation):
                if chosen:
                    half = len(losses) // 2
                    real_fit_loop(params, x, y, optimizer, losses[:half], activation)
                    os._exit(3)
                return real_fit_loop(params, x, y, optimizer, losses, activation)

            training._fit_loop = fit_loop
            return real_job(config, overrides, info, progress)

        sweep._job = job
