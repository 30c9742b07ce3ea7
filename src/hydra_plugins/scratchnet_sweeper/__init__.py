"""Hydra's basic (grid) sweeper, composing each job's config once instead of twice.

Hydra's BasicSweeper composes every job's config in the launching process to catch errors
before fan-out, and the joblib launcher composes it again in the worker that runs it; at
about 50 ms a composition that is seconds of serial work before the first job starts.
scratchnet's SweepCallback already checks every job's values against the schema before
fan-out, so this sweeper composes only the first job the full way (which catches errors
in config groups and interpolations, the same for every job of a grid over values).

Selected in conf/config.yaml with ``hydra.sweeper._target_``; Hydra loads sweepers only
from the ``hydra_plugins`` package, hence this module's home.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class GridSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        super().validate_batch_is_legal(batch[:1])
