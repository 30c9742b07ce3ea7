"""A run's network as a file: model.npz holds the weights W1, b1, W2, b2, ... and the
activation's name, as plain arrays (read with allow_pickle=False: no code runs on load).

The run writes it (run.write_artifacts); the MLflow model reads it (model_code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS_FILE = "model.npz"


def save_weights(path: Path, params: list[np.ndarray], activation: str) -> None:
    """params: [W1 (1, h), b1 (h,), ..., W_out (h, 1), b_out (1,)]."""
    weights = {f"{'W' if k % 2 == 0 else 'b'}{k // 2 + 1}": p for k, p in enumerate(params)}
    np.savez(path, activation=np.array(activation), **weights)


def load_weights(path: Path) -> tuple[list[np.ndarray], str]:
    """Weights [W1, b1, ...] and activation name from a model.npz, without pickle."""
    with np.load(path, allow_pickle=False) as archive:
        layers = sum(1 for name in archive.files if name.startswith("W"))
        params = [archive[f"{kind}{k}"] for k in range(1, layers + 1) for kind in ("W", "b")]
        return params, str(archive["activation"])
