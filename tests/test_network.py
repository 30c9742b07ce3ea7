"""The math: shapes, backward pass against central finite differences, one SGD step and
one Adam step worked by hand."""

import numpy as np
import pytest

from scratchnet.nn.network import (
    ACTIVATIONS,
    backward,
    forward,
    init_params,
    layer_shapes,
    mse,
    predict,
)
from scratchnet.nn.optim import SGD, Adam


def random_problem(hidden_size=5, depth=1, n=7, seed=0):
    rng = np.random.default_rng(seed)
    params = init_params(layer_shapes(hidden_size, depth), rng.standard_normal, 0.7)
    params = [p + 0.1 * rng.standard_normal(p.shape) for p in params]  # non-zero biases too
    x = rng.uniform(0, 1, (n, 1))
    y = rng.uniform(0, 1, (n, 1))
    return params, x, y


def loss_at(params, x, y, activation):
    return mse(predict(params, x, activation), y)


@pytest.mark.parametrize("depth", [1, 2])
def test_shapes(depth):
    params, x, _ = random_problem(hidden_size=4, depth=depth)
    expected = [(1, 4), (4,)] + [(4, 4), (4,)] * (depth - 1) + [(4, 1), (1,)]
    assert [p.shape for p in params] == expected
    y_hat, outputs = forward(params, x, "tanh")
    assert y_hat.shape == (7, 1)
    assert [o.shape for o in outputs] == [(7, 1)] + [(7, 4)] * depth


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 2])
def test_backward_matches_central_finite_differences(activation, depth):
    params, x, y = random_problem(depth=depth)
    if activation == "relu":  # keep every unit away from the kink, where the FD is ill-posed
        params = [p + 0.3 if p.ndim == 1 else p for p in params]
    y_hat, outputs = forward(params, x, activation)
    grads = backward(params, outputs, y_hat, y, activation)
    step = 1e-6
    for k, p in enumerate(params):
        numeric = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            up = [q.copy() for q in params]
            down = [q.copy() for q in params]
            up[k][index] += step
            down[k][index] -= step
            numeric[index] = (loss_at(up, x, y, activation) - loss_at(down, x, y, activation)) / (2 * step)
        error = np.linalg.norm(grads[k] - numeric) / max(np.linalg.norm(grads[k] + numeric), 1e-12)
        assert error < 1e-6, f"parameter {k}: relative error {error:.2e}"


def test_one_sgd_step_worked_by_hand():
    # One hidden tanh unit, two points. W1=0.5, b1=0, W2=2, b2=0.1; x=(0, 1), y=(0, 1).
    params = [np.array([[0.5]]), np.array([0.0]), np.array([[2.0]]), np.array([0.1])]
    x = np.array([[0.0], [1.0]])
    y = np.array([[0.0], [1.0]])
    a = np.tanh(0.5)  # hidden output at x=1; at x=0 it is tanh(0)=0
    y_hat = np.array([0.1, 2 * a + 0.1])
    d = 2 * (y_hat - y[:, 0]) / 2  # dL/dy_hat for MSE over n=2
    by_hand = {
        "W2": d[1] * a, "b2": d[0] + d[1],
        "W1": d[1] * 2 * (1 - a**2) * 1.0, "b1": (d[0] * 2 * 1.0) + d[1] * 2 * (1 - a**2),
    }
    lr = 0.1
    out, outputs = forward(params, x, "tanh")
    assert mse(out, y) == pytest.approx(((0.1 - 0) ** 2 + (2 * a + 0.1 - 1) ** 2) / 2)
    theta = np.concatenate([p.ravel() for p in params])
    SGD(lr).step(theta, np.concatenate([g.ravel() for g in backward(params, outputs, out, y, "tanh")]))
    new = [theta[0:1].reshape(1, 1), theta[1:2], theta[2:3].reshape(1, 1), theta[3:4]]
    assert new[0][0, 0] == pytest.approx(0.5 - lr * by_hand["W1"], rel=1e-15)
    assert new[1][0] == pytest.approx(0.0 - lr * by_hand["b1"], abs=1e-15)
    assert new[2][0, 0] == pytest.approx(2.0 - lr * by_hand["W2"], rel=1e-15)
    assert new[3][0] == pytest.approx(0.1 - lr * by_hand["b2"], rel=1e-15)


def test_adam_first_steps_as_pytorch_defines_them():
    # After step 1 the bias-corrected moments are g and g^2, so the step is lr*g/(|g|+eps).
    g1, g2 = np.array([0.3, -2.0]), np.array([-0.1, 1.0])
    adam = Adam(lr=0.01)
    theta = np.array([1.0, 1.0])
    adam.step(theta, g1.copy())  # the gradient buffer is scratch space
    p1 = theta.copy()
    assert p1 == pytest.approx(1.0 - 0.01 * g1 / (np.abs(g1) + 1e-8), rel=1e-15)
    adam.step(theta, g2.copy())
    p2 = theta
    m = 0.9 * (0.1 * g1) + 0.1 * g2
    v = 0.999 * (0.001 * g1**2) + 0.001 * g2**2
    expected = p1 - (0.01 / (1 - 0.9**2)) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**2) + 1e-8)
    assert p2 == pytest.approx(expected, rel=1e-14)


def test_init_draws_weights_layer_by_layer_in_column_order():
    draws = iter(np.arange(1.0, 100.0))
    params = init_params(layer_shapes(2, 2), lambda k: np.array([next(draws) for _ in range(k)]), 1.0)
    assert params[0].tolist() == [[1.0, 2.0]]
    assert params[2].tolist() == [[3.0, 5.0], [4.0, 6.0]]  # R's matrix() fills by column
    assert params[4].tolist() == [[7.0], [8.0]]
    assert all(not b.any() for b in params[1::2])
