"""Registry helpers of notebook 04 on one temporary SQLite store per module.

Covers registration and lineage, the promotion gate (passing, rejecting a
worse model), rollback with exact predictions, legacy stages, and two cases
from real reports: a `models:/<name>/Production` stage URI, and a version
registered from `runs:/<run_id>/model` in MLflow 3.
"""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from helpers import registry
from helpers.store import use_experiment
from helpers.tracking import tracked_training
from helpers.training import TrainConfig, predict
from helpers.windchill import DataSettings, make_splits

EXPERIMENT = "registry-tests"
TINY_DATA = DataSettings(n_samples=400)
# Two epochs of a 4-unit network stay far from the formula; 25 epochs of 16x16 get close.
WORSE = TrainConfig(hidden_layers=(4,), epochs=2)
BETTER = TrainConfig(hidden_layers=(16, 16), epochs=25)
# The tiny models miss the course's 1 degC limit, so the gate here compares them only
# with each other.
LOOSE_LIMIT_C = 50.0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Point MLflow at an empty SQLite store for this module, then restore the environment."""
    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        (root / "artifacts").mkdir()
        mlflow.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
        try:
            yield uri
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def runs(store):
    """A parent run with a worse and a better child run, each with a logged model."""
    use_experiment(EXPERIMENT)
    splits = make_splits(TINY_DATA)
    with mlflow.start_run(run_name="tiny sweep") as parent:
        mlflow.log_params(TINY_DATA.as_params())
        worse = tracked_training(WORSE, splits, TINY_DATA, "worse", nested=True,
                                 log_system_metrics=False)
        better = tracked_training(BETTER, splits, TINY_DATA, "better", nested=True,
                                  log_system_metrics=False)
    return {"parent": parent.info.run_id, "worse": worse, "better": better}


def fresh_name(request) -> str:
    """Return a registered model name unique to the calling test."""
    return f"model-{request.node.name}".replace("[", "-").replace("]", "")


def features() -> np.ndarray:
    return registry.holdout_grid()[0]


def test_best_run_id_picks_lowest_validation_rmse(runs):
    table = registry.sweep_runs(EXPERIMENT, runs["parent"])
    assert list(table["tags.mlflow.runName"]) == ["better", "worse"]
    assert registry.best_run_id(EXPERIMENT, runs["parent"]) == runs["better"].run_id


def test_best_run_id_without_children_raises(runs):
    with pytest.raises(registry.RegistryError, match="no child runs"):
        registry.best_run_id(EXPERIMENT, runs["better"].run_id)


def test_logged_model_uri_matches_model_info(runs):
    summary = runs["better"]
    assert registry.logged_model_uri(summary.run_id) == summary.model_uri
    assert summary.model_uri.startswith("models:/m-")


def test_logged_model_uri_of_run_without_model_raises(runs):
    with pytest.raises(registry.RegistryError, match="logged no model"):
        registry.logged_model_uri(runs["parent"])


def test_execution_model_name_uses_eight_hex_digits(runs):
    name = registry.execution_model_name("wind-chill", runs["parent"])
    assert name == f"wind-chill-{runs['parent'][:8]}"
    with pytest.raises(registry.RegistryError, match="too short"):
        registry.execution_model_name("wind-chill", "abc")


def test_register_sets_description_and_tags(runs, request):
    name = fresh_name(request)
    version = registry.register(runs["better"].model_uri, name, description="first",
                                tags={"selected_by": "val_rmse_c"})
    stored = MlflowClient().get_model_version(name, str(version.version))
    assert stored.description == "first"
    assert stored.tags == {"selected_by": "val_rmse_c"}
    assert stored.source == runs["better"].model_uri


def test_lineage_reaches_run_params_and_data(runs, request):
    name = fresh_name(request)
    version = registry.register(runs["better"].model_uri, name)
    found = registry.lineage(name, version.version)
    assert found["run ID"] == runs["better"].run_id
    assert found["parent run ID"] == runs["parent"]
    assert found["experiment"] == EXPERIMENT
    assert found["logged model"] == runs["better"].model_uri.removeprefix("models:/")
    assert found["params"]["hidden_layers"] == "16x16"
    assert found["params"]["epochs"] == "25"
    assert found["data settings"]["data_n_samples"] == "400"
    assert "test_rmse_c" in found["metrics"]
    assert not any(key.startswith("system/") for key in found["metrics"])


def test_missing_alias_raises_with_fix(runs, request):
    name = fresh_name(request)
    registry.register(runs["better"].model_uri, name)
    assert registry.alias_version(name, "production") is None
    with pytest.raises(registry.RegistryError, match="has no alias @production"):
        registry.require_alias(name, "production")
    with pytest.raises(registry.RegistryError, match="has no alias @staging"):
        registry.promote(name)
    with pytest.raises(registry.RegistryError, match="has no alias @production"):
        registry.rollback(name)


def test_first_promotion_compares_with_formula_only(runs, request):
    name = fresh_name(request)
    version = registry.register(runs["better"].model_uri, name)
    registry.stage(name, version.version)
    result = registry.promote(name, limit_c=LOOSE_LIMIT_C)
    assert result.passed, result.summary()
    assert result.production_version is None
    assert registry.alias_version(name, "production") == "1"
    assert registry.alias_version(name, "staging") is None
    tags = MlflowClient().get_model_version(name, "1").tags
    assert tags["validation_status"] == "passed"
    assert tags["validation_compared_with"] == "formula"
    assert "promoted_at" in tags
    assert "previous_production_version" not in tags


def test_gate_limit_rejects_inaccurate_model(runs, request):
    name = fresh_name(request)
    registry.register(runs["worse"].model_uri, name)
    result = registry.validation_gate(name, "1", limit_c=0.01)
    assert not result.passed
    assert "above the limit" in result.reasons[0]
    assert MlflowClient().get_model_version(name, "1").tags["validation_status"] == "rejected"


def promote_second(runs, name: str, first: str, second: str):
    """Put run `first` in production as version 1, stage run `second` as version 2, gate it."""
    registry.register(runs[first].model_uri, name)
    registry.promote(name, "1", limit_c=LOOSE_LIMIT_C)
    registry.register(runs[second].model_uri, name)
    registry.stage(name, "2")
    return registry.promote(name, limit_c=LOOSE_LIMIT_C)


def test_gate_rejects_worse_model(runs, request):
    name = fresh_name(request)
    result = promote_second(runs, name, "better", "worse")
    assert not result.passed
    assert result.production_version == "1"
    assert result.rmse_c > result.production_rmse_c
    assert "not better than @production" in result.summary()
    assert registry.alias_version(name, "production") == "1"
    assert registry.alias_version(name, "staging") == "2"
    tags = MlflowClient().get_model_version(name, "2").tags
    assert tags["validation_status"] == "rejected"
    assert tags["validation_compared_with"] == "formula and version 1"
    assert "promoted_at" not in tags


def test_better_model_replaces_production(runs, request):
    name = fresh_name(request)
    result = promote_second(runs, name, "worse", "better")
    assert result.passed, result.summary()
    assert registry.alias_version(name, "production") == "2"
    assert MlflowClient().get_model_version(name, "2").tags["previous_production_version"] == "1"


def test_rollback_restores_old_predictions_exactly(runs, request):
    name = fresh_name(request)
    registry.register(runs["worse"].model_uri, name)
    registry.promote(name, "1", limit_c=LOOSE_LIMIT_C)
    production_uri = f"models:/{name}@production"
    old = mlflow.pyfunc.load_model(production_uri).predict(features())
    registry.register(runs["better"].model_uri, name)
    registry.promote(name, "2", limit_c=LOOSE_LIMIT_C)
    newer = mlflow.pyfunc.load_model(production_uri).predict(features())
    assert not np.array_equal(newer, old)

    assert registry.rollback(name) == "1"

    restored = mlflow.pyfunc.load_model(production_uri).predict(features())
    assert np.array_equal(restored, old)
    tags = MlflowClient().get_model_version(name, "2").tags
    assert "rolled_back_at" in tags


def test_rollback_without_previous_version_raises(runs, request):
    name = fresh_name(request)
    registry.register(runs["better"].model_uri, name)
    registry.promote(name, "1", limit_c=LOOSE_LIMIT_C)
    with pytest.raises(registry.RegistryError, match="nothing to roll back to"):
        registry.rollback(name)


def test_version_table_lists_aliases_and_tags(runs, request):
    name = fresh_name(request)
    registry.register(runs["worse"].model_uri, name)
    registry.register(runs["better"].model_uri, name)
    registry.promote(name, "1", limit_c=LOOSE_LIMIT_C)
    registry.stage(name, "2")
    rows = registry.version_table(name, ("validation_status",))
    assert [row["version"] for row in rows] == ["1", "2"]
    assert rows[0]["aliases"] == "@production"
    assert rows[1]["aliases"] == "@staging"
    assert rows[0]["validation_status"] == "passed"
    assert rows[1]["validation_status"] == ""


def test_stage_transition_warns_and_maps_to_alias(runs, request):
    name = fresh_name(request)
    registry.register(runs["worse"].model_uri, name)
    registry.register(runs["better"].model_uri, name)
    client = MlflowClient()
    with registry.captured_warnings() as caught:
        client.transition_model_version_stage(name, "1", "Staging")
        client.transition_model_version_stage(name, "2", "Production")
    assert any(line.startswith("FutureWarning") and "deprecated" in line for line in caught)
    assert registry.aliases_from_stages(name) == {"staging": "1", "production": "2"}
    assert registry.alias_version(name, "production") == "2"


def test_stage_uri_loads_same_model_as_alias(runs, request):
    name = fresh_name(request)
    registry.register(runs["better"].model_uri, name)
    with registry.captured_warnings():
        MlflowClient().transition_model_version_stage(name, "1", "Production")
    registry.aliases_from_stages(name)
    by_stage = mlflow.pyfunc.load_model(f"models:/{name}/Production").predict(features())
    by_alias = mlflow.pyfunc.load_model(f"models:/{name}@production").predict(features())
    assert np.array_equal(by_stage, by_alias)
    with registry.captured_warnings() as caught:
        MlflowClient().get_latest_versions(name, stages=["Production"])
    assert any("get_latest_versions" in line and "deprecated" in line for line in caught)


def test_runs_uri_falls_back_to_logged_model(runs, request):
    name = fresh_name(request)
    run_id = runs["better"].run_id
    with registry.captured_warnings() as caught:
        version = mlflow.register_model(f"runs:/{run_id}/model", name)
    assert version.source == runs["better"].model_uri
    assert any("has no artifacts at artifact path 'model'" in line for line in caught)


def test_captured_warnings_restores_mlflow_logger(runs):
    mlflow_logger = logging.getLogger("mlflow")
    handlers, propagate = list(mlflow_logger.handlers), mlflow_logger.propagate
    with registry.captured_warnings() as caught:
        mlflow_logger.warning("test warning %d", 1)
    assert caught == ["WARNING mlflow: test warning 1"]
    assert mlflow_logger.handlers == handlers
    assert mlflow_logger.propagate == propagate


def test_copy_model_version_keeps_tags_not_aliases(runs, request):
    name = fresh_name(request)
    registry.register(runs["better"].model_uri, name, description="source",
                      tags={"selected_by": "val_rmse_c"})
    registry.promote(name, "1", limit_c=LOOSE_LIMIT_C)
    client = MlflowClient()
    copy = client.copy_model_version(f"models:/{name}@production", f"{name}-prod")
    assert copy.description == "source"
    assert copy.tags["selected_by"] == "val_rmse_c"
    assert client.get_registered_model(f"{name}-prod").aliases == {}


def test_config_and_data_settings_round_trip(runs):
    run_id = runs["better"].run_id
    assert registry.config_of(run_id) == BETTER
    assert registry.config_of(run_id, epochs=3).epochs == 3
    assert registry.data_settings_of(run_id) == TINY_DATA


def test_data_settings_of_run_without_params_raises(runs):
    with mlflow.start_run(run_name="no params") as bare:
        pass
    with pytest.raises(registry.RegistryError, match="no param data_"):
        registry.data_settings_of(bare.info.run_id)


def test_retrained_version_matches_logged_model(runs, request):
    name = fresh_name(request)
    registry.register(runs["worse"].model_uri, name)
    again = registry.retrain_version(name, "1")
    logged = registry.version_predictions(name, "1", features())
    assert np.max(np.abs(predict(again, features()) - logged)) < 1e-4


def test_train_candidate_nests_under_parent(runs):
    summary = registry.train_candidate(EXPERIMENT, runs["parent"], WORSE, TINY_DATA)
    run = MlflowClient().get_run(summary.run_id)
    assert run.data.tags["mlflow.parentRunId"] == runs["parent"]
    assert run.info.run_name == "retrained candidate"
    assert mlflow.active_run() is None


def test_exercise_model_starts_fresh(store):
    name = registry.exercise_model("exercise-model-test")
    registry.rollback(name)
    assert registry.exercise_model(name) == name
    client = MlflowClient()
    assert len(client.search_model_versions(f"name = '{name}'")) == 2
    assert registry.alias_version(name, "production") == "2"
