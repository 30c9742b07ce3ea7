"""The maths, pure numpy with no I/O: R's random stream (rrng), the article's data (data),
the network's forward and backward passes (network), the optimisers (optim) and the
training loop (training). Nothing here imports Hydra, MLflow or matplotlib."""
