"""Optimisers behind one method: ``update(params, grads) -> new params``."""

from __future__ import annotations

import numpy as np

from .network import Params


class SGD:
    """Full-batch gradient descent, the article's update: p <- p - lr * g."""

    def __init__(self, lr: float):
        self.lr = lr

    def update(self, params: Params, grads: Params) -> Params:
        return [p - self.lr * g for p, g in zip(params, grads)]


class Adam:
    """Adam exactly as PyTorch's ``torch.optim.Adam`` (single-tensor path, no weight decay)."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.step = 0
        self.m: Params | None = None  # first moments, same layout as params
        self.v: Params | None = None  # second moments

    def update(self, params: Params, grads: Params) -> Params:
        if self.m is None or self.v is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.step += 1
        bias_correction1 = 1.0 - self.beta1**self.step
        bias_correction2 = 1.0 - self.beta2**self.step
        step_size = self.lr / bias_correction1
        new_params = []
        for k, (p, g) in enumerate(zip(params, grads)):
            self.m[k] = self.beta1 * self.m[k] + (1.0 - self.beta1) * g
            self.v[k] = self.beta2 * self.v[k] + (1.0 - self.beta2) * g * g
            denom = np.sqrt(self.v[k]) / np.sqrt(bias_correction2) + self.eps
            new_params.append(p - step_size * self.m[k] / denom)
        return new_params


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float) -> SGD | Adam:
    return OPTIMIZERS[name](lr)
