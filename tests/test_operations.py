"""The lifecycle and MLOps loop diagrams, and the serving Dockerfile generated without Docker."""

from __future__ import annotations

import mlflow
import pytest

from helpers import operations
from helpers.mlops_diagram import STAGES, mlops_loop
from helpers.model import WindChillNet
from helpers.tracking import log_model


def figure_texts(figure) -> str:
    return "\n".join(text.get_text() for axes in figure.axes for text in axes.texts)


def test_lifecycle_diagram_lists_steps():
    texts = figure_texts(operations.lifecycle_diagram())
    for title, stores in operations.LIFECYCLE_STEPS:
        assert title in texts
        assert stores in texts
    assert operations.FEEDBACK in texts


def test_mlops_loop_shows_every_stage():
    texts = figure_texts(mlops_loop())
    for title, activity, components in STAGES:
        assert title in texts
        assert activity in texts
        assert components in texts


@pytest.fixture
def experiment_id(tmp_path, monkeypatch):
    """Point MLflow at an empty SQLite store in tmp_path and return a new experiment's ID."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        yield mlflow.create_experiment("dockerfile", (tmp_path / "artifacts").as_uri())
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture
def model_uri(experiment_id):
    """Log an untrained network and return its model URI."""
    with mlflow.start_run(experiment_id=experiment_id):
        return log_model(WindChillNet((4,))).model_uri


def test_generate_dockerfile_without_docker(model_uri, tmp_path):
    folder = tmp_path / "image"
    dockerfile = operations.generate_dockerfile(model_uri, folder)
    text = dockerfile.read_text()
    assert dockerfile == folder / "Dockerfile"
    assert f"mlflow=={mlflow.__version__}" in text
    assert "COPY model_dir /opt/ml/model" in text
    assert (folder / "model_dir" / "MLmodel").exists()


def test_generate_dockerfile_of_missing_model_raises(experiment_id, tmp_path):
    with pytest.raises(mlflow.exceptions.MlflowException):
        operations.generate_dockerfile("models:/no-such-model@production", tmp_path / "image")
