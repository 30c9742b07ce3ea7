"""A fully connected network as pure functions on arrays: init, forward, backward.

Parameters are a flat list ``[W1, b1, W2, b2, ...]``: for ``depth`` hidden layers of
``hidden_size`` units, W1 is (1, h), hidden-to-hidden W is (h, h), the output W is (h, 1);
each b has shape (fan_out,). Activations and their derivatives sit side by side in two
tables; each derivative is written in terms of the activation's *output* ``a``, which is
what the backward pass keeps (as scikit-learn's MLP does).

``forward`` and ``backward`` are the readable definitions. ``Workspace`` computes exactly the
same numbers (the same numpy operations in the same order, so bit for bit) on buffers
allocated once: the training loop's hot path, where per-call overhead, not arithmetic,
is what costs (the article's network is a few thousand flops per epoch).
"""

from __future__ import annotations

from collections.abc import Callable

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
    return list(zip(widths[:-1], widths[1:]))


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


# In-place twins of the tables above, for Workspace: the same operations, written into
# buffers. z and out: (n, width) float64 arrays owned by the workspace.
def _sigmoid_inplace(z: np.ndarray) -> None:
    np.multiply(z, 0.5, out=z)
    np.tanh(z, out=z)
    np.add(z, 1.0, out=z)
    np.multiply(z, 0.5, out=z)


ACTIVATIONS_INPLACE: dict[str, Callable[[np.ndarray], None]] = {
    "tanh": lambda z: np.tanh(z, out=z),
    "relu": lambda z: np.maximum(z, 0.0, out=z),
    "sigmoid": _sigmoid_inplace,
}


def _tanh_derivative_into(a: np.ndarray, out: np.ndarray) -> None:
    np.multiply(a, a, out=out)  # a**2 is computed as a*a
    np.subtract(1.0, out, out=out)


def _sigmoid_derivative_into(a: np.ndarray, out: np.ndarray) -> None:
    np.subtract(1.0, a, out=out)
    np.multiply(a, out, out=out)


DERIVATIVES_INTO: dict[str, Callable[[np.ndarray, np.ndarray], None]] = {
    "tanh": _tanh_derivative_into,
    "relu": lambda a, out: np.greater(a, 0.0, out=out),  # True/False stored as 1.0/0.0
    "sigmoid": _sigmoid_derivative_into,
}


class Workspace:
    """``mse(forward(...))`` and ``backward(...)`` for fixed data, on one flat parameter
    vector ``theta`` (what the optimiser steps, in place) and buffers allocated once.

    ``params``/``grads`` are views of ``theta``/``grad`` in the usual [W1, b1, ...] layout.
    Call ``loss()`` then, if it is finite, ``backward()``, which fills ``grad``; then step
    ``theta``.

    A matrix's memory order decides how BLAS sums a product. The readable loop multiplies by
    the caller's arrays in the first epoch (R fills hidden-to-hidden matrices by column) and
    by C-ordered arrays after its first update, so this does the same to stay bit-identical.
    """

    def __init__(self, params: Params, x: np.ndarray, y: np.ndarray, activation: str):
        self.theta = np.concatenate([p.ravel() for p in params])  # (n_params,)
        self.grad = np.empty_like(self.theta)
        self.params, self.grads = _views(self.theta, params), _views(self.grad, params)
        n, widths = len(x), [w.shape[1] for w in self.params[0::2]]  # widths: fan_out
        self.y, self.n = y, float(n)  # n as a float: the same division, no int conversion
        outputs = [x] + [np.empty((n, w)) for w in widths[:-1]]  # as forward's, (n, width)
        self.outputs = outputs
        self.y_hat, self.error, self.squared = (np.empty((n, 1)) for _ in range(3))
        self.grad_z = [np.empty((n, w)) for w in widths]  # dL/d(pre-activation), per layer
        self.derivative = [np.empty((n, w)) for w in widths[:-1]]  # per hidden layer
        self.first_epoch = True
        self.weights = list(params[0::2])  # the caller's arrays until the first backward()
        self.weights_t = [w.T for w in self.weights]
        biases, bias_grads, weight_grads = self.params[1::2], self.grads[1::2], self.grads[0::2]
        # Per-layer operands, looked up once: (input, layer, output, bias) for the hidden
        # layers; going down, (layer, input^T, dL/dz, dL/dW, dL/db, dL/dz below or None,
        # derivative buffer or None, input).
        self.hidden = [(outputs[k], k, outputs[k + 1], biases[k]) for k in range(len(widths) - 1)]
        self.output_bias = biases[-1]
        self.layers_down = [
            (k, outputs[k].T, self.grad_z[k], weight_grads[k], bias_grads[k],
             self.grad_z[k - 1] if k > 0 else None,
             self.derivative[k - 1] if k > 0 else None, outputs[k])
            for k in reversed(range(len(widths)))]
        self.activate = ACTIVATIONS_INPLACE[activation]
        self.derivative_into = DERIVATIVES_INTO[activation]

    def loss(self) -> float:
        """Forward pass and the MSE of the current parameters."""
        weights = self.weights
        for inputs, layer, z, bias in self.hidden:
            np.dot(inputs, weights[layer], out=z)
            np.add(z, bias, out=z)
            self.activate(z)
        y_hat, error = self.y_hat, self.error
        np.dot(self.outputs[-1], weights[-1], out=y_hat)
        np.add(y_hat, self.output_bias, out=y_hat)
        np.subtract(y_hat, self.y, out=error)
        np.multiply(error, error, out=self.squared)
        return float(np.add.reduce(self.squared, axis=None)) / self.n  # as np.mean does

    def backward(self) -> None:
        """Gradients of the last ``loss()`` into ``grad``."""
        top = self.grad_z[-1]
        np.multiply(self.error, 2.0, out=top)
        np.divide(top, self.n, out=top)
        weights_t = self.weights_t
        for layer, inputs_t, grad_z, grad_w, grad_b, below, derivative, a in self.layers_down:
            np.dot(inputs_t, grad_z, out=grad_w)
            np.add.reduce(grad_z, axis=0, out=grad_b)
            if below is not None:  # chain rule into the layer below's pre-activation
                np.dot(grad_z, weights_t[layer], out=below)
                self.derivative_into(a, derivative)
                np.multiply(below, derivative, out=below)
        if self.first_epoch:  # from now on: theta's own (C-ordered) views
            self.first_epoch = False
            self.weights[:] = self.params[0::2]
            self.weights_t[:] = [w.T for w in self.weights]

    def copy_params(self) -> Params:
        return [p.copy() for p in self.params]


def _views(flat: np.ndarray, like: Params) -> Params:
    """Views of ``flat`` shaped like each array of ``like``, in order (C order)."""
    views, start = [], 0
    for p in like:
        views.append(flat[start:start + p.size].reshape(p.shape))
        start += p.size
    return views
