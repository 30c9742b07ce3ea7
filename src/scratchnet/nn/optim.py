"""Optimisers behind one method: ``step(theta, grad)`` updates the flat parameter vector
``theta`` in place from its gradient ``grad`` (both (n_params,) float64; grad is used as
scratch space). Every update is elementwise, so one vector serves any network layout.
A new optimiser is a class with that method, added to ``OPTIMIZERS``."""

from __future__ import annotations

import numpy as np


class SGD:
    """Full-batch gradient descent, the article's update: p <- p - lr * g."""

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        grad *= self.lr  # in the scratch grad: no temporary array
        theta -= grad


class Adam:
    """Adam exactly as PyTorch's ``torch.optim.Adam`` (single-tensor path, no weight decay)."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.steps = 0
        self.m: np.ndarray | None = None  # first moments, like theta
        self.v: np.ndarray | None = None  # second moments
        self.scratch: np.ndarray | None = None

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        if self.m is None or self.v is None or self.scratch is None:
            self.m, self.v, self.scratch = (np.zeros_like(theta) for _ in range(3))
        m, v, t = self.m, self.v, self.scratch
        self.steps += 1
        bias_correction1 = 1.0 - self.beta1**self.steps
        bias_correction2 = 1.0 - self.beta2**self.steps
        step_size = self.lr / bias_correction1
        # m <- beta1 m + (1 - beta1) g
        np.multiply(m, self.beta1, out=m)
        np.multiply(grad, 1.0 - self.beta1, out=t)
        np.add(m, t, out=m)
        # v <- beta2 v + (1 - beta2) g g
        np.multiply(v, self.beta2, out=v)
        np.multiply(grad, 1.0 - self.beta2, out=t)
        np.multiply(t, grad, out=t)
        np.add(v, t, out=v)
        # theta <- theta - step_size m / (sqrt(v) / sqrt(bias_correction2) + eps)
        np.sqrt(v, out=grad)
        np.divide(grad, np.sqrt(bias_correction2), out=grad)
        np.add(grad, self.eps, out=grad)
        np.multiply(m, step_size, out=t)
        np.divide(t, grad, out=t)
        np.subtract(theta, t, out=theta)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float) -> SGD | Adam:
    return OPTIMIZERS[name](lr)
