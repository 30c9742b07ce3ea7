"""Optimisers behind one method: ``step(theta, grad)`` updates the flat parameter vector
``theta`` in place from its gradient ``grad`` (both (n_params,) float64; grad is used as
scratch space). Every update is elementwise, so one vector serves any network layout.
A new optimiser is a class with that method, ``state``/``set_state`` (what a step depends
on besides ``lr``, so training can go back to an earlier epoch) and a place in ``OPTIMIZERS``.

Learning-rate schedules decide each epoch's rate (``train.lr_schedule``, ``SCHEDULES``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class SGD:
    """Full-batch gradient descent, the article's update: p <- p - lr * g."""

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        grad *= self.lr  # in the scratch grad: no temporary array
        theta -= grad

    def state(self) -> dict[str, Any]:
        return {}  # a step depends on the gradient and the rate alone

    def set_state(self, state: dict[str, Any]) -> None:
        pass


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

    def state(self) -> dict[str, Any]:
        """A copy of the step count and the moments (None before the first step)."""
        return {"steps": self.steps, "m": None if self.m is None else self.m.copy(),
                "v": None if self.v is None else self.v.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.m = None if state["m"] is None else state["m"].copy()
        self.v = None if state["v"] is None else state["v"].copy()


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float) -> SGD | Adam:
    return OPTIMIZERS[name](lr)


class ConstantRate:
    """The article's training: the rate never changes, and a non-finite loss ends it."""

    def __init__(self, optimizer: SGD | Adam, epochs: int):
        self.optimizer = optimizer
        self.halvings = 0

    def observe(self, epoch: int, loss: float, theta: np.ndarray) -> None:
        pass

    def recover(self, theta: np.ndarray) -> bool:
        return False  # training stops

    def rates(self, epochs_run: int) -> np.ndarray:
        return np.full(epochs_run, self.optimizer.lr)


class HalveOnPlateau:
    """The article's rule, "start at 1e-3, halve it if loss diverges or plateaus after many
    epochs", applied to the optimizer's ``lr``:

    - diverges: after a non-finite loss, ``recover`` puts back the weights and optimizer
      state of the epoch with the lowest loss so far and halves the rate; training goes on
      from them. (Not the last finite weights: a too-large rate grows the loss ~100-fold an
      epoch for a hundred epochs before it overflows, and the weights by then are useless.)
    - plateaus: when ``patience`` epochs in a row have not brought the loss ``plateau_tol``
      (relative) below the loss of the last such improvement, the rate is halved, as by
      PyTorch's ReduceLROnPlateau(mode="min", threshold_mode="rel", factor=0.5).

    After ``max_halvings`` halvings the rate stays, and a non-finite loss ends training.
    ``observe`` is called with each epoch's finite loss, before that epoch's update.
    """

    def __init__(self, optimizer: SGD | Adam, epochs: int, plateau_tol: float, patience: int,
                 max_halvings: int):
        self.optimizer = optimizer
        self.plateau_tol, self.patience, self.max_halvings = plateau_tol, patience, max_halvings
        self.halvings = 0
        self.rate_of_epoch = np.empty(epochs)  # the rate of each epoch's update
        # The lowest loss so far, and the weights and optimizer state its epoch started from
        self.best_loss = math.inf
        self.best_theta: np.ndarray | None = None  # like theta, (n_params,)
        self.best_state: dict[str, Any] = {}
        self.reference = math.inf  # the loss at the last improvement by plateau_tol
        self.stalled = 0  # epochs since then

    def observe(self, epoch: int, loss: float, theta: np.ndarray) -> None:
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_theta, self.best_state = theta.copy(), self.optimizer.state()
        if loss < self.reference * (1.0 - self.plateau_tol):
            self.reference, self.stalled = loss, 0
        else:
            self.stalled += 1
            if self.stalled >= self.patience and self.halvings < self.max_halvings:
                self.halve()
        self.rate_of_epoch[epoch] = self.optimizer.lr

    def recover(self, theta: np.ndarray) -> bool:
        """After a non-finite loss: the best weights back in ``theta`` at half the rate, or
        False when no halving is left (or no epoch had a finite loss)."""
        if self.best_theta is None or self.halvings == self.max_halvings:
            return False
        theta[:] = self.best_theta
        self.optimizer.set_state(self.best_state)
        self.reference = self.best_loss
        self.halve()
        return True

    def halve(self) -> None:
        self.optimizer.lr /= 2
        self.halvings += 1
        self.stalled = 0

    def rates(self, epochs_run: int) -> np.ndarray:
        return self.rate_of_epoch[:epochs_run].copy()


SCHEDULES = ("constant", "halve_on_plateau")
