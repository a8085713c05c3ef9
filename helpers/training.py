"""Training loop of notebook 02, with MLflow logging per epoch."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from helpers.model import WindChillNet
from helpers.windchill import Split, Standardizer

logger = logging.getLogger(__name__)

# MLflow batches async writes for this many seconds when the variable is set.
BUFFERING_VARIABLE = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"

# Called after every epoch with (epoch, train_loss, val_loss).
EpochCallback = Callable[[int, float, float], None]

# Choices the loop does not let a config change; logged so a run records its whole recipe.
FIXED_CHOICES = {"optimizer": "adam", "lr_schedule": "cosine", "loss": "mse_standardized"}


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run; every field is logged as a parameter."""

    hidden_layers: tuple[int, ...] = (32, 32)
    activation: str = "tanh"
    learning_rate: float = 0.01
    epochs: int = 40
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        # A list from the caller becomes a tuple, so the config stays hashable.
        object.__setattr__(self, "hidden_layers", tuple(self.hidden_layers))
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs={self.epochs}, batch_size={self.batch_size}; both must be at least 1"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate} must be a positive number")

    def as_params(self) -> dict[str, str | int | float]:
        """Return the hyperparameters as MLflow parameters, with the loop's fixed choices."""
        params = asdict(self)
        params["hidden_layers"] = "x".join(str(width) for width in self.hidden_layers)
        params.update(FIXED_CHOICES)
        return params



@dataclass
class TrainResult:
    """The trained model and its per-epoch loss history (MSE in standardised units)."""

    model: WindChillNet
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def to_tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """Return float32 tensors of shape (n, 2) and (n, 1) for one split."""
    features = torch.tensor(split.features, dtype=torch.float32)
    targets = torch.tensor(split.targets, dtype=torch.float32).reshape(-1, 1)
    return features, targets


def build_model(config: TrainConfig, train: Split) -> WindChillNet:
    """Seed torch and build a network whose scalers are fitted on `train`."""
    torch.manual_seed(config.seed)
    return WindChillNet(
        config.hidden_layers,
        config.activation,
        input_scaler=Standardizer.fit(train.features),
        target_scaler=Standardizer.fit(train.targets.reshape(-1, 1)),
    )


def standardized_mse(model: WindChillNet, features: torch.Tensor, targets: torch.Tensor):
    """Return the mean squared error in standardised target units."""
    standardized = (targets - model.target_mean) / model.target_std
    return torch.mean((model.forward_standardized(features) - standardized) ** 2)


def _run_epoch(
    model: WindChillNet,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """Run one shuffled pass over the training rows; return the mean batch loss."""
    model.train()
    order = torch.randperm(len(features), generator=generator)
    total = 0.0
    for start in range(0, len(features), batch_size):
        batch = order[start : start + batch_size]
        optimizer.zero_grad()
        loss = standardized_mse(model, features[batch], targets[batch])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / len(features)


def _require_active_run(synchronous: bool) -> None:
    """Raise unless an MLflow run is active; warn when async logging is unbuffered."""
    import mlflow

    if mlflow.active_run() is None:
        raise RuntimeError(
            "no active MLflow run; call train() inside `with mlflow.start_run():` "
            "or pass log_to_mlflow=False"
        )
    if not synchronous and not os.environ.get(BUFFERING_VARIABLE):
        logger.warning(
            "synchronous=False without %s queues one write per epoch, which is slower than "
            "synchronous logging; set %s=1 to batch the writes each second",
            BUFFERING_VARIABLE, BUFFERING_VARIABLE,
        )


def train(
    config: TrainConfig,
    train_split: Split,
    validation_split: Split,
    log_to_mlflow: bool = True,
    on_epoch: EpochCallback | None = None,
    synchronous: bool = True,
) -> TrainResult:
    """Train a WindChillNet with Adam and a cosine learning-rate schedule.

    With `log_to_mlflow`, logs `train_loss` and `val_loss` (MSE in standardised
    units) and `val_rmse_c` (degC) at step = epoch into the active run, which
    must exist. The loop is otherwise identical, so the two can be timed
    against each other. With `synchronous=False` the metrics go through
    MLflow's async queue, and every epoch is stored before this returns.
    """
    if log_to_mlflow:
        import mlflow

        _require_active_run(synchronous)
    model = build_model(config, train_split)
    features, targets = to_tensors(train_split)
    val_features, val_targets = to_tensors(validation_split)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs)
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult(model)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        train_loss = _run_epoch(model, optimizer, features, targets, config.batch_size, generator)
        schedule.step()
        model.eval()
        with torch.no_grad():
            val_loss = standardized_mse(model, val_features, val_targets).item()
        result.train_loss.append(train_loss)
        result.val_loss.append(val_loss)
        if log_to_mlflow:
            val_rmse = float(np.sqrt(val_loss)) * float(model.target_std)
            metrics = {"train_loss": train_loss, "val_loss": val_loss, "val_rmse_c": val_rmse}
            mlflow.log_metrics(metrics, step=epoch, synchronous=synchronous)
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss)
    if log_to_mlflow and not synchronous:
        mlflow.flush_async_logging()
    result.seconds = time.perf_counter() - started
    logger.info("trained %s in %.2f s", config, result.seconds)
    return result


def predict(model: WindChillNet, features: np.ndarray) -> np.ndarray:
    """Return the model's wind chill in degC, shape (n,), for raw (temperature, wind) rows."""
    model.eval()
    with torch.no_grad():
        output = model(torch.as_tensor(np.asarray(features), dtype=torch.float32))
    return output.numpy().reshape(-1)


def rmse(predicted: np.ndarray, expected: np.ndarray) -> float:
    """Return the root mean squared error, in the unit of the inputs."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    expected = np.asarray(expected, dtype=np.float64).reshape(-1)
    if predicted.shape != expected.shape or predicted.size == 0:
        raise ValueError(
            f"predicted has {predicted.size} values and expected {expected.size}; "
            "pass two non-empty arrays of the same length"
        )
    return float(np.sqrt(np.mean((predicted - expected) ** 2)))
