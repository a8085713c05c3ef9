"""Model registry steps of notebook 04: registration, lineage, the promotion gate, rollback.

The promotion workflow uses two aliases. A new model version gets @staging.
`promote` evaluates it on a fixed grid of held-out inputs against the wind
chill formula and against the current @production. It moves @production only
when the candidate is better. Every step records its decision in model version
tags, so the registry itself shows which version was promoted, when and why.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from typing import Iterator

import numpy as np

from helpers.tracking import RunSummary, run_sweep, sweep_configs, tracked_training
from helpers.training import TrainConfig, rmse
from helpers.windchill import DataSettings, make_splits, wind_chill

logger = logging.getLogger(__name__)

STAGING = "staging"
PRODUCTION = "production"
# Legacy registry stages and the aliases that replace them; Archived and None get no alias.
STAGE_ALIASES = {"Staging": STAGING, "Production": PRODUCTION}
# Maximum RMSE against the formula on the held-out grid, in degC, for a promotion.
DEFAULT_LIMIT_C = 1.0
# Small seeded sweep of notebook 04: a few seconds on 2 cores, still within 1 degC.
SWEEP_EPOCHS = 10
SWEEP_DATA = DataSettings(n_samples=3000)
SYSTEM_METRIC_PREFIX = "system/"


class RegistryError(ValueError):
    """A registry request names something that is missing or cannot be done."""


def _client():
    import mlflow

    return mlflow.MlflowClient()


def now_iso() -> str:
    """Return the current UTC time as an ISO 8601 string with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_registry_sweep(
    experiment: str,
    epochs: int = SWEEP_EPOCHS,
    data_settings: DataSettings = SWEEP_DATA,
    parent_name: str = "registry sweep",
) -> tuple[str, list[RunSummary]]:
    """Train this execution's own seeded 2 x 2 sweep under a new parent run.

    Every execution gets its own parent run, so tables scoped to it are the
    same on a fresh store and on a store that already contains earlier sweeps.
    """
    return run_sweep(experiment, sweep_configs(epochs=epochs), data_settings, parent_name)


def train_candidate(
    experiment: str,
    parent_run_id: str,
    config: TrainConfig,
    data_settings: DataSettings = SWEEP_DATA,
    run_name: str = "retrained candidate",
) -> RunSummary:
    """Train one more model as a nested run under an existing parent run."""
    import mlflow

    from helpers.store import use_experiment

    use_experiment(experiment)
    with mlflow.start_run(run_id=parent_run_id):
        splits = make_splits(data_settings)
        return tracked_training(config, splits, data_settings, run_name, nested=True)


def execution_model_name(prefix: str, parent_run_id: str) -> str:
    """Return a registered model name unique to one sweep: `prefix-` and 8 hex digits."""
    if len(parent_run_id) < 8:
        raise RegistryError(f"parent_run_id={parent_run_id!r} is too short; pass a full run ID")
    return f"{prefix}-{parent_run_id[:8]}"


def sweep_runs(experiment: str, parent_run_id: str, metric: str = "val_rmse_c"):
    """Return the parent run's child runs as a DataFrame, best `metric` first."""
    import mlflow

    return mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
        order_by=[f"metrics.{metric} ASC"],
    )


def best_run_id(experiment: str, parent_run_id: str, metric: str = "val_rmse_c") -> str:
    """Return the ID of the child run with the lowest `metric`; raise if there is none."""
    runs = sweep_runs(experiment, parent_run_id, metric)
    if runs.empty:
        raise RegistryError(
            f"no child runs under parent run {parent_run_id} in experiment {experiment!r}; "
            "train a sweep first (train_registry_sweep)"
        )
    return str(runs.iloc[0]["run_id"])


def logged_model_uri(run_id: str) -> str:
    """Return the `models:/m-...` URI of the model a run logged (MLflow 3 logged model)."""
    outputs = _client().get_run(run_id).outputs
    models = outputs.model_outputs if outputs else []
    if not models:
        raise RegistryError(
            f"run {run_id} logged no model; log one with mlflow.pytorch.log_model in that run"
        )
    return f"models:/{models[-1].model_id}"


def register(
    model_uri: str, name: str, description: str = "", tags: dict[str, str] | None = None
):
    """Register `model_uri` as a new version of `name` with a description and tags.

    The version number of the returned ModelVersion is an int on SQLite stores
    and a str through a tracking server (MLflow 3.17.2), so compare it via str().
    """
    import mlflow

    version = mlflow.register_model(model_uri, name, tags=tags)
    if description:
        version = _client().update_model_version(
            name, str(version.version), description=description
        )
    logger.info("registered %s as %s version %s", model_uri, name, version.version)
    return version


def model_id_of(version) -> str:
    """Return the logged model ID behind a model version (its source is `models:/m-...`)."""
    # ModelVersion.model_id comes back empty from MLflow 3.17.2 stores, so the source is read.
    source = version.source or ""
    if source.startswith("models:/m-"):
        return source.removeprefix("models:/")
    if version.model_id:
        return version.model_id
    raise RegistryError(
        f"{version.name} version {version.version} has source {source!r}, not a logged "
        "model; it was registered from run artifacts by an MLflow 2 client"
    )


def lineage(name: str, version: str | int) -> dict:
    """Trace a model version back to its logged model, run, params, metrics and data settings."""
    client = _client()
    model_version = client.get_model_version(name, str(version))
    logged = client.get_logged_model(model_id_of(model_version))
    run = client.get_run(logged.source_run_id)
    params = run.data.params
    return {
        "model version": f"{name} version {model_version.version}",
        "source": model_version.source,
        "logged model": logged.model_id,
        "run ID": run.info.run_id,
        "run name": run.info.run_name,
        "experiment": client.get_experiment(run.info.experiment_id).name,
        "parent run ID": run.data.tags.get("mlflow.parentRunId"),
        "params": {k: v for k, v in sorted(params.items()) if not k.startswith("data_")},
        "data settings": {k: v for k, v in sorted(params.items()) if k.startswith("data_")},
        "metrics": {
            k: round(v, 4) for k, v in sorted(run.data.metrics.items())
            if not k.startswith(SYSTEM_METRIC_PREFIX)
        },
    }


def holdout_grid() -> tuple[np.ndarray, np.ndarray]:
    """Return the fixed validation grid: float32 (temperature degC, wind km/h) rows, targets degC.

    A 10 x 8 grid over -40..5 degC and 5..75 km/h, inside the training domain and
    independent of any training split, so every candidate faces the same inputs.
    """
    temperature, wind = np.meshgrid(np.linspace(-40.0, 5.0, 10), np.linspace(5.0, 75.0, 8))
    features = np.column_stack([temperature.ravel(), wind.ravel()]).astype(np.float32)
    return features, wind_chill(features[:, 0], features[:, 1])


# Predictions per (tracking URI, logged model and input digest): a version's model never
# changes, so the gate loads each model once per process.
_PREDICTIONS: dict[tuple[str, str], np.ndarray] = {}


def version_predictions(name: str, version: str | int, features: np.ndarray) -> np.ndarray:
    """Return a model version's predictions in degC, loaded through its `models:/` URI."""
    import mlflow

    client = _client()
    model_version = client.get_model_version(name, str(version))
    digest = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes()).hexdigest()
    key = (mlflow.get_tracking_uri(), f"{model_version.source}|{digest}")
    if key not in _PREDICTIONS:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{model_version.version}")
        _PREDICTIONS[key] = np.asarray(model.predict(features.astype(np.float32))).reshape(-1)
    return _PREDICTIONS[key].copy()


def alias_version(name: str, alias: str) -> str | None:
    """Return the version number that `name@alias` points to, or None if the alias is unset."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        # MLflow 3.17.2 reports a missing alias as INVALID_PARAMETER_VALUE, a code other
        # errors share, so the message "Registered model alias ... not found" decides.
        if "not found" in str(error).lower():
            return None
        raise


def require_alias(name: str, alias: str) -> str:
    """Return the version behind `name@alias`; raise RegistryError naming the fix if unset."""
    version = alias_version(name, alias)
    if version is None:
        raise RegistryError(
            f"registered model {name!r} has no alias @{alias}; set it first, for example "
            f"MlflowClient().set_registered_model_alias({name!r}, {alias!r}, version)"
        )
    return version


def stage(name: str, version: str | int) -> None:
    """Point @staging at a version: it becomes the next candidate for the gate."""
    _client().set_registered_model_alias(name, STAGING, str(version))
    logger.info("%s@%s -> version %s", name, STAGING, version)


@dataclass(frozen=True)
class GateResult:
    """Measurements and decision of the validation gate for one candidate version."""

    name: str
    version: str
    rmse_c: float
    limit_c: float
    production_version: str | None
    production_rmse_c: float | None
    passed: bool
    reasons: tuple[str, ...]

    def summary(self) -> str:
        """Return one line: the decision, the RMSE and what it was compared with."""
        compared = "no @production yet" if self.production_version is None else (
            f"@production is version {self.production_version} "
            f"with {self.production_rmse_c:.3f} degC"
        )
        verdict = "passed" if self.passed else "rejected: " + "; ".join(self.reasons)
        return (
            f"version {self.version}: RMSE {self.rmse_c:.3f} degC against the formula "
            f"(limit {self.limit_c:.2f}), {compared} -> {verdict}"
        )


def validation_gate(name: str, version: str | int, limit_c: float = DEFAULT_LIMIT_C) -> GateResult:
    """Evaluate a version on the held-out grid against the formula and @production; tag it.

    The candidate passes when its RMSE is at most `limit_c` degC and strictly
    below that of the current @production version (if there is one).
    """
    version = str(version)
    features, targets = holdout_grid()
    candidate = rmse(version_predictions(name, version, features), targets)
    production = alias_version(name, PRODUCTION)
    production_rmse = None
    reasons = []
    if candidate > limit_c:
        reasons.append(f"RMSE {candidate:.3f} degC is above the limit {limit_c:.2f} degC")
    if production is not None and production != version:
        production_rmse = rmse(version_predictions(name, production, features), targets)
        if candidate >= production_rmse:
            reasons.append(
                f"not better than @production (version {production}, {production_rmse:.3f} degC)"
            )
    result = GateResult(
        name, version, candidate, limit_c, production, production_rmse, not reasons, tuple(reasons)
    )
    _tag_validation(result)
    return result


def _tag_validation(result: GateResult) -> None:
    compared = "formula" if result.production_version is None else (
        f"formula and version {result.production_version}"
    )
    tags = {
        "validation_status": "passed" if result.passed else "rejected",
        "validation_rmse_c": f"{result.rmse_c:.4f}",
        "validation_limit_c": f"{result.limit_c:.2f}",
        "validation_compared_with": compared,
        "validation_reason": "; ".join(result.reasons) or "better on the held-out grid",
        "validated_at": now_iso(),
    }
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(result.name, result.version, key, value)
    logger.info("gate for %s version %s: %s",
                result.name, result.version, tags["validation_status"])


def promote(
    name: str, version: str | int | None = None, limit_c: float = DEFAULT_LIMIT_C
) -> GateResult:
    """Run the gate on @staging (or `version`) and move @production to it only if it passes.

    On success the version is tagged with `promoted_at` and the version it
    replaced (`previous_production_version`), which `rollback` reads, and
    @staging is removed when it pointed at the promoted version.
    """
    candidate = require_alias(name, STAGING) if version is None else str(version)
    result = validation_gate(name, candidate, limit_c)
    if not result.passed:
        logger.info("%s version %s stays out of production", name, candidate)
        return result
    client = _client()
    previous = alias_version(name, PRODUCTION)
    client.set_registered_model_alias(name, PRODUCTION, candidate)
    client.set_model_version_tag(name, candidate, "promoted_at", now_iso())
    if previous is not None and previous != candidate:
        client.set_model_version_tag(name, candidate, "previous_production_version", previous)
    if alias_version(name, STAGING) == candidate:
        client.delete_registered_model_alias(name, STAGING)
    logger.info("%s@%s -> version %s (was %s)", name, PRODUCTION, candidate, previous)
    return result


def rollback(name: str) -> str:
    """Move @production back to the version it replaced; return that version.

    Raises RegistryError when @production is unset or its version records no
    previous production version.
    """
    client = _client()
    current = require_alias(name, PRODUCTION)
    previous = client.get_model_version(name, current).tags.get("previous_production_version")
    if previous is None:
        raise RegistryError(
            f"{name}@{PRODUCTION} (version {current}) records no previous production "
            "version, so there is nothing to roll back to; promote an older version instead"
        )
    client.set_registered_model_alias(name, PRODUCTION, previous)
    client.set_model_version_tag(name, current, "rolled_back_at", now_iso())
    client.set_model_version_tag(name, previous, "restored_at", now_iso())
    logger.info("rolled %s@%s back from version %s to %s", name, PRODUCTION, current, previous)
    return previous


def version_table(name: str, tag_keys: tuple[str, ...] = ()) -> list[dict]:
    """Return one row per version of `name`, oldest first: aliases, stage and chosen tags."""
    client = _client()
    versions = client.search_model_versions(f"name = '{name}'")
    aliases = client.get_registered_model(name).aliases
    rows = []
    for version in sorted(versions, key=lambda v: int(v.version)):
        number = str(version.version)
        row = {
            "version": number,
            "aliases": " ".join(f"@{a}" for a, v in sorted(aliases.items()) if str(v) == number),
            "stage": version.current_stage,
        }
        row.update({key: version.tags.get(key, "") for key in tag_keys})
        rows.append(row)
    return rows


def aliases_from_stages(name: str) -> dict[str, str]:
    """Give each version in a legacy stage the matching alias; return {alias: version}.

    When several versions share a stage, the highest version gets the alias,
    as `models:/name/Stage` would resolve it.
    """
    client = _client()
    chosen: dict[str, str] = {}
    for version in client.search_model_versions(f"name = '{name}'"):
        alias = STAGE_ALIASES.get(version.current_stage)
        if alias and int(version.version) > int(chosen.get(alias, 0)):
            chosen[alias] = str(version.version)
    for alias, version in chosen.items():
        client.set_registered_model_alias(name, alias, version)
    return chosen


@contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect Python warnings and MLflow WARNING log lines as "Category: message" strings.

    Notebooks show the list instead of raw stderr, which carries timestamps and
    file paths that differ between machines.
    """
    caught: list[str] = []

    class _Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(f"{record.levelname} {record.name}: {record.getMessage()}")

    handler = _Collector(level=logging.WARNING)
    mlflow_logger = logging.getLogger("mlflow")
    saved_propagate = mlflow_logger.propagate
    mlflow_logger.addHandler(handler)
    mlflow_logger.propagate = False
    saved_handlers = [h for h in mlflow_logger.handlers if h is not handler]
    for other in saved_handlers:
        mlflow_logger.removeHandler(other)
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            yield caught
        caught.extend(f"{w.category.__name__}: {w.message}" for w in records)
    finally:
        mlflow_logger.removeHandler(handler)
        for other in saved_handlers:
            mlflow_logger.addHandler(other)
        mlflow_logger.propagate = saved_propagate


def config_of(run_id: str, **overrides) -> TrainConfig:
    """Rebuild the TrainConfig a run logged as params, with `overrides` applied."""
    params = _client().get_run(run_id).data.params
    config = TrainConfig(
        hidden_layers=tuple(int(width) for width in params["hidden_layers"].split("x")),
        activation=params["activation"],
        learning_rate=float(params["learning_rate"]),
        epochs=int(params["epochs"]),
        batch_size=int(params["batch_size"]),
        seed=int(params["seed"]),
    )
    return replace(config, **overrides)


def data_settings_of(run_id: str) -> DataSettings:
    """Rebuild the DataSettings a run logged as `data_` params."""
    params = _client().get_run(run_id).data.params
    values = {}
    for setting in fields(DataSettings):
        text = params.get(f"data_{setting.name}")
        if text is None:
            raise RegistryError(f"run {run_id} has no param data_{setting.name}; it was not "
                                "logged by helpers.tracking.tracked_training")
        values[setting.name] = type(getattr(DataSettings(), setting.name))(float(text))
    return DataSettings(**values)


def retrain_version(name: str, version: str | int):
    """Train again, without MLflow, from the params and data settings a version's run logged."""
    from helpers.training import train

    run_id = lineage(name, version)["run ID"]
    splits = make_splits(data_settings_of(run_id))
    result = train(config_of(run_id), splits["train"], splits["validation"], log_to_mlflow=False)
    return result.model


EXERCISE_DATA = DataSettings(n_samples=400, seed=7)


def exercise_model(name: str, experiment: str = "exercise-04") -> str:
    """Create `name` afresh: one tiny trained model registered twice, @production on version 2.

    An existing registered model of that name is deleted first, so an exercise
    starts from the same state on every execution. Takes about 2 s.
    """
    from mlflow.exceptions import MlflowException

    from helpers.store import use_experiment

    client = _client()
    try:
        client.delete_registered_model(name)
    except MlflowException:
        pass
    use_experiment(experiment)
    splits = make_splits(EXERCISE_DATA)
    config = TrainConfig(hidden_layers=(8, 8), epochs=2)
    summary = tracked_training(config, splits, EXERCISE_DATA, run_name=name)
    for _ in range(2):
        register(summary.model_uri, name)
    client.set_registered_model_alias(name, PRODUCTION, "2")
    client.set_model_version_tag(name, "2", "previous_production_version", "1")
    return name
