"""Logging models, tracked runs and sweeps, checked on one temporary SQLite store per module.

Covers the two model pitfalls the notebook shows: a model logged with a
one-row input example rejects larger batches, and the float32 signature
rejects float64 input until it is cast.
"""

from __future__ import annotations

import time

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from helpers.tracking import (
    EXAMPLE_ROWS, RunSummary, log_model, pip_requirements, run_sweep, sweep_configs,
    sweep_run_name, tracked_training,
)
from helpers.training import TrainConfig, predict, rmse, train
from windchill_fixtures import (  # noqa: F401
    EXPERIMENT, SMALL_SETTINGS, empty_database, module_store, small_splits,
)

pytestmark = pytest.mark.usefixtures("module_store")

FAST = TrainConfig(hidden_layers=(8, 8), epochs=3)


@pytest.fixture(scope="module")
def trained(small_splits):
    """A small trained network, not logged anywhere."""
    return train(FAST, small_splits["train"], small_splits["validation"], log_to_mlflow=False)


@pytest.fixture(scope="module")
def logged_model(module_store, trained):
    """The small network logged with the course's default input example."""
    with mlflow.start_run(run_name="log-model"):
        return log_model(trained.model)


@pytest.fixture(scope="module")
def reloaded(logged_model):
    return mlflow.pyfunc.load_model(logged_model.model_uri)


@pytest.fixture(scope="module")
def demo_run(module_store, small_splits):
    """One tracked training, with system metrics sampled every second."""
    mlflow.set_system_metrics_sampling_interval(1)
    # Slow epochs keep the run open long enough for at least one system metrics sample.
    slow = lambda epoch, train_loss, val_loss: time.sleep(0.4)  # noqa: E731
    try:
        return tracked_training(FAST, small_splits, SMALL_SETTINGS, "demo", on_epoch=slow)
    finally:
        mlflow.set_system_metrics_sampling_interval(None)


@pytest.fixture(scope="module")
def sweep(module_store):
    """A 2 x 2 sweep of two-epoch runs under one parent run."""
    return run_sweep(EXPERIMENT, sweep_configs(epochs=2), data_settings=SMALL_SETTINGS,
                     parent_name="test sweep")


def test_signature_is_float32_any_batch(logged_model):
    signature = logged_model.signature
    assert signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 2)}}
    ]
    assert signature.outputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 1)}}
    ]


def test_reloaded_model_predicts_one_row(reloaded):
    assert reloaded.predict(EXAMPLE_ROWS[:1]).shape == (1, 1)


def test_reloaded_model_predicts_hundred_rows(reloaded, small_splits, trained):
    rows = small_splits["train"].features[:100].astype(np.float32)
    predicted = reloaded.predict(rows)
    assert predicted.shape == (100, 1)
    np.testing.assert_allclose(predicted.reshape(-1), predict(trained.model, rows), rtol=1e-5, atol=1e-4)


def test_reloaded_model_rejects_float64(reloaded):
    with pytest.raises(MlflowException, match="dtype of input float64 does not match expected dtype float32"):
        reloaded.predict(EXAMPLE_ROWS.astype(np.float64))


def test_float64_cast_to_float32_is_accepted(reloaded):
    rows = EXAMPLE_ROWS.astype(np.float64)
    assert reloaded.predict(rows.astype(np.float32)).shape == (len(rows), 1)


def test_one_row_example_pins_batch_size(trained):
    with mlflow.start_run(run_name="one-row example"):
        info = log_model(trained.model, name="one_row", input_example=EXAMPLE_ROWS[:1])
    pinned = mlflow.pyfunc.load_model(info.model_uri)
    assert pinned.predict(EXAMPLE_ROWS[:1]).shape == (1, 1)
    with pytest.raises(AssertionError, match=r"size\(\)\[0\] == 1"):
        pinned.predict(np.repeat(EXAMPLE_ROWS, 20, axis=0))


@pytest.mark.parametrize(
    "example", [EXAMPLE_ROWS.astype(np.float64), EXAMPLE_ROWS[:, :1], EXAMPLE_ROWS.reshape(-1)]
)
def test_log_model_rejects_bad_examples(trained, example):
    with mlflow.start_run(run_name="bad example"):
        with pytest.raises(ValueError, match="pass float32 rows"):
            log_model(trained.model, input_example=example)


def test_log_model_stores_explicit_requirements(logged_model):
    path = mlflow.pyfunc.get_model_dependencies(logged_model.model_uri)
    with open(path) as file:
        lines = [line.strip() for line in file if line.strip()]
    assert lines == pip_requirements()


def test_pip_requirements_pin_exact_versions():
    names = [requirement.split("==")[0] for requirement in pip_requirements()]
    assert names == ["mlflow", "torch", "numpy"]
    assert all("==" in requirement and "+" not in requirement for requirement in pip_requirements())


def test_tracked_training_logs_every_param(demo_run):
    params = mlflow.get_run(demo_run.run_id).data.params
    expected = {**FAST.as_params(), **SMALL_SETTINGS.as_params()}
    for key, value in expected.items():
        assert params[key] == str(value), key
    assert int(params["n_parameters"]) > 0


def test_tracked_training_logs_losses_per_epoch(demo_run):
    client = MlflowClient()
    for key in ("train_loss", "val_loss", "val_rmse_c"):
        steps = sorted(point.step for point in client.get_metric_history(demo_run.run_id, key))
        assert steps == [0, 1, 2], key


def test_tracked_training_logs_test_rmse(demo_run, small_splits):
    metrics = mlflow.get_run(demo_run.run_id).data.metrics
    test = small_splits["test"]
    expected = rmse(predict(demo_run.result.model, test.features), test.targets)
    assert metrics["test_rmse_c"] == pytest.approx(expected)
    assert demo_run.test_rmse_c == pytest.approx(expected)


def test_tracked_training_logs_system_metrics(demo_run):
    metrics = mlflow.get_run(demo_run.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics
    assert "system/system_memory_usage_megabytes" in metrics


def test_tracked_training_logs_three_plots(demo_run):
    paths = [artifact.path for artifact in MlflowClient().list_artifacts(demo_run.run_id, "plots")]
    assert paths == ["plots/error_map.png", "plots/loss_curve.png", "plots/predicted_vs_true.png"]


def test_tracked_training_model_reloads_by_run(demo_run):
    by_run = mlflow.pyfunc.load_model(f"runs:/{demo_run.run_id}/model")
    assert by_run.metadata.model_uuid == demo_run.model_uri.removeprefix("models:/")
    assert mlflow.get_logged_model(by_run.metadata.model_uuid).source_run_id == demo_run.run_id


def test_tracked_training_run_finishes(demo_run):
    assert mlflow.get_run(demo_run.run_id).info.status == "FINISHED"
    assert mlflow.active_run() is None


def test_failed_training_marks_run_failed(small_splits):
    def fail(epoch, train_loss, val_loss):
        raise RuntimeError("training stopped")

    runs_before = len(mlflow.search_runs(experiment_names=[EXPERIMENT]))
    with pytest.raises(RuntimeError, match="training stopped"):
        tracked_training(FAST, small_splits, SMALL_SETTINGS, "interrupted", on_epoch=fail,
                         log_system_metrics=False)
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string="tags.mlflow.runName = 'interrupted'")
    assert len(mlflow.search_runs(experiment_names=[EXPERIMENT])) == runs_before + 1
    assert runs.loc[0, "status"] in {"FAILED", "KILLED"}


def test_sweep_configs_cover_rates_and_widths():
    configs = sweep_configs(epochs=7)
    assert len(configs) == 4
    assert {(c.learning_rate, c.hidden_layers) for c in configs} == {
        (0.003, (16, 16)), (0.003, (32, 32)), (0.01, (16, 16)), (0.01, (32, 32)),
    }
    assert all(config.epochs == 7 for config in configs)


def test_sweep_run_name_names_rate_and_width():
    assert sweep_run_name(TrainConfig(hidden_layers=(32, 32), learning_rate=0.01)) == "lr=0.01 width=32"


def test_sweep_nests_children_under_parent(sweep):
    parent_run_id, summaries = sweep
    assert len(summaries) == 4
    assert all(isinstance(summary, RunSummary) for summary in summaries)
    for summary in summaries:
        tags = mlflow.get_run(summary.run_id).data.tags
        assert tags["mlflow.parentRunId"] == parent_run_id


def test_sweep_parent_holds_data_settings(sweep):
    parent_run_id, _ = sweep
    params = mlflow.get_run(parent_run_id).data.params
    assert params == {key: str(value) for key, value in SMALL_SETTINGS.as_params().items()}


def test_search_runs_finds_best_child(sweep):
    parent_run_id, summaries = sweep
    ranked = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        order_by=["metrics.val_rmse_c ASC"],
    )
    assert sorted(ranked["run_id"]) == sorted(summary.run_id for summary in summaries)
    best = {summary.run_id: summary.result.val_loss[-1] for summary in summaries}
    assert ranked.loc[0, "run_id"] == min(best, key=best.get)


def test_sweep_summaries_match_logged_metrics(sweep):
    _, summaries = sweep
    for summary in summaries:
        logged = mlflow.get_run(summary.run_id).data.metrics["test_rmse_c"]
        assert logged == pytest.approx(summary.test_rmse_c)
        assert summary.model_uri.startswith("models:/m-")
