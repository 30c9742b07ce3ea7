"""The training loop's in-place Workspace and optimisers give the same numbers, bit for
bit, as the readable forward/backward and the textbook updates written out below."""

import itertools

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from conftest import compose_config
from scratchnet.nn.network import backward, forward, init_params, layer_shapes, mse
from scratchnet.nn.optim import make_optimizer
from scratchnet.nn.training import fit, initial_state


def reference_sgd(lr):
    return lambda params, grads: [p - lr * g for p, g in zip(params, grads)]


def reference_adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
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


def reference_fit(params, x, y, update, epochs, activation):
    losses = []
    for _ in range(epochs):
        y_hat, outputs = forward(params, x, activation)
        loss = mse(y_hat, y)
        if not np.isfinite(loss):
            break
        losses.append(loss)
        params = update(params, backward(params, outputs, y_hat, y, activation))
    return np.array(losses), params


CASES = list(itertools.product(["tanh", "relu", "sigmoid"], ["sgd", "adam"], [1, 2, 3],
                               [1, 16, 33]))


@pytest.mark.parametrize(("activation", "optimizer", "depth", "hidden"), CASES)
def test_workspace_loop_is_bit_identical_to_the_readable_loop(activation, optimizer, depth,
                                                              hidden):
    rng = np.random.default_rng(depth * 100 + hidden)
    x = np.linspace(0.0, 1.0, 25)[:, None]
    y = rng.standard_normal((25, 1))
    params = init_params(layer_shapes(hidden, depth), rng.standard_normal, 0.5)
    lr = 0.05
    update = reference_sgd(lr) if optimizer == "sgd" else reference_adam(lr)
    losses, expected = reference_fit(params, x, y, update, 150, activation)
    with np.errstate(all="ignore"):
        result = fit(params, x, y, make_optimizer(optimizer, lr), 150, activation)
    assert result.losses.tobytes() == losses.tobytes()
    for got, want in zip(result.params, expected):
        assert got.shape == want.shape and got.tobytes() == np.ascontiguousarray(want).tobytes()


def test_workspace_stops_at_the_same_divergent_epoch_with_the_same_weights():
    rng = np.random.default_rng(7)
    x = np.linspace(0.0, 1.0, 30)[:, None]
    y = rng.standard_normal((30, 1))
    params = init_params(layer_shapes(512, 1), rng.standard_normal, 0.5)
    with np.errstate(all="ignore"):
        losses, expected = reference_fit(params, x, y, reference_sgd(0.05), 400, "tanh")
        result = fit(params, x, y, make_optimizer("sgd", 0.05), 400, "tanh")
    assert len(losses) < 400, "the case must diverge"
    assert result.diverged_epoch == len(losses) + 1
    assert result.losses.tobytes() == losses.tobytes()
    assert all(g.tobytes() == np.ascontiguousarray(w).tobytes()
               for g, w in zip(result.params, expected))


def test_fit_leaves_the_initial_parameters_untouched():
    rng = np.random.default_rng(3)
    params = init_params(layer_shapes(8, 1), rng.standard_normal, 0.5)
    before = [p.copy() for p in params]
    fit(params, np.linspace(0, 1, 10)[:, None], np.ones((10, 1)), make_optimizer("sgd", 0.1),
        20, "tanh")
    assert all(np.array_equal(p, b) for p, b in zip(params, before))


def test_the_articles_run_is_bit_identical_to_the_readable_loop():
    """All 3000 epochs of the default config (60 points, 16 tanh units, SGD lr 0.05)."""
    config = compose_config()
    curve, params = initial_state(config)
    x, y = curve.t[:, None], curve.y_obs[:, None]
    losses, expected = reference_fit(params, x, y, reference_sgd(config.train.lr),
                                     config.train.epochs, "tanh")
    result = fit(params, x, y, make_optimizer("sgd", config.train.lr), config.train.epochs, "tanh")
    assert len(losses) == 3000 and result.losses.tobytes() == losses.tobytes()
    for got, want in zip(result.params, expected):
        assert got.tobytes() == np.ascontiguousarray(want).tobytes()


@pytest.mark.parametrize("n", [1, 2, 3, 25, 60, 61, 1000, 2**20 + 1])
def test_the_output_gradient_rewrite_is_exact(n):
    """The workspace computes backward's 2 * e / n as e / (n / 2). Exact whenever the loss
    was finite (backward runs only then): |e| < sqrt(max float), so 2 * e is exact, n / 2
    is exact, and both divisions round the same real number. Checked here where rounding
    is most fragile: subnormals, the smallest normals, the largest allowed errors, ties."""
    rng = np.random.default_rng(n)
    tiny, big = np.finfo(float).smallest_subnormal, np.sqrt(np.finfo(float).max)
    special = np.array([0.0, -0.0, tiny, 3 * tiny, np.finfo(float).tiny, big, -big,
                        np.nextafter(big, 0), 1.0, 1 / 3, 0.1, -2.5])
    mantissas = rng.uniform(1.0, 2.0, 20000) * rng.choice([-1.0, 1.0], 20000)
    exponents = rng.integers(-1074, 511, 20000)  # every binade up to sqrt(max)
    e = np.concatenate([special, np.ldexp(mantissas, exponents)])[:, None]
    assert np.all(np.abs(e) <= big)
    assert (e / np.array(n / 2)).tobytes() == (2.0 * e / n).tobytes()


@pytest.mark.parametrize("hidden", [2, 3, 8, 16, 17, 33, 128, 1024])
def test_the_input_layer_rewrite_is_exact(hidden):
    """The workspace computes forward's x @ W1 + b1 as [x, 1] @ [W1; b1], one BLAS product.
    Checked on this machine's BLAS, at every point count from 2 to 130 and some to 3000
    (blocking changes with the sizes), with weights of three magnitudes, bit for bit."""
    rng = np.random.default_rng(hidden)
    with threadpool_limits(limits=1):  # as the training loop runs
        check_input_layer_rewrite(rng, hidden)


def check_input_layer_rewrite(rng, hidden):
    for n in [*range(2, 131), 257, 1000, 3000]:
        x = np.sort(rng.uniform(-5.0, 5.0, n))[:, None]
        stacked = rng.standard_normal((2, hidden)) * rng.choice([1e-3, 1.0, 30.0])
        weights, bias = stacked[:1], stacked[1]
        want = x @ weights + bias
        got = np.hstack([x, np.ones_like(x)]) @ stacked
        assert got.tobytes() == want.tobytes(), f"n={n}"
