"""A fully connected network: 1 input -> hidden layers -> 1 linear output, trained on the MSE.

``Network.forward`` (the loss) and ``Network.backward`` (its gradient) are the passes that
train (``training.fit``); ``predict`` runs the same layers. As in scikit-learn's MLP they
work in place on buffers allocated once: an epoch of the article's network is a few thousand flops, so its cost is the number
of numpy calls, and a call that allocates nothing is cheaper.

Parameters are the list ``[W1, b1, W2, b2, ...]``: W1 is (1, h), a hidden-to-hidden W is
(h, h), the output W is (h, 1), and each b is (fan_out,). Inside a ``Network`` they are views
of one flat vector ``theta``, and their gradients views of one flat ``grad``, so an optimiser
updates every parameter with a few elementwise operations on one vector.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

Params = list[np.ndarray]


# Activations, each with its derivative. The activation overwrites the pre-activation z with
# its output a. The derivative multiplies a delta (dL/da) in place by da/dz, written in terms
# of a, because a is what the forward pass keeps.

def inplace_tanh(z: np.ndarray) -> None:
    np.tanh(z, out=z)


def inplace_tanh_derivative(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= 1.0 - a**2


def inplace_relu(z: np.ndarray) -> None:
    np.maximum(z, 0.0, out=z)


def inplace_relu_derivative(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= a > 0.0


def inplace_sigmoid(z: np.ndarray) -> None:
    # 1 / (1 + exp(-z)) written as 0.5 (1 + tanh(z / 2)): the same function, and exp cannot
    # overflow for large negative z.
    z *= 0.5
    np.tanh(z, out=z)
    z += 1.0
    z *= 0.5


def inplace_sigmoid_derivative(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= a
    delta *= 1.0 - a


ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], None],
                             Callable[[np.ndarray, np.ndarray], None]]] = {
    "tanh": (inplace_tanh, inplace_tanh_derivative),
    "relu": (inplace_relu, inplace_relu_derivative),
    "sigmoid": (inplace_sigmoid, inplace_sigmoid_derivative),
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


class Network:
    """A network's parameters, and the buffers of its passes over ``n_points`` inputs.

    ``theta`` is a copy of the parameters (the caller's arrays are never written) and
    ``params`` are views of it, ``[W1, b1, ...]``; ``grad`` and ``grads`` hold the gradients
    the same way. ``forward(x, y)`` returns the loss, then ``backward()`` fills ``grad`` with
    its gradient. Stepping ``theta`` in place changes the network.
    """

    def __init__(self, params: Params, activation: str, n_points: int):
        self.theta = np.concatenate([p.ravel() for p in params])  # (n_params,)
        self.grad = np.zeros_like(self.theta)
        self.params, self.grads = _views(self.theta, params), _views(self.grad, params)
        self.weights, self.biases = self.params[0::2], self.params[1::2]
        self.weight_grads, self.bias_grads = self.grads[0::2], self.grads[1::2]
        self.activate, self.derivative = ACTIVATIONS[activation]
        widths = [w.shape[1] for w in self.weights]  # each layer's fan_out: h, ..., h, 1
        # activations[k] is the input of layer k: x (set by predict), then each hidden layer's
        # output, and last the network's output. deltas[k] is dL/dz for layer k's z.
        self.activations = [np.empty((n_points, 1))] + [np.empty((n_points, w)) for w in widths]
        self.deltas = [np.empty((n_points, w)) for w in widths]
        self.error = np.empty((n_points, 1))  # output - y
        self.ones = np.ones(n_points)  # (n,): the input that every bias multiplies

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The outputs (n, 1) for inputs x (n, 1), keeping every layer's activations for
        backward. The result is the network's output buffer: the next pass overwrites it."""
        a = self.activations
        a[0] = x
        last = len(self.weights) - 1
        for k, (weights, bias) in enumerate(zip(self.weights, self.biases)):
            z = a[k + 1]  # (n, fan_out)
            a[k].dot(weights, out=z)  # z = a W + b
            z += bias
            if k < last:  # the output layer is linear
                self.activate(z)
        return a[-1]

    def forward(self, x: np.ndarray, y: np.ndarray) -> float:
        """The loss: the mean squared error of the outputs for x against y, both (n, 1)."""
        error = self.error  # (n, 1)
        np.subtract(self.predict(x), y, out=error)
        return float(np.vdot(error, error)) / len(error)  # one BLAS call, cheaper than np.mean

    def backward(self) -> None:
        """Fill ``grad`` with the gradient of the last forward's loss."""
        a, deltas = self.activations, self.deltas
        np.multiply(self.error, 2.0 / len(self.error), out=deltas[-1])  # dL/d(output), (n, 1)
        for k in reversed(range(len(self.weights))):
            delta = deltas[k]  # (n, fan_out)
            a[k].T.dot(delta, out=self.weight_grads[k])  # (fan_in, fan_out): a^T delta
            self.ones.dot(delta, out=self.bias_grads[k])  # (fan_out,): 1^T delta, column sums
            if k > 0:  # chain rule into layer k - 1: dL/da = delta W^T, then times da/dz
                delta.dot(self.weights[k].T, out=deltas[k - 1])
                self.derivative(a[k], deltas[k - 1])

    def copy_params(self) -> Params:
        return [p.copy() for p in self.params]


def predict(params: Params, x: np.ndarray, activation: str) -> np.ndarray:
    """Network output (n, 1) for inputs x (n, 1)."""
    return Network(params, activation, len(x)).predict(x)


def _views(flat: np.ndarray, like: Params) -> Params:
    """Views of ``flat`` shaped like each array of ``like``, in order (C order)."""
    views, start = [], 0
    for p in like:
        views.append(flat[start:start + p.size].reshape(p.shape))
        start += p.size
    return views
