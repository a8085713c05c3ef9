"""MLflow logging steps of the wind chill workflow, shared by notebooks 02 and 04."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from helpers import plots
from helpers.model import WindChillNet, count_parameters
from helpers.training import EpochCallback, TrainConfig, TrainResult, predict, rmse, train
from helpers.windchill import DataSettings, Split, make_splits

logger = logging.getLogger(__name__)

# Rows of the input example logged with every model: several rows, so the
# exported program accepts any batch size (one row would pin the batch to 1).
EXAMPLE_ROWS = np.array(
    [[-20.0, 30.0], [-5.0, 10.0], [0.0, 50.0], [5.0, 5.0], [-35.0, 70.0]], dtype=np.float32
)


def pip_requirements() -> list[str]:
    """Return exact pins of what the logged model needs, so MLflow skips inference."""
    import mlflow
    import torch

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={np.__version__}",
    ]


def log_model(model: WindChillNet, name: str = "model", input_example: np.ndarray = EXAMPLE_ROWS):
    """Log a WindChillNet with a float32 input example and its signature; return ModelInfo.

    MLflow infers the signature from the example and exports the network with
    torch.export (the "pt2" format). The explicit pip requirements spare
    MLflow a slow, network-dependent inference of them.
    """
    import mlflow

    example = np.asarray(input_example)
    if example.dtype != np.float32 or example.ndim != 2 or example.shape[1] != 2:
        raise ValueError(
            f"input_example has dtype {example.dtype} and shape {example.shape}; pass float32 "
            "rows of (temperature degC, wind km/h), e.g. rows.astype(np.float32)"
        )
    return mlflow.pytorch.log_model(
        model,
        name=name,
        input_example=example,
        pip_requirements=pip_requirements(),
    )


def log_figures(result: TrainResult, split: Split) -> None:
    """Log the loss curve, predicted vs true and the error map into the active run."""
    import mlflow

    predicted = predict(result.model, split.features)
    mlflow.log_figure(plots.loss_curve(result.train_loss, result.val_loss), "plots/loss_curve.png")
    mlflow.log_figure(plots.predicted_vs_true(predicted, split.targets), "plots/predicted_vs_true.png")
    figure = plots.error_map(lambda rows: predict(result.model, rows))
    mlflow.log_figure(figure, "plots/error_map.png")


@dataclass
class RunSummary:
    """What one tracked training run produced."""

    run_id: str
    model_uri: str
    test_rmse_c: float
    result: TrainResult


def tracked_training(
    config: TrainConfig,
    splits: dict[str, Split],
    data_settings: DataSettings,
    run_name: str,
    nested: bool = False,
    on_epoch: EpochCallback | None = None,
    synchronous: bool = True,
    log_system_metrics: bool = True,
) -> RunSummary:
    """Run one training inside a new MLflow run that logs params, metrics, plots and the model.

    The run gets the config and data settings as parameters, the per-epoch
    losses from `train`, `test_rmse_c` (degC, against the formula), three
    figures under `plots/` and the model, and system metrics unless disabled.
    """
    import mlflow

    with mlflow.start_run(
        run_name=run_name, nested=nested, log_system_metrics=log_system_metrics
    ) as run:
        mlflow.log_params({**config.as_params(), **data_settings.as_params()})
        result = train(
            config, splits["train"], splits["validation"], on_epoch=on_epoch, synchronous=synchronous
        )
        mlflow.log_param("n_parameters", count_parameters(result.model))
        test = splits["test"]
        test_rmse = rmse(predict(result.model, test.features), test.targets)
        mlflow.log_metric("test_rmse_c", test_rmse)
        log_figures(result, test)
        info = log_model(result.model)
    logger.info(
        "run %s logged model %s (test RMSE %.4f degC)", run.info.run_id, info.model_uri, test_rmse
    )
    return RunSummary(run.info.run_id, info.model_uri, test_rmse, result)


SWEEP_LEARNING_RATES = (0.003, 0.01)
SWEEP_WIDTHS = (16, 32)


def sweep_run_name(config: TrainConfig) -> str:
    """Return the run name a sweep gives one config, e.g. `lr=0.01 width=32`."""
    return f"lr={config.learning_rate} width={config.hidden_layers[0]}"


def sweep_configs(epochs: int = 40) -> list[TrainConfig]:
    """Return the course's 2 x 2 sweep over learning rate and hidden layer width."""
    return [
        TrainConfig(hidden_layers=(width, width), learning_rate=lr, epochs=epochs)
        for lr in SWEEP_LEARNING_RATES
        for width in SWEEP_WIDTHS
    ]


def run_sweep(
    experiment: str,
    configs: list[TrainConfig],
    data_settings: DataSettings = DataSettings(),
    parent_name: str = "sweep",
    synchronous: bool = True,
) -> tuple[str, list[RunSummary]]:
    """Train every config as a nested run under one parent run; return (parent run ID, runs).

    The parent run records the data settings as parameters. Every child run is
    a `tracked_training` run, so it logs its metrics, figures and model.
    """
    import mlflow

    from helpers.store import use_experiment

    use_experiment(experiment)
    splits = make_splits(data_settings)
    summaries = []
    with mlflow.start_run(run_name=parent_name) as parent:
        mlflow.log_params(data_settings.as_params())
        for config in configs:
            summary = tracked_training(
                config, splits, data_settings, sweep_run_name(config), nested=True,
                synchronous=synchronous,
            )
            summaries.append(summary)
    return parent.info.run_id, summaries
