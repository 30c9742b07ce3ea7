"""Hydra callbacks that inject faults into sweep jobs, for the fault tests.

Added on the command line, e.g. +hydra.callbacks.die._target_=fault_injection.DieInJob
+hydra.callbacks.die.when=model.hidden_size=16; the tests put this folder on PYTHONPATH.
on_job_start runs in the joblib worker before the job; the patch is inherited by the
job's forked process, which then dies in the middle of training.
"""

import os

from hydra.experimental.callback import Callback


class DieInJob(Callback):
    """os._exit(3) halfway through training, in jobs whose overrides include ``when``."""

    def __init__(self, when: str) -> None:
        self.when = when

    def on_job_start(self, config, **kwargs) -> None:
        from scratchnet import training

        # the worker runs several jobs: always wrap the real loop, not a previous wrapper
        original = training.__dict__.setdefault("_real_fit_loop", training._fit_loop)
        chosen = self.when in list(config.hydra.overrides.task)

        def fit_loop(params, x, y, optimizer, losses, activation):
            if chosen:
                half = len(losses) // 2
                original(params, x, y, optimizer, losses[:half], activation)
                os._exit(3)
            return original(params, x, y, optimizer, losses, activation)

        training._fit_loop = fit_loop
