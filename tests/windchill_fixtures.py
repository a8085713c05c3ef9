"""Fixtures for the wind chill tests: a temporary tracking store and small data splits.

The test modules import these names, so pytest finds the fixtures there. The
stores are SQLite files under pytest's temporary folders, never the course
store. A module uses either `tracking_store` or `module_store`, not both,
because each one resets the tracking URI when it ends.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from helpers.store import LocalStore, use_experiment
from helpers.windchill import DataSettings, make_splits

# Variables that MLflow's setters write into os.environ; each test restores them.
MLFLOW_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
    "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS",
    "COURSE_STORE_DIR",
)

SMALL_SETTINGS = DataSettings(n_samples=400)
EXPERIMENT = "windchill-tests"


@pytest.fixture(scope="session")
def empty_database(tmp_path_factory):
    """Create one migrated, empty SQLite database that each test copies.

    Creating the tables takes seconds, copying the file milliseconds.
    """
    store = LocalStore(tmp_path_factory.mktemp("template") / "store").create()
    MlflowClient(tracking_uri=store.tracking_uri).search_experiments()
    return store.database


@contextmanager
def temporary_tracking_store(root: Path, template: Path):
    """Point MLflow at a copy of `template` under `root`, then restore the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in MLFLOW_VARIABLES:
            # setenv records the original state, so undoing it also removes values MLflow sets.
            patch.setenv(name, "")
            patch.delenv(name)
        store = LocalStore(root / "store").create()
        shutil.copyfile(template, store.database)
        patch.setenv("COURSE_STORE_DIR", str(store.root))
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mlflow.set_tracking_uri(store.tracking_uri)
        use_experiment(EXPERIMENT)
        try:
            yield store
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)


@pytest.fixture
def tracking_store(tmp_path, empty_database):
    """Point MLflow at an empty SQLite store in tmp_path, inside experiment EXPERIMENT."""
    with temporary_tracking_store(tmp_path, empty_database) as store:
        yield store


@pytest.fixture(scope="module")
def module_store(tmp_path_factory, empty_database):
    """Like `tracking_store`, but shared by the tests of one module."""
    with temporary_tracking_store(tmp_path_factory.mktemp("module"), empty_database) as store:
        yield store


@pytest.fixture(scope="session")
def small_splits():
    """Return train, validation and test splits of 400 rows in all."""
    return make_splits(SMALL_SETTINGS)
