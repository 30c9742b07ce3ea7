"""Measure training speed: the training loop alone, per hidden size (no MLflow, no I/O).

    python scripts/benchmark.py              # default config, hidden sizes 8..512
    python scripts/benchmark.py --repeats 5

Prints the median over repeats of the wall time of train_network's loop (train_seconds)
and the epochs per second. Speed is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from scratchnet.configure import to_config
from scratchnet.training import train_network

CONF = Path(__file__).resolve().parents[1] / "conf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden-sizes", default="8,16,32,64,512")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"{'hidden_size':>11} {'epochs run':>10} {'median s':>9} {'epochs/s':>9}  final_mse")
    for hidden in (int(h) for h in args.hidden_sizes.split(",")):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            config = to_config(compose("config", overrides=[f"model.hidden_size={hidden}"]))
        results = [train_network(config) for _ in range(args.repeats)]
        seconds = statistics.median(r.train_seconds for r in results)
        epochs = len(results[0].fit.losses)
        outcome = (f"diverged at epoch {results[0].fit.diverged_epoch}" if results[0].diverged
                   else f"{results[0].final_mse:.6f}")
        print(f"{hidden:>11} {epochs:>10} {seconds:>9.3f} {epochs / seconds:>9.0f}  {outcome}")


if __name__ == "__main__":
    main()
