"""The maths that trains: shapes, the activations, backward against central finite
differences, one SGD step worked by hand, Adam's first steps, and the training loop against
the textbook updates written out here."""

import numpy as np
import pytest

from scratchnet.nn.network import ACTIVATIONS, Network, init_params, layer_shapes, predict
from scratchnet.nn.optim import OPTIMIZERS, SGD, Adam
from scratchnet.nn.training import fit


def random_problem(hidden_size=5, depth=1, n=7, seed=0):
    rng = np.random.default_rng(seed)
    params = init_params(layer_shapes(hidden_size, depth), rng.standard_normal, 0.7)
    params = [p + 0.1 * rng.standard_normal(p.shape) for p in params]  # non-zero biases too
    x = rng.uniform(0, 1, (n, 1))
    y = rng.uniform(0, 1, (n, 1))
    return params, x, y


@pytest.mark.parametrize("depth", [1, 2])
def test_shapes(depth):
    params, x, y = random_problem(hidden_size=4, depth=depth)
    expected = [(1, 4), (4,)] + [(4, 4), (4,)] * (depth - 1) + [(4, 1), (1,)]
    assert [p.shape for p in params] == expected
    net = Network(params, "tanh", len(x))
    assert net.predict(x).shape == (7, 1)
    assert [a.shape for a in net.activations] == [(7, 1)] + [(7, 4)] * depth + [(7, 1)]
    net.forward(x, y)
    net.backward()
    assert [g.shape for g in net.grads] == [p.shape for p in net.params] == expected
    assert all(np.shares_memory(p, net.theta) for p in net.params)  # views of one vector
    assert all(np.shares_memory(g, net.grad) for g in net.grads)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activations_and_derivatives_are_the_textbook_functions(activation):
    z = np.linspace(-3.0, 3.0, 13)[:, None] + 0.01  # no point at relu's kink
    textbook = {"tanh": (np.tanh(z), 1.0 - np.tanh(z) ** 2),
                "relu": (np.maximum(z, 0.0), (z > 0.0) * 1.0),
                "sigmoid": (1.0 / (1.0 + np.exp(-z)), np.exp(-z) / (1.0 + np.exp(-z)) ** 2)}
    activate, derivative = ACTIVATIONS[activation]
    a, delta = z.copy(), np.full_like(z, 3.0)
    activate(a)
    derivative(a, delta)
    want_a, want_slope = textbook[activation]
    np.testing.assert_allclose(a, want_a, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(delta, 3.0 * want_slope, rtol=1e-13, atol=1e-15)


def test_sigmoid_does_not_overflow():
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with np.errstate(all="raise"):
        ACTIVATIONS["sigmoid"][0](z)
    np.testing.assert_allclose(z, [[0.0, 0.0, 0.5, 1.0, 1.0]], rtol=0, atol=1e-16)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 2])
def test_the_loss_is_the_mean_squared_error_of_the_predictions(activation, depth):
    params, x, y = random_problem(depth=depth)
    net = Network(params, activation, len(x))
    loss = net.forward(x, y)
    assert loss == pytest.approx(np.mean((predict(params, x, activation) - y) ** 2), rel=1e-14)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 2])
def test_backward_matches_central_finite_differences(activation, depth):
    """The training loop's own Network: its backward against its forward's loss."""
    params, x, y = random_problem(depth=depth)
    if activation == "relu":  # keep every unit away from the kink, where the FD is ill-posed
        params = [p + 0.3 if p.ndim == 1 else p for p in params]
    net = Network(params, activation, len(x))
    net.forward(x, y)
    net.backward()
    analytic = net.grad.copy()
    step, theta = 1e-6, net.theta
    numeric = np.zeros_like(theta)
    for i in range(theta.size):
        original = theta[i]
        theta[i] = original + step
        up = net.forward(x, y)
        theta[i] = original - step
        down = net.forward(x, y)
        theta[i] = original
        numeric[i] = (up - down) / (2 * step)
    for k, (start, p) in enumerate(zip(np.cumsum([0] + [p.size for p in params]), params)):
        got, want = analytic[start:start + p.size], numeric[start:start + p.size]
        error = np.linalg.norm(got - want) / max(np.linalg.norm(got + want), 1e-12)
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
    result = fit(params, x, y, SGD(lr), 1, "tanh")  # one epoch: its loss, then one update
    assert result.losses[0] == pytest.approx(((0.1 - 0) ** 2 + (2 * a + 0.1 - 1) ** 2) / 2)
    new = result.params
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


# The training loop against the textbook: each epoch's loss is that of the epoch's weights,
# before its update, then each parameter takes the update written out below, bit for bit.

def textbook_sgd(lr):
    return lambda params, grads: [p - lr * g for p, g in zip(params, grads)]


def textbook_adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    state = {"step": 0, "m": None, "v": None}

    def update(params, grads):
        if state["m"] is None:
            state["m"] = [np.zeros_like(p) for p in params]
            state["v"] = [np.zeros_like(p) for p in params]
        state["step"] += 1
        correction1, correction2 = 1.0 - beta1 ** state["step"], 1.0 - beta2 ** state["step"]
        new = []
        for k, (p, g) in enumerate(zip(params, grads)):
            state["m"][k] = beta1 * state["m"][k] + (1.0 - beta1) * g
            state["v"][k] = beta2 * state["v"][k] + (1.0 - beta2) * g * g
            denom = np.sqrt(state["v"][k]) / np.sqrt(correction2) + eps
            new.append(p - (lr / correction1) * state["m"][k] / denom)
        return new

    return update


TEXTBOOK = {"sgd": textbook_sgd, "adam": textbook_adam}


def textbook_fit(params, x, y, update, epochs, activation):
    losses = []
    for _ in range(epochs):
        net = Network(params, activation, len(x))  # a fresh network for the epoch's weights
        loss = net.forward(x, y)
        if not np.isfinite(loss):
            break
        losses.append(loss)
        net.backward()
        params = update(params, net.grads)
    return np.array(losses), params


def test_every_optimizer_has_a_textbook_update():
    assert set(TEXTBOOK) == set(OPTIMIZERS)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("depth", [1, 2])
def test_fit_is_the_textbook_loop(activation, optimizer, depth):
    rng = np.random.default_rng(depth)
    x = np.linspace(0.0, 1.0, 25)[:, None]
    y = rng.standard_normal((25, 1))
    params = init_params(layer_shapes(6, depth), rng.standard_normal, 0.5)
    before = [p.copy() for p in params]
    losses, expected = textbook_fit(params, x, y, TEXTBOOK[optimizer](0.05), 40, activation)
    result = fit(params, x, y, OPTIMIZERS[optimizer](0.05), 40, activation)
    assert result.losses.tobytes() == losses.tobytes()
    assert all(got.tobytes() == want.tobytes() for got, want in zip(result.params, expected))
    assert all(p.tobytes() == b.tobytes() for p, b in zip(params, before))  # inputs untouched


def test_fit_stops_at_the_first_non_finite_loss_with_the_last_finite_weights():
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 1.0, 30)[:, None]
    y = rng.standard_normal((30, 1))
    params = init_params(layer_shapes(512, 1), rng.standard_normal, 0.5)
    with np.errstate(all="ignore"):
        losses, expected = textbook_fit(params, x, y, textbook_sgd(0.05), 400, "tanh")
        result = fit(params, x, y, SGD(0.05), 400, "tanh")
    assert len(losses) < 400, "the case must diverge"
    assert result.diverged_epoch == len(losses) + 1
    assert not np.isfinite(result.diverged_value)
    assert result.losses.tobytes() == losses.tobytes()
    assert all(got.tobytes() == want.tobytes() for got, want in zip(result.params, expected))
