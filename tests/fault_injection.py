"""Hydra callbacks that inject faults into sweep jobs, for the fault tests.

Added on the command line, e.g. +hydra.callbacks.die._target_=fault_injection.DieInJob
+hydra.callbacks.die.when=model.hidden_size=16; the tests put this folder on PYTHONPATH.
on_job_start runs in the launcher's worker before each job. The worker runs its jobs in a job
process forked before its first job (scratchnet.sweep.job), which sees the worker's modules
as they were then: so the first job patches the job function once, and the patched function
decides per job, inside the job process, whether to die in the middle of training.
"""

import os

from hydra.experimental.callback import Callback


class DieInJob(Callback):
    """os._exit(3) halfway through training, in jobs whose overrides include ``when``."""

    def __init__(self, when: str) -> None:
        self.when = when

    def on_job_start(self, config, **kwargs) -> None:
        from scratchnet.nn import training
        from scratchnet.sweep import job

        if getattr(job, "patched_by_fault_injection", False):  # an earlier job of this worker
            return
        job.patched_by_fault_injection = True
        real_job, real_fit, when = job.train_and_record, training.fit, self.when

        def train_and_record(config, overrides, *job_args):
            chosen = when in overrides

            def fit(params, x, y, optimizer, epochs, *fit_args, **fit_kwargs):
                if chosen:
                    real_fit(params, x, y, optimizer, epochs // 2, *fit_args, **fit_kwargs)
                    os._exit(3)
                return real_fit(params, x, y, optimizer, epochs, *fit_args, **fit_kwargs)

            training.fit = fit
            return real_job(config, overrides, *job_args)

        job.train_and_record = train_and_record
