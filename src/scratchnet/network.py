"""A fully connected network as pure functions on arrays: init, forward, backward.

Parameters are a flat list ``[W1, b1, W2, b2, ...]``: for ``depth`` hidden layers of
``hidden_size`` units, W1 is (1, h), hidden-to-hidden W is (h, h), the output W is (h, 1);
each b has shape (fan_out,). Activations and their derivatives sit side by side in two
tables; each derivative is written in terms of the activation's *output* ``a``, which is
what the backward pass keeps (as scikit-learn's MLP does).
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
