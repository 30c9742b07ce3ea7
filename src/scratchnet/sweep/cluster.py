"""Where a sweep's jobs run with ``hydra/launcher=dask``: a Dask cluster, reached through a
``distributed.Client`` in the launching process, which joblib's dask backend submits to.

``hydra.launcher.scheduler_address`` names a running scheduler (``tcp://host:8786``). When
it is null, a LocalCluster of worker processes (one thread each, ``hydra.launcher.n_jobs``
of them, -1 = all cores) is started on 127.0.0.1 for the sweep and shut down at its end.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..config import ConfigError

DAEMON = "distributed.worker.daemon"


class ClusterError(ConfigError):
    """No Dask cluster to run on; the message names the key and the address."""


_client: Any = None  # the sweep's distributed.Client, in the launching process
_cluster: Any = None  # the LocalCluster we started, if any


def is_dask_launcher(launcher_cfg: Any) -> bool:
    """Whether hydra.launcher is ours with joblib's dask backend (hydra/launcher=dask)."""
    return str(launcher_cfg.get("_target_", "")).endswith(".DaskLauncher")


def start(scheduler_address: str | None, n_jobs: int) -> Any:
    """The Dask client of this sweep: connected to the named scheduler, or to a local
    cluster started here. Idempotent: a second call returns the same client."""
    global _client, _cluster
    if _client is not None:
        return _client
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise ClusterError(f"hydra/launcher=dask needs Dask ({error}): "
                           "pip install 'scratchnet[cluster]'") from None

    # A job runs in a job process forked from its worker (sweep.job), which a daemonic
    # worker may not have: Dask's documented switch makes the workers it starts here
    # non-daemonic. (A remote cluster's workers run jobs in place unless started with
    # DASK_DISTRIBUTED__WORKER__DAEMON=False.)
    dask.config.set({DAEMON: False})
    logging.getLogger("distributed").setLevel(logging.WARNING)  # start/stop chatter
    if scheduler_address:
        try:
            _client = Client(scheduler_address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as error:
            raise ClusterError(f"hydra.launcher.scheduler_address: no Dask scheduler answers at "
                               f"{scheduler_address} ({error})") from None
        return _client
    workers = (os.cpu_count() or 1) if n_jobs is None or n_jobs < 1 else n_jobs
    _cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address=None)
    _client = Client(_cluster)
    return _client


def stop() -> None:
    """Close the client, and the local cluster if we started one (its workers end)."""
    global _client, _cluster
    client, cluster, _client, _cluster = _client, _cluster, None, None
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()
