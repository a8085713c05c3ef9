"""The training loop: determinism, learning, per-epoch MLflow logging and input checks."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from helpers.training import (
    FIXED_CHOICES, TrainConfig, build_model, predict, rmse, to_tensors, train,
)
from helpers.windchill import Split
from windchill_fixtures import empty_database, small_splits, tracking_store  # noqa: F401

FAST = TrainConfig(hidden_layers=(8, 8), epochs=4, batch_size=64)


def steps_of(run_id: str, key: str) -> list[int]:
    return sorted(point.step for point in MlflowClient().get_metric_history(run_id, key))


def test_to_tensors_gives_float32_columns(small_splits):
    features, targets = to_tensors(small_splits["train"])
    assert features.dtype == torch.float32
    assert targets.dtype == torch.float32
    assert tuple(features.shape) == (len(small_splits["train"]), 2)
    assert tuple(targets.shape) == (len(small_splits["train"]), 1)


def test_build_model_fits_scalers_on_train(small_splits):
    model = build_model(FAST, small_splits["train"])
    mean = small_splits["train"].features.mean(axis=0)
    np.testing.assert_allclose(model.input_mean.numpy(), mean, rtol=1e-5)
    assert float(model.target_mean) == pytest.approx(small_splits["train"].targets.mean(), rel=1e-5)


def test_same_seed_gives_same_losses(small_splits):
    first = train(FAST, small_splits["train"], small_splits["validation"], log_to_mlflow=False)
    second = train(FAST, small_splits["train"], small_splits["validation"], log_to_mlflow=False)
    assert first.train_loss == second.train_loss
    assert first.val_loss == second.val_loss


def test_other_seed_gives_other_losses(small_splits):
    first = train(FAST, small_splits["train"], small_splits["validation"], log_to_mlflow=False)
    other = TrainConfig(hidden_layers=(8, 8), epochs=4, seed=1)
    second = train(other, small_splits["train"], small_splits["validation"], log_to_mlflow=False)
    assert first.val_loss != second.val_loss


def test_training_reduces_validation_loss(small_splits):
    config = TrainConfig(hidden_layers=(16, 16), epochs=15, batch_size=32)
    result = train(config, small_splits["train"], small_splits["validation"], log_to_mlflow=False)
    assert len(result.val_loss) == 15
    assert result.val_loss[-1] < result.val_loss[0] / 5
    assert result.seconds > 0


def test_trained_model_beats_mean_baseline(small_splits):
    config = TrainConfig(hidden_layers=(16, 16), epochs=15, batch_size=32)
    result = train(config, small_splits["train"], small_splits["validation"], log_to_mlflow=False)
    test = small_splits["test"]
    baseline = rmse(np.full(len(test), small_splits["train"].targets.mean()), test.targets)
    assert rmse(predict(result.model, test.features), test.targets) < baseline / 5


def test_on_epoch_gets_every_epoch(small_splits):
    calls = []
    result = train(FAST, small_splits["train"], small_splits["validation"], log_to_mlflow=False,
                   on_epoch=lambda epoch, train_loss, val_loss: calls.append((epoch, train_loss, val_loss)))
    assert [epoch for epoch, _, _ in calls] == [0, 1, 2, 3]
    assert [val for _, _, val in calls] == result.val_loss


def test_logging_needs_an_active_run(tracking_store, small_splits):
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        train(FAST, small_splits["train"], small_splits["validation"])


def test_metrics_logged_per_epoch_with_steps(tracking_store, small_splits):
    with mlflow.start_run() as run:
        result = train(FAST, small_splits["train"], small_splits["validation"])
    for key in ("train_loss", "val_loss", "val_rmse_c"):
        assert steps_of(run.info.run_id, key) == [0, 1, 2, 3], key
    history = MlflowClient().get_metric_history(run.info.run_id, "val_loss")
    logged = [point.value for point in sorted(history, key=lambda point: point.step)]
    assert logged == pytest.approx(result.val_loss)


def test_val_rmse_is_in_degrees(tracking_store, small_splits):
    with mlflow.start_run() as run:
        result = train(FAST, small_splits["train"], small_splits["validation"])
    logged = mlflow.get_run(run.info.run_id).data.metrics["val_rmse_c"]
    validation = small_splits["validation"]
    expected = rmse(predict(result.model, validation.features), validation.targets)
    assert logged == pytest.approx(expected, rel=1e-4)


def test_async_logging_stores_every_epoch_before_returning(tracking_store, small_splits, monkeypatch):
    monkeypatch.setenv("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "1")
    with mlflow.start_run() as run:
        train(FAST, small_splits["train"], small_splits["validation"], synchronous=False)
        assert steps_of(run.info.run_id, "val_loss") == [0, 1, 2, 3]


def test_async_logging_without_buffering_warns(tracking_store, small_splits, caplog):
    with mlflow.start_run(), caplog.at_level(logging.WARNING, logger="helpers.training"):
        train(FAST, small_splits["train"], small_splits["validation"], synchronous=False)
    assert "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS" in caplog.text


def test_unlogged_training_needs_no_run(small_splits):
    assert mlflow.active_run() is None
    result = train(FAST, small_splits["train"], small_splits["validation"], log_to_mlflow=False)
    assert len(result.train_loss) == 4


def test_as_params_flattens_layers_and_adds_fixed_choices():
    params = TrainConfig(hidden_layers=(24, 24, 24), activation="relu").as_params()
    assert params["hidden_layers"] == "24x24x24"
    assert params["activation"] == "relu"
    for key, value in FIXED_CHOICES.items():
        assert params[key] == value
    assert {"learning_rate", "epochs", "batch_size", "seed"} <= set(params)


def test_list_of_layers_becomes_tuple():
    assert TrainConfig(hidden_layers=[4, 4]).hidden_layers == (4, 4)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(epochs=0), "epochs=0"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(learning_rate=0.0), "learning_rate=0.0 must be a positive number"),
        (dict(learning_rate=-1e-3), "must be a positive number"),
    ],
)
def test_invalid_config_raises(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_predict_returns_flat_degrees(small_splits):
    model = build_model(FAST, small_splits["train"])
    predicted = predict(model, small_splits["test"].features[:5])
    assert predicted.shape == (5,)
    assert predicted.dtype == np.float32


def test_predict_accepts_float64_rows(small_splits):
    model = build_model(FAST, small_splits["train"])
    rows = small_splits["test"].features[:3].astype(np.float64)
    np.testing.assert_array_equal(predict(model, rows), predict(model, rows.astype(np.float32)))


def test_rmse_of_known_errors():
    assert rmse(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 0.0
    assert rmse(np.array([0.0, 0.0]), np.array([3.0, 4.0])) == pytest.approx(np.sqrt(12.5))


def test_rmse_accepts_column_against_flat():
    assert rmse(np.array([[1.0], [3.0]]), np.array([1.0, 1.0])) == pytest.approx(np.sqrt(2.0))


@pytest.mark.parametrize(("predicted", "expected"), [([1.0, 2.0], [1.0]), ([], [])])
def test_rmse_rejects_mismatched_or_empty(predicted, expected):
    with pytest.raises(ValueError, match="pass two non-empty arrays of the same length"):
        rmse(np.array(predicted), np.array(expected))


def test_one_row_split_trains():
    row = Split(np.array([[-5.0, 20.0]]), np.array([-11.6]))
    result = train(TrainConfig(hidden_layers=(4,), epochs=2), row, row, log_to_mlflow=False)
    assert all(np.isfinite(result.train_loss))
