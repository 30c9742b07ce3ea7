"""A sweep worker's imports and warm-up, done by importing this module: what the local
launcher's fork server preloads (hydra_plugins.scratchnet_joblib_launcher), so that every
worker forked from it starts ready. Python's forkserver preloads modules by importing them,
and ignores an ImportError; any other error here would end the server, so it is left for
the workers, which warm up again (sweep.prepare_worker) and report it."""

import contextlib

import hydra_plugins.scratchnet_joblib_launcher  # noqa: F401  (runs the jobs in the worker)

from . import sweep, train  # noqa: F401  (train: the job function's module)

with contextlib.suppress(Exception):
    sweep.prepare_worker()
