"""scratchnet: a neural network written from scratch in numpy, and the experiment
pipeline around it (Hydra configs, joblib sweeps, MLflow tracking, DVC reruns)."""

__version__ = "0.1.0"
