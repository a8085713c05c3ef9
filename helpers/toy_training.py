"""A tiny seeded linear regression trained by mini-batch SGD in numpy (notebook 01).

It trains in milliseconds, so notebook 01 can run many training runs to show
tracking without waiting for a real model. Same data, configuration and code
give the same numbers, bit for bit, on one machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

# The line the data is drawn from: targets = features @ TRUE_WEIGHTS + TRUE_BIAS + noise.
TRUE_WEIGHTS = np.array([2.0, -1.0, 0.5])
TRUE_BIAS = 1.0

# A run counts as diverged once its train loss exceeds this multiple of the loss
# of the initial weights (or becomes infinite or NaN).
DIVERGENCE_FACTOR = 1000.0

EpochCallback = Callable[[int, float, float], None]


class TrainingDivergedError(ArithmeticError):
    """The loss exploded, almost always because the learning rate is too large."""


@dataclass(frozen=True)
class ToyData:
    """Train and validation splits of the synthetic regression problem."""

    train_features: np.ndarray
    train_targets: np.ndarray
    val_features: np.ndarray
    val_targets: np.ndarray

    def as_params(self) -> dict[str, int]:
        """Return the split sizes, to be logged as parameters."""
        return {"n_train": len(self.train_targets), "n_val": len(self.val_targets)}


def make_toy_data(
    n_samples: int = 200, noise: float = 0.5, seed: int = 0, val_fraction: float = 0.25
) -> ToyData:
    """Draw standard normal features and noisy linear targets, split into train and validation.

    `noise` is the standard deviation of the Gaussian noise added to each target.
    """
    if not isinstance(n_samples, int) or n_samples < 8:
        raise ValueError(f"n_samples={n_samples!r} is invalid. Use an integer of at least 8")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise!r} is invalid. Use a standard deviation >= 0")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction!r} is invalid. Use a value between 0 and 1")
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_samples, len(TRUE_WEIGHTS)))
    targets = features @ TRUE_WEIGHTS + TRUE_BIAS + rng.normal(scale=noise, size=n_samples)
    n_val = max(1, round(n_samples * val_fraction))
    return ToyData(features[n_val:], targets[n_val:], features[:n_val], targets[:n_val])


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid. Use an integer of at least 1")


@dataclass(frozen=True)
class ToyConfig:
    """Hyperparameters of one toy training run. Every field is logged as a parameter."""

    learning_rate: float = 0.05
    epochs: int = 20
    batch_size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f"learning_rate={rate!r} is invalid. Use a number above 0, e.g. 0.05")
        if not math.isfinite(rate):
            raise ValueError(f"learning_rate={rate!r} is invalid. Use a finite number, e.g. 0.05")
        _check_positive_int("epochs", self.epochs)
        _check_positive_int("batch_size", self.batch_size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} is invalid. Use an integer >= 0")

    def as_params(self) -> dict[str, int | float]:
        """Return the hyperparameters as a flat dict for `mlflow.log_params`."""
        return asdict(self)


@dataclass
class ToyResult:
    """Loss histories and fitted weights of one toy training run (losses in squared target units)."""

    config: ToyConfig
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(len(TRUE_WEIGHTS)))
    bias: float = 0.0

    @property
    def val_rmse(self) -> float:
        """Root mean squared error on the validation split after the last epoch."""
        return math.sqrt(self.val_loss[-1])


def _mse(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, bias: float) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean((features @ weights + bias - targets) ** 2))


def _sgd_epoch(result: ToyResult, data: ToyData, rng: np.random.Generator) -> None:
    """Update the weights once per mini-batch, visiting the train rows in a shuffled order."""
    order = rng.permutation(len(data.train_targets))
    rate = result.config.learning_rate
    for start in range(0, len(order), result.config.batch_size):
        batch = order[start : start + result.config.batch_size]
        features, targets = data.train_features[batch], data.train_targets[batch]
        with np.errstate(over="ignore", invalid="ignore"):
            error = features @ result.weights + result.bias - targets
            result.weights = result.weights - rate * 2 * features.T @ error / len(batch)
            result.bias = result.bias - rate * 2 * float(np.mean(error))


def train_toy(
    config: ToyConfig, data: ToyData | None = None, on_epoch: EpochCallback | None = None
) -> ToyResult:
    """Fit targets = features @ weights + bias by mini-batch SGD on the mean squared error.

    `config.seed` sets the initial weights and the batch order. After every
    epoch the train and validation MSE are appended to the result and passed
    to `on_epoch(epoch, train_loss, val_loss)`, with epochs counted from 0.
    Raises TrainingDivergedError when the train loss grows beyond
    DIVERGENCE_FACTOR times its initial value or a loss becomes NaN.
    """
    data = data if data is not None else make_toy_data()
    rng = np.random.default_rng(config.seed)
    result = ToyResult(config, weights=rng.normal(scale=0.1, size=data.train_features.shape[1]))
    initial_loss = _mse(data.train_features, data.train_targets, result.weights, result.bias)
    for epoch in range(config.epochs):
        _sgd_epoch(result, data, rng)
        train_loss = _mse(data.train_features, data.train_targets, result.weights, result.bias)
        val_loss = _mse(data.val_features, data.val_targets, result.weights, result.bias)
        if not train_loss <= DIVERGENCE_FACTOR * initial_loss or not math.isfinite(val_loss):
            raise TrainingDivergedError(
                f"training diverged: the train loss reached {train_loss:.3g} at epoch {epoch} "
                f"(it started at {initial_loss:.3g}) with learning_rate={config.learning_rate}. "
                "Use a smaller learning rate."
            )
        result.train_loss.append(train_loss)
        result.val_loss.append(val_loss)
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss)
    return result
