"""The training loop and the one function that turns a config into a trained network.

Imports numpy (and threadpoolctl) and the math modules only; the config arrives as a
plain dataclass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from .data import Curve, make_curve
from .network import Network, Params, init_params, layer_shapes, predict
from .optim import ConstantRate, HalveOnPlateau, make_optimizer
from .rrng import RRandom

if TYPE_CHECKING:
    from ..config import Config, TrainConfig


@dataclass(frozen=True)
class FitResult:
    losses: np.ndarray  # (epochs_run,) MSE against the observations, epoch 1 first
    params: Params  # the weights after the last finite epoch's update
    diverged_epoch: int | None = None  # 1-based epoch whose loss was not finite
    diverged_value: float | None = None
    rates: np.ndarray | None = None  # (epochs_run,) the learning rate of each epoch's update
    halvings: int = 0  # times the schedule halved the rate
    stopped_epoch: int | None = None  # 1-based epoch after which should_stop ended training


@dataclass(frozen=True)
class TrainResult:
    curve: Curve
    fit: FitResult
    true_mse: float  # trained network against the noise-free curve on the dense grid
    train_seconds: float  # wall time of the training loop alone

    @property
    def diverged(self) -> bool:
        return self.fit.diverged_epoch is not None

    @property
    def initial_mse(self) -> float:
        return float(self.fit.losses[0])

    @property
    def final_mse(self) -> float:
        return float(self.fit.losses[-1])


# (epoch, loss) -> stop now? Called after the update of every check_every-th epoch (1-based)
# but the last, with that epoch's loss; e.g. a search's pruner.
ShouldStop = Callable[[int, float], bool]


def fit(params: Params, x: np.ndarray, y: np.ndarray, optimizer, epochs: int,
        activation: str, schedule: ConstantRate | HalveOnPlateau | None = None,
        should_stop: ShouldStop | None = None, check_every: int = 1) -> FitResult:
    """Full-batch training. x, y: (n, 1). The loss of each epoch is the MSE of that epoch's
    forward pass, before its update, as in the article. The schedule (by default a constant
    rate) sets the optimizer's rate and decides what a non-finite loss does; ``should_stop``
    answering True ends training (the weights are then those a run of that many epochs would
    end with)."""
    schedule = schedule or ConstantRate(optimizer, epochs)
    losses = np.empty(epochs)
    # One BLAS thread: these matrices are far too small for threads to pay. Overflow to inf
    # and inf - inf are how divergence shows, and the loop stops on the loss they make.
    with threadpool_limits(limits=1), np.errstate(over="ignore", invalid="ignore"):
        return _fit_loop(params, x, y, optimizer, losses, activation, schedule, should_stop,
                         check_every)


def _fit_loop(params: Params, x: np.ndarray, y: np.ndarray, optimizer, losses: np.ndarray,
              activation: str, schedule: ConstantRate | HalveOnPlateau,
              should_stop: ShouldStop | None = None, check_every: int = 1) -> FitResult:
    """Fills ``losses`` epoch by epoch. A non-finite loss stops training, unless the schedule
    puts back earlier weights at a lower rate: that epoch then starts from them."""
    net = Network(params, activation, len(x))  # a copy of params, updated in place
    for epoch in range(len(losses)):
        loss = net.forward(x, y)
        if not math.isfinite(loss):
            if not schedule.recover(net.theta):
                return FitResult(losses[:epoch].copy(), net.copy_params(), epoch + 1, loss,
                                 schedule.rates(epoch), schedule.halvings)
            loss = net.forward(x, y)  # of weights that had a finite loss: the same loss
        losses[epoch] = loss
        schedule.observe(epoch, loss, net.theta)  # may change the rate of this update
        net.backward()
        optimizer.step(net.theta, net.grad)
        # asked before the last epoch only: a stop after it would save nothing
        checkpoint = (should_stop is not None and (epoch + 1) % check_every == 0
                      and epoch + 1 < len(losses))
        if checkpoint and should_stop(epoch + 1, loss):
            return FitResult(losses[:epoch + 1].copy(), net.copy_params(),
                             rates=schedule.rates(epoch + 1), halvings=schedule.halvings,
                             stopped_epoch=epoch + 1)
    return FitResult(losses, net.copy_params(), rates=schedule.rates(len(losses)),
                     halvings=schedule.halvings)


def make_schedule(train: TrainConfig, optimizer) -> ConstantRate | HalveOnPlateau:
    """The learning-rate schedule ``train.lr_schedule`` names, driving ``optimizer``."""
    if train.lr_schedule == "constant":
        return ConstantRate(optimizer, train.epochs)
    return HalveOnPlateau(optimizer, train.epochs, train.plateau_tol, train.patience,
                          train.max_halvings)


Draw = Callable[[int], np.ndarray]  # k -> k standard normals


def random_streams(seed: int, kind: str) -> tuple[Draw, Draw]:
    """Two functions k -> k standard normals: one for the data noise, one for the weights.

    ``r``: one R stream shared in the article's order (noise first, then weights), so
    ``set.seed(seed)`` in R gives the same numbers. ``numpy``: independent Generator
    streams spawned from the seed, so the data does not change with the network size.
    """
    if kind == "r":
        stream = RRandom(seed)
        return stream.rnorm, stream.rnorm
    data_seed, init_seed = np.random.SeedSequence(seed).spawn(2)
    data_gen, init_gen = np.random.default_rng(data_seed), np.random.default_rng(init_seed)
    return data_gen.standard_normal, init_gen.standard_normal


def initial_state(config: Config) -> tuple[Curve, Params]:
    """The run's data and initial weights, drawn as the config says (noise first)."""
    draw_noise, draw_weights = random_streams(config.seed, config.data.rng)
    curve = make_curve(draw_noise(config.data.n_points), config.data.peak,
                       config.data.width, config.data.noise)
    params = init_params(layer_shapes(config.model.hidden_size, config.model.depth),
                         draw_weights, config.model.init_scale)
    return curve, params


def train_network(config: Config, should_stop: ShouldStop | None = None) -> TrainResult:
    """Data, initial weights and training, all determined by the config; ``should_stop`` is
    asked every ``tracking.log_every`` epochs (the loss history's resolution)."""
    curve, params = initial_state(config)
    optimizer = make_optimizer(config.train.optimizer, config.train.lr)
    schedule = make_schedule(config.train, optimizer)
    start = time.perf_counter()
    result = fit(params, curve.t[:, None], curve.y_obs[:, None], optimizer,
                 config.train.epochs, config.model.activation, schedule,
                 should_stop=should_stop, check_every=config.tracking.log_every)
    seconds = time.perf_counter() - start
    with np.errstate(all="ignore"):  # a diverged network may overflow here; it is scored nan
        y_dense = predict(result.params, curve.t_dense[:, None], config.model.activation)[:, 0]
        true_mse = float(np.mean((y_dense - curve.y_true_dense) ** 2))
    if result.diverged_epoch is None and not np.isfinite(true_mse):
        # Every recorded loss is that of the weights *before* its epoch's update, so the
        # last update can blow the weights up unseen. The trained network is then as
        # diverged as if the next epoch's loss had been computed: record it so.
        result = replace(result, diverged_epoch=len(result.losses) + 1, diverged_value=true_mse)
    return TrainResult(curve, result, true_mse, seconds)
