"""A fully connected network as pure functions on arrays: init, forward, backward.

Parameters are a flat list ``[W1, b1, W2, b2, ...]``: for ``depth`` hidden layers of
``hidden_size`` units, W1 is (1, h), hidden-to-hidden W is (h, h), the output W is (h, 1);
each b has shape (fan_out,). Activations and their derivatives sit side by side in two
tables; each derivative is written in terms of the activation's *output* ``a``, which is
what the backward pass keeps (as scikit-learn's MLP does).

``forward`` and ``backward`` are the readable definitions. ``Workspace`` computes exactly the
same numbers (the same numpy operations in the same order, so bit for bit; its two
rewrites, 2 * e / n as e / (n / 2) and x @ W1 + b1 as [x, 1] @ [W1; b1], round exactly
alike, see there) on buffers allocated once: the training loop's hot path, where per-call
overhead, not arithmetic, is what costs (the article's network is a few thousand flops per
epoch, about 20 numpy calls of 0.3-2 us each).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

Params = list[np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": _sigmoid,
}

DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {  # d activation / dz, from a
    "tanh": lambda a: 1.0 - a**2,
    "relu": lambda a: (a > 0.0).astype(a.dtype),
    "sigmoid": lambda a: a * (1.0 - a),
}


def layer_shapes(hidden_size: int, depth: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) per weight matrix: 1 -> h (-> h)* -> 1."""
    widths = [1] + [hidden_size] * depth + [1]
    return list(itertools.pairwise(widths))


def init_params(shapes: list[tuple[int, int]], draw_normal: Callable[[int], np.ndarray],
                init_scale: float) -> Params:
    """Weights ~ N(0, init_scale), biases zero, as in the article.

    ``draw_normal(k)`` returns k standard normals; weights are drawn layer by layer and
    filled column by column, which is how R's ``matrix(rnorm(k), rows, cols)`` fills them.
    """
    params: Params = []
    for fan_in, fan_out in shapes:
        weights = init_scale * draw_normal(fan_in * fan_out)
        params.append(weights.reshape((fan_in, fan_out), order="F"))
        params.append(np.zeros(fan_out))
    return params


def forward(params: Params, x: np.ndarray, activation: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Predictions (n, 1) and the layer outputs [x, a1, a2, ...] the backward pass needs."""
    act = ACTIVATIONS[activation]
    outputs = [x]  # outputs[k]: (n, width of layer k)
    for weights, bias in zip(params[0:-2:2], params[1:-2:2]):
        outputs.append(act(outputs[-1] @ weights + bias))
    y_hat = outputs[-1] @ params[-2] + params[-1]  # linear output layer, (n, 1)
    return y_hat, outputs


def mse(y_hat: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error over all points."""
    return float(np.mean((y_hat - y) ** 2))


def backward(params: Params, outputs: list[np.ndarray], y_hat: np.ndarray, y: np.ndarray,
             activation: str) -> Params:
    """Gradients of the MSE with respect to every parameter, same layout as ``params``."""
    derivative = DERIVATIVES[activation]
    n = y.shape[0]
    grad_z = 2.0 * (y_hat - y) / n  # dL/d(pre-activation) of the output layer, (n, 1)
    grads: Params = [np.empty(0)] * len(params)
    for layer in reversed(range(len(params) // 2)):
        weights = params[2 * layer]
        grads[2 * layer] = outputs[layer].T @ grad_z  # (fan_in, fan_out)
        grads[2 * layer + 1] = grad_z.sum(axis=0)  # (fan_out,)
        if layer > 0:  # chain rule into the previous layer's pre-activation
            grad_z = (grad_z @ weights.T) * derivative(outputs[layer])
    return grads


def predict(params: Params, x: np.ndarray, activation: str) -> np.ndarray:
    """Network output (n, 1) for inputs x (n, 1)."""
    return forward(params, x, activation)[0]


# In-place twins of the tables above, as steps: (function, arguments) pairs that write into
# buffers z, a, out: (n, width) float64 arrays owned by the workspace. Scalars are 0-d float64
# arrays: the same arithmetic as Python floats, with less conversion per call.
_ZERO, _HALF, _ONE = np.array(0.0), np.array(0.5), np.array(1.0)
Step = tuple[Callable[..., object], tuple]

ACTIVATION_STEPS: dict[str, Callable[[np.ndarray], list[Step]]] = {
    "tanh": lambda z: [(np.tanh, (z, z))],
    "relu": lambda z: [(np.maximum, (z, _ZERO, z))],
    "sigmoid": lambda z: [(np.multiply, (z, _HALF, z)), (np.tanh, (z, z)),
                          (np.add, (z, _ONE, z)), (np.multiply, (z, _HALF, z))],
}

DERIVATIVE_STEPS: dict[str, Callable[[np.ndarray, np.ndarray], list[Step]]] = {
    "tanh": lambda a, out: [(np.multiply, (a, a, out)),  # a**2 is computed as a*a
                            (np.subtract, (_ONE, out, out))],
    "relu": lambda a, out: [(np.greater, (a, _ZERO, out))],  # True/False stored as 1.0/0.0
    "sigmoid": lambda a, out: [(np.subtract, (_ONE, a, out)), (np.multiply, (a, out, out))],
}


class Workspace:
    """``mse(forward(...))`` and ``backward(...)`` for fixed data, on one flat parameter
    vector ``theta`` (what the optimiser steps, in place) and buffers allocated once.

    ``params``/``grads`` are views of ``theta``/``grad`` in the usual [W1, b1, ...] layout.
    An epoch is a ``Program``: run its ``forward`` steps, read the loss with ``loss_of``
    and, if it is finite, run its ``backward`` steps, which fill ``grad`` (and then, from
    ``programs(update)``, step ``theta``). The steps are built once, so an epoch costs its
    numpy calls and little else.

    A matrix's memory order decides how BLAS sums a product. The readable loop multiplies by
    the caller's arrays in the first epoch (R fills hidden-to-hidden matrices by column) and
    by C-ordered arrays after its first update, so the first epoch's program does the same,
    and the later epochs' program multiplies by theta's views.
    """

    def __init__(self, params: Params, x: np.ndarray, y: np.ndarray, activation: str):
        self.theta = np.concatenate([p.ravel() for p in params])  # (n_params,)
        self.grad = np.empty_like(self.theta)
        self.params, self.grads = _views(self.theta, params), _views(self.grad, params)
        n, widths = len(x), [w.shape[1] for w in self.params[0::2]]  # widths: fan_out
        self.n = float(n)  # n as a float: the same division, no int conversion
        self.outputs = [x] + [np.empty((n, w)) for w in widths[:-1]]  # as forward's
        self.y_hat, self.error, self.squared = (np.empty((n, 1)) for _ in range(3))
        self.grad_z = [np.empty((n, w)) for w in widths]  # dL/d(pre-activation), per layer
        self.slopes = [np.empty((n, w)) for w in widths[:-1]]  # d activation / dz, per layer
        self._y, self._activation = y, activation
        # x @ W1 + b1 as [x, 1] @ [W1; b1]: one BLAS call instead of a product and a
        # broadcast add (1.5 us of an epoch's 16). theta holds W1 (1, h) and b1 (h,) side by
        # side, so [W1; b1] is a (2, h) view of it. BLAS's gemm sums each z as x w + 1 b in
        # that order from zero, x w rounded once and 1 b exact: the same two roundings as
        # product then add (tests/test_workspace.py checks it bit for bit over many shapes).
        # A single point or a single unit makes it a gemv, which sums otherwise: those
        # layers keep the add.
        self._x_and_ones = np.hstack([x, np.ones_like(x)])  # (n, 2)
        self._input_layer = self.theta[:2 * widths[0]].reshape(2, widths[0])  # (2, h)
        self.first_epoch = self._program(list(params[0::2]))  # the caller's arrays
        self.later_epochs = self._program(self.params[0::2])

    def loss_of(self) -> float:
        """The MSE, once an epoch's forward steps have run."""
        return float(np.add.reduce(self.squared, None)) / self.n  # as np.mean does

    def programs(self, update: list[Step]) -> Iterator[Program]:
        """The program of each epoch, epoch 1 first, without end, with the optimiser's
        ``update`` steps (on theta and grad) appended to its backward steps."""
        first, later = (Program(p.forward, p.backward + update)
                        for p in (self.first_epoch, self.later_epochs))
        return itertools.chain([first], itertools.repeat(later))

    def _program(self, weights: Params) -> Program:
        """The steps of an epoch that multiplies by ``weights``; every program of a workspace
        reads and writes the same buffers. Products are ``a.dot(b, out)``: the C function
        ``np.dot(a, b, out)`` calls, without np.dot's ``__array_function__`` dispatch (about
        0.2 us of a 0.6 us call)."""
        outputs, grad_z, activate = self.outputs, self.grad_z, ACTIVATION_STEPS[self._activation]
        biases, weight_grads, bias_grads = self.params[1::2], self.grads[0::2], self.grads[1::2]
        y_hat, error = self.y_hat, self.error
        forward: list[Step] = []
        for k, z in enumerate(outputs[1:]):  # the hidden layers, z: (n, width)
            if k == 0 and min(z.shape) > 1:  # x @ W1 + b1 as one product, see __init__
                forward += [(self._x_and_ones.dot, (self._input_layer, z)), *activate(z)]
            else:
                forward += [(outputs[k].dot, (weights[k], z)),
                            (np.add, (z, _scalar_if_single(biases[k]), z)), *activate(z)]
        forward += [(outputs[-1].dot, (weights[-1], y_hat)),
                    (np.add, (y_hat, _scalar_if_single(biases[-1]), y_hat)),
                    (np.subtract, (y_hat, self._y, error)),
                    (np.multiply, (error, error, self.squared))]
        # 2 * error / n as error / (n / 2): doubling is exact (a finite loss bounds the error)
        # and n / 2 is exact, so both are the one rounding of the same quotient.
        backward: list[Step] = [(np.divide, (error, np.array(self.n / 2), grad_z[-1]))]
        derivative = DERIVATIVE_STEPS[self._activation]
        for k in reversed(range(len(weights))):
            backward += [(outputs[k].T.dot, (grad_z[k], weight_grads[k])),
                         (np.add.reduce, _column_sums(grad_z[k], bias_grads[k]))]
            if k > 0:  # chain rule into the layer below's pre-activation
                below, slope = grad_z[k - 1], self.slopes[k - 1]
                backward += [(grad_z[k].dot, (weights[k].T, below)),
                             *derivative(outputs[k], slope),
                             (np.multiply, (below, slope, below))]
        return Program(forward, backward)

    def copy_params(self) -> Params:
        return [p.copy() for p in self.params]


class Program(NamedTuple):
    forward: list[Step]  # up to the squared errors
    backward: list[Step]  # the gradients into grad


def _scalar_if_single(bias: np.ndarray) -> np.ndarray:
    """A one-value bias as a 0-d view, which numpy adds with its scalar loop (the output
    layer's: half the cost of broadcasting its (1,) array); the same sums either way."""
    return bias.reshape(()) if bias.size == 1 else bias


def _column_sums(values: np.ndarray, out: np.ndarray) -> tuple:
    """``np.add.reduce`` arguments for the column sums of values (n, width) into out
    (width,). A single column is summed as the 1-d vector it is, into a 0-d view: the same
    pairwise sum, with less set-up per call."""
    if values.shape[1] == 1:
        return (values.reshape(-1), 0, None, out.reshape(()))
    return (values, 0, None, out)


def _views(flat: np.ndarray, like: Params) -> Params:
    """Views of ``flat`` shaped like each array of ``like``, in order (C order)."""
    views, start = [], 0
    for p in like:
        views.append(flat[start:start + p.size].reshape(p.shape))
        start += p.size
    return views
