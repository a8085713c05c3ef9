"""Tracking mistakes that notebook 01 teaches, checked against a temporary SQLite store.

Each test points MLflow at its own store under pytest's tmp_path, so the
course store is never touched.
"""

import shutil
import time

import mlflow
import pytest
from mlflow import MlflowClient

from helpers.store import LocalStore, use_experiment

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def empty_database(tmp_path_factory):
    """Create one migrated, empty SQLite database, which each test copies.

    Creating the tables takes seconds, copying the file milliseconds.
    """
    store = LocalStore(tmp_path_factory.mktemp("template") / "store").create()
    MlflowClient(tracking_uri=store.tracking_uri).search_experiments()
    return store.database


@pytest.fixture
def temporary_store(tmp_path, monkeypatch, empty_database):
    """Point MLflow at an empty SQLite store in tmp_path and restore the URI afterwards."""
    store = LocalStore(tmp_path / "store").create()
    shutil.copyfile(empty_database, store.database)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    # set_system_metrics_sampling_interval stores its value in this variable.
    monkeypatch.delenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", raising=False)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store.tracking_uri)
    use_experiment("tracking-cases")
    yield store
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def _steps(run_id: str, key: str) -> list[int]:
    history = MlflowClient().get_metric_history(run_id, key)
    return [metric.step for metric in sorted(history, key=lambda metric: metric.timestamp)]


def test_client_log_metric_step_keyword(temporary_store):
    client = MlflowClient()
    with mlflow.start_run() as run:
        for epoch in range(5):
            client.log_metric(run.info.run_id, "loss", 1.0 / (epoch + 1), step=epoch)
    assert _steps(run.info.run_id, "loss") == [0, 1, 2, 3, 4]


def test_client_log_metric_positional_is_timestamp(temporary_store):
    client = MlflowClient()
    with mlflow.start_run() as run:
        for epoch in range(5):
            # The fourth positional argument is the timestamp, so the step stays 0.
            client.log_metric(run.info.run_id, "loss", 1.0 / (epoch + 1), epoch)
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [metric.step for metric in history] == [0] * 5
    assert sorted(metric.timestamp for metric in history) == [0, 1, 2, 3, 4]


def test_start_run_twice_without_with_fails(temporary_store):
    first = mlflow.start_run()
    with pytest.raises(Exception, match="is already active"):
        mlflow.start_run()
    assert mlflow.active_run().info.run_id == first.info.run_id
    mlflow.end_run()
    assert mlflow.active_run() is None
    assert MlflowClient().get_run(first.info.run_id).info.status == "FINISHED"


def test_with_block_marks_failed_run(temporary_store):
    with pytest.raises(ZeroDivisionError):
        with mlflow.start_run() as run:
            mlflow.log_param("learning_rate", 0.1)
            1 / 0
    assert mlflow.active_run() is None
    stored = MlflowClient().get_run(run.info.run_id)
    assert stored.info.status == "FAILED"
    assert stored.data.params == {"learning_rate": "0.1"}


def test_with_block_allows_rerun_after_failure(temporary_store):
    for _ in range(2):
        with pytest.raises(ValueError):
            with mlflow.start_run():
                raise ValueError("training failed")
    with mlflow.start_run() as run:
        pass
    assert MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"


def _system_metric_keys(run_id: str) -> list[str]:
    metrics = MlflowClient().get_run(run_id).data.metrics
    return sorted(key for key in metrics if key.startswith("system/"))


def test_short_run_default_interval_has_no_system_metrics(temporary_store):
    with mlflow.start_run(log_system_metrics=True) as run:
        time.sleep(2)
    assert _system_metric_keys(run.info.run_id) == []


def test_short_run_interval_one_has_system_metrics(temporary_store):
    mlflow.set_system_metrics_sampling_interval(1)
    with mlflow.start_run(log_system_metrics=True) as run:
        time.sleep(3)
    keys = _system_metric_keys(run.info.run_id)
    assert "system/cpu_utilization_percentage" in keys
    assert "system/system_memory_usage_megabytes" in keys
    history = MlflowClient().get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert len(history) >= 1
