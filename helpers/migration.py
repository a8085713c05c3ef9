"""Moving an experiment and its registered model between two tracking servers (notebook 04).

mlflow-export-import 1.2.0 copies the runs of an experiment: params, tags,
metric histories and run artifacts. It drops the run status, start and end
times, the run's user field, dataset inputs and MLflow 3 logged models. Its
import-model cannot read MLflow 3 model versions, because their source is a
`models:/m-...` URI and not a path inside a run. `copy_registered_model` copies registered
models with their logged models, versions, tags and aliases instead, and
`compare_experiments` / `compare_registered_models` list every difference
between source and target.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from helpers.registry import RegistryError, model_id_of, register
from helpers.servers import ManagedServer, stop_servers, tracking_server
from helpers.store import environment_changed
from helpers.tracking import run_sweep, sweep_configs
from helpers.windchill import DataSettings, make_splits

logger = logging.getLogger(__name__)

# Fields the course promises to keep across a migration, and those the tool loses.
PROMISED_FIELDS = (
    "run count", "params", "tags", "parent run", "metric history", "artifacts",
    "registered model", "model version", "aliases", "logged model", "predictions",
)
KNOWN_LOSSES = ("run ID", "status", "start time", "end time", "user", "dataset inputs",
                "logged models of runs")
# Tags MLflow maintains itself on the target, so they are not copied or compared.
MANAGED_TAGS = ("mlflow.parentRunId", "mlflow.modelVersions")


class ModelAlreadyExistsError(RegistryError):
    """The target server already has a registered model of that name."""


def migration_servers(root: Path) -> tuple[ManagedServer, ManagedServer]:
    """Return unstarted "old" and "new" tracking servers, each on its own SQLite store in `root`."""
    servers = []
    for label in ("old", "new"):
        folder = Path(root) / label
        folder.mkdir(parents=True, exist_ok=True)
        servers.append(tracking_server(
            f"sqlite:///{folder / 'mlflow.db'}",
            artifacts_destination=str(folder / "artifacts"),
            name=f"mlflow-{label}",
        ))
    return servers[0], servers[1]


def launch_servers(*servers: ManagedServer) -> tuple[ManagedServer, ...]:
    """Launch servers without waiting for health, so they start while other cells run.

    `wait_servers` waits for them later. If one launch fails, the others are stopped.
    """
    try:
        for server in servers:
            server.launch()
    except Exception:
        stop_servers(list(servers))
        raise
    return servers


def wait_servers(*servers: ManagedServer, timeout_s: float = 90.0) -> None:
    """Wait in parallel until launched servers are healthy; stop all as soon as one fails."""
    first_error = None
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        futures = [pool.submit(server.wait_started, timeout_s) for server in servers]
        for future in as_completed(futures):
            if future.exception() is not None and first_error is None:
                first_error = future.exception()
                # Stopping the others ends their waits at once instead of at the timeout.
                stop_servers(list(servers))
    if first_error is not None:
        raise first_error


def start_servers(*servers: ManagedServer, timeout_s: float = 90.0) -> None:
    """Start servers in parallel and wait until all are healthy; stop all if one fails."""
    launch_servers(*servers)
    wait_servers(*servers, timeout_s=timeout_s)


@contextlib.contextmanager
def tracking_uri(uri: str) -> Iterator[str]:
    """Point MLflow's fluent API at the tracking server `uri` inside the block.

    The registry follows the tracking URI unless a registry URI was set
    explicitly (mlflow.set_registry_uri or MLFLOW_REGISTRY_URI), which wins.
    """
    import mlflow

    saved = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(saved)


def client_for(uri: str):
    """Return an MlflowClient whose tracking and registry are both the server `uri`."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


# History logged on the "old" server: two runs of a tiny sweep, seconds on 2 cores.
SEED_EPOCHS = 4
SEED_DATA = DataSettings(n_samples=1500)
# User the seeded runs record, so outputs do not depend on the machine's account name.
TEAM_USER = "forecaster"


# Credentials meant for the student's own tracking server. The course's "old" and
# "new" servers have no login, and with MLFLOW_TRACKING_USERNAME set MLflow 3.17.2
# records that name as the run's user, so seeding runs without them.
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@contextlib.contextmanager
def _logged_as(user: str) -> Iterator[None]:
    """Make MLflow record `user` as the user of new runs inside the block.

    MLflow takes the user from getpass.getuser(), which reads LOGNAME first.
    Credential variables are cleared for the block, so no request carries them.
    """
    with environment_changed({"LOGNAME": user}, removed=CREDENTIAL_VARIABLES):
        yield


def seed_old_server(uri: str, experiment: str, model_name: str, epochs: int = SEED_EPOCHS,
                    data_settings: DataSettings = SEED_DATA) -> dict[str, str]:
    """Log a small team history on `uri` and return its run IDs by role.

    It contains a parent run with two trained child runs and a dataset input,
    and a run that crashed (status FAILED). It also contains a registered model
    with a description, tags, one version per child run and the aliases
    @production (the better child) and @staging. Every run records TEAM_USER
    as its user.
    """
    import mlflow

    with tracking_uri(uri), _logged_as(TEAM_USER):
        configs = sweep_configs(epochs)[:2]
        parent_id, runs = run_sweep(experiment, configs, data_settings, "team sweep")
        train = make_splits(data_settings)["train"]
        with mlflow.start_run(run_id=parent_id):
            dataset = mlflow.data.from_numpy(
                train.features, targets=train.targets, name="wind chill train"
            )
            mlflow.log_input(dataset, context="training")
        failed_id = _log_crashed_run()
        client = client_for(uri)
        client.create_registered_model(
            model_name, tags={"team": "forecasting"},
            description="Wind chill regression trained by the forecasting team.",
        )
        for summary in runs:
            register(summary.model_uri, model_name, description=f"From run {summary.run_id}.",
                     tags={"trained_by": "team sweep"})
        best, other = sorted(range(len(runs)), key=lambda i: runs[i].test_rmse_c)
        client.set_registered_model_alias(model_name, "production", str(best + 1))
        client.set_registered_model_alias(model_name, "staging", str(other + 1))
    logger.info("seeded %s with experiment %s and model %s", uri, experiment, model_name)
    return {"parent": parent_id, "children": ",".join(r.run_id for r in runs), "failed": failed_id}


def _log_crashed_run() -> str:
    """Log a run that raises part-way, which MLflow ends with status FAILED."""
    import mlflow

    try:
        with mlflow.start_run(run_name="crashed run") as run:
            mlflow.log_param("learning_rate", 0.5)
            for step, loss in enumerate((1.0, 4.0, 60.0)):
                mlflow.log_metric("train_loss", loss, step=step)
            raise FloatingPointError("train_loss diverged")
    except FloatingPointError:
        pass
    return run.info.run_id


@contextlib.contextmanager
def _quiet_tool() -> Iterator[None]:
    """Send the tool's print() output to this module's DEBUG log instead of the notebook."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            logger.debug("mlflow-export-import: %s", line)


def export_experiment(source_uri: str, experiment: str, folder: Path) -> Path:
    """Export every run of `experiment` on `source_uri` into `folder` with mlflow-export-import."""
    with tracking_uri(source_uri), _quiet_tool():
        from mlflow_export_import.experiment.export_experiment import ExperimentExporter

        exporter = ExperimentExporter(client_for(source_uri))
        exported, failed = exporter.export_experiment(experiment, str(folder))
    if failed:
        raise RuntimeError(
            f"mlflow-export-import failed to export {failed} run(s) of {experiment!r}"
        )
    logger.info("exported %d runs of %s from %s to %s", exported, experiment, source_uri, folder)
    return Path(folder)


def import_experiment(target_uri: str, experiment: str, folder: Path) -> dict[str, str]:
    """Import an exported experiment into `target_uri`; return {source run ID: target run ID}.

    `use_src_user_id` keeps the source user in the `mlflow.user` tag; without
    it the tool writes the importing user there. The run's user field still
    becomes "unknown". The tool's MLmodel fix is off: it lists artifacts
    through a client bound to whatever tracking URI was set when the tool was
    first imported, and MLflow 3 runs keep their models as logged models,
    outside the run artifacts.
    """
    with tracking_uri(target_uri), _quiet_tool():
        from mlflow_export_import.experiment.import_experiment import ExperimentImporter

        importer = ExperimentImporter(
            client_for(target_uri), mlmodel_fix=False, use_src_user_id=True
        )
        infos = importer.import_experiment(experiment, str(folder))
    logger.info("imported %d runs of %s into %s", len(infos), experiment, target_uri)
    return {source: info.run_id for source, info in infos.items()}


def migrate_experiment(source_uri: str, target_uri: str, experiment: str) -> dict[str, str]:
    """Export `experiment` from one server and import it into another; return the run ID map."""
    with tempfile.TemporaryDirectory(prefix="course-export-") as folder:
        export_experiment(source_uri, experiment, Path(folder))
        return import_experiment(target_uri, experiment, Path(folder))


@dataclass(frozen=True)
class Difference:
    """One thing that differs between source and target."""

    item: str
    field: str
    source: str
    target: str

    @property
    def known_loss(self) -> bool:
        return self.field in KNOWN_LOSSES


@dataclass
class VerificationReport:
    """Every difference found, and how many items of each kind were compared."""

    differences: list[Difference] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=dict)

    def add(self, item: str, name: str, source, target) -> None:
        if source != target:
            self.differences.append(Difference(item, name, _text(source), _text(target)))

    def count(self, kind: str, number: int = 1) -> None:
        self.compared[kind] = self.compared.get(kind, 0) + number

    def unexpected(self) -> list[Difference]:
        """Return the differences in what the course promises to keep."""
        return [d for d in self.differences if not d.known_loss]

    def losses(self) -> list[Difference]:
        """Return the differences the export tool is known to cause."""
        return [d for d in self.differences if d.known_loss]

    def extend(self, other: "VerificationReport") -> "VerificationReport":
        self.differences += other.differences
        for kind, number in other.compared.items():
            self.count(kind, number)
        return self

    def summary_rows(self) -> list[dict]:
        """Return one row per field that differs: how many items, and the first example."""
        rows: dict[str, dict] = {}
        for difference in self.differences:
            row = rows.setdefault(difference.field, {
                "field": difference.field,
                "kept": "no (known loss)" if difference.known_loss else "NO (unexpected)",
                "items": 0,
                "example": f"{difference.item}: {difference.source} -> {difference.target}",
            })
            row["items"] += 1
        return sorted(rows.values(), key=lambda row: (row["kept"], row["field"]))

    def format_summary(self) -> str:
        """Return the summary rows as aligned text lines, or a line saying nothing differs."""
        rows = self.summary_rows()
        if not rows:
            return "no differences"
        width = max(len(row["field"]) for row in rows)
        return "\n".join(
            f"{row['field']:<{width}}  {row['kept']:<16} {row['items']:>2} item(s), "
            f"for example {row['example']}"
            for row in rows
        )


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "(none)"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def _experiment_runs(client, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise RegistryError(f"experiment {experiment!r} does not exist on {client.tracking_uri}")
    return client.search_runs([found.experiment_id], max_results=10_000)


def _labels(runs) -> dict[str, str]:
    """Return {run ID: run name}, with "#2", "#3" appended where names repeat."""
    seen: dict[str, int] = {}
    labels = {}
    for run in sorted(runs, key=lambda r: (r.info.run_name or "", r.info.start_time or 0)):
        name = run.info.run_name or "(unnamed)"
        seen[name] = seen.get(name, 0) + 1
        labels[run.info.run_id] = name if seen[name] == 1 else f"{name} #{seen[name]}"
    return labels


def _metric_history(client, run_id: str, keys) -> dict[str, list[tuple]]:
    return {
        key: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))
        for key in sorted(keys)
    }


def artifact_digests(
    tracking: str, run_id: str | None = None, artifact_uri: str | None = None
) -> dict[str, str]:
    """Return {relative path: sha256} of every artifact of a run or under an artifact URI."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="course-digest-") as folder:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_uri=artifact_uri, dst_path=folder, tracking_uri=tracking
            )
        except (OSError, mlflow.exceptions.MlflowException) as error:
            logger.debug("no artifacts for run %s / %s: %s", run_id, artifact_uri, error)
            return {}
        root = Path(local)
        return {
            str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()
        }


def _datasets(run) -> list[str]:
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return sorted(f"{d.dataset.name} ({d.dataset.digest})" for d in inputs)


def _logged_models(run) -> int:
    return len(run.outputs.model_outputs) if run.outputs else 0


def _own_tags(tags: dict[str, str]) -> list[tuple[str, str]]:
    """Return the tags as sorted pairs, without those MLflow maintains on the target."""
    return sorted((key, value) for key, value in tags.items() if key not in MANAGED_TAGS)


def _run_digests(client, run) -> list[tuple[str, str]]:
    return sorted(artifact_digests(client.tracking_uri, run.info.run_id).items())


def compare_runs(source_client, target_client, source_run, target_run, label: str,
                 run_id_map: dict[str, str], report: VerificationReport) -> None:
    """Add every difference between one source run and its imported copy to `report`."""
    source_info, target_info = source_run.info, target_run.info
    report.add(label, "run ID", source_info.run_id, target_info.run_id)
    report.add(label, "status", source_info.status, target_info.status)
    report.add(label, "start time", _iso(source_info.start_time), _iso(target_info.start_time))
    report.add(label, "end time", _iso(source_info.end_time), _iso(target_info.end_time))
    report.add(label, "user", source_info.user_id, target_info.user_id)
    report.add(label, "params", sorted(source_run.data.params.items()),
               sorted(target_run.data.params.items()))

    source_tags, target_tags = source_run.data.tags, target_run.data.tags
    report.add(label, "tags", _own_tags(source_tags), _own_tags(target_tags))
    source_parent = source_tags.get("mlflow.parentRunId")
    expected_parent = run_id_map.get(source_parent, source_parent) if source_parent else None
    report.add(label, "parent run", expected_parent, target_tags.get("mlflow.parentRunId"))

    keys = set(source_run.data.metrics) | set(target_run.data.metrics)
    source_history = _metric_history(source_client, source_info.run_id, keys)
    target_history = _metric_history(target_client, target_info.run_id, keys)
    for key in sorted(keys):
        report.add(label, "metric history", f"{key}: {source_history[key]}",
                   f"{key}: {target_history[key]}")
    report.count("metric histories", len(keys))

    report.add(label, "artifacts", _run_digests(source_client, source_run),
               _run_digests(target_client, target_run))
    report.add(label, "dataset inputs", _datasets(source_run), _datasets(target_run))
    report.add(label, "logged models of runs", _logged_models(source_run),
               _logged_models(target_run))
    report.count("runs")


def compare_experiments(source_uri: str, target_uri: str, experiment: str,
                        run_id_map: dict[str, str]) -> VerificationReport:
    """Compare an experiment on two servers run by run, matched through `run_id_map`."""
    source_client, target_client = client_for(source_uri), client_for(target_uri)
    source_runs = _experiment_runs(source_client, experiment)
    target_runs = {run.info.run_id: run for run in _experiment_runs(target_client, experiment)}
    report = VerificationReport()
    report.add(experiment, "run count", len(source_runs), len(target_runs))
    labels = _labels(source_runs)
    for run in sorted(source_runs, key=lambda r: labels[r.info.run_id]):
        label = labels[run.info.run_id]
        target_run = target_runs.get(run_id_map.get(run.info.run_id, ""))
        if target_run is None:
            report.add(label, "run count", "present", "missing on the target")
            continue
        compare_runs(source_client, target_client, run, target_run, label, run_id_map, report)
    return report


@dataclass
class _VersionPlan:
    version: object
    logged_model: object
    target_run_id: str


def _plan_copy(
    source_client, target_client, name: str, run_id_map: dict[str, str]
) -> list[_VersionPlan]:
    """Check everything a copy needs before the target is changed; raise naming what is missing."""
    from mlflow.exceptions import MlflowException

    try:
        target_client.get_registered_model(name)
    except MlflowException:
        pass
    else:
        raise ModelAlreadyExistsError(
            f"registered model {name!r} already exists on {target_client.tracking_uri}; nothing "
            "was changed there. Delete it on the target first, or copy under another name."
        )
    versions = source_client.search_model_versions(f"name = '{name}'")
    versions = sorted(versions, key=lambda version: int(version.version))
    if not versions:
        raise RegistryError(
            f"registered model {name!r} has no versions on {source_client.tracking_uri}"
        )
    plans = []
    for version in versions:
        logged = source_client.get_logged_model(model_id_of(version))
        target_run_id = run_id_map.get(logged.source_run_id)
        if target_run_id is None:
            raise RegistryError(
                f"{name} version {version.version} comes from run {logged.source_run_id}, which "
                "is not in run_id_map; migrate its experiment first (migrate_experiment)"
            )
        plans.append(_VersionPlan(version, logged, target_run_id))
    return plans


def _copy_logged_model(source_uri: str, target_client, logged, target_run_id: str):
    """Create the logged model on the target with params, tags, metrics and artifacts."""
    import mlflow
    from mlflow.entities import Metric

    experiment_id = target_client.get_run(target_run_id).info.experiment_id
    tags = {k: v for k, v in logged.tags.items() if k not in MANAGED_TAGS}
    copy = target_client.create_logged_model(
        experiment_id, name=logged.name, source_run_id=target_run_id,
        tags=tags, params=logged.params, model_type=logged.model_type or None,
    )
    with tempfile.TemporaryDirectory(prefix="course-model-") as folder:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=logged.artifact_location, dst_path=folder, tracking_uri=source_uri
        )
        target_client.log_model_artifacts(copy.model_id, local)
    metrics = [Metric(m.key, m.value, m.timestamp, m.step, model_id=copy.model_id,
                      dataset_name=m.dataset_name, dataset_digest=m.dataset_digest)
               for m in logged.metrics or []]
    if metrics:
        # NOTE: these metrics also enter the imported run's history, which already contains
        # them when they were logged in the source run. The course's models have none.
        target_client.log_batch(target_run_id, metrics=metrics)
    target_client.finalize_logged_model(copy.model_id, "READY")
    return copy


def copy_registered_model(source_uri: str, target_uri: str, name: str,
                          run_id_map: dict[str, str]) -> dict[str, str]:
    """Copy a registered model, its logged models, versions, tags and aliases to another server.

    Returns {source version: target version}. Raises ModelAlreadyExistsError,
    before writing anything, when the target already has `name`. On any later
    failure the partial copy is deleted from the target and the error re-raised.
    Version numbers match when the source has no deleted versions.
    """
    source_client, target_client = client_for(source_uri), client_for(target_uri)
    plans = _plan_copy(source_client, target_client, name, run_id_map)
    model = source_client.get_registered_model(name)
    created_models = []
    target_client.create_registered_model(name, tags=model.tags, description=model.description)
    try:
        version_map = {}
        for plan in plans:
            copy = _copy_logged_model(
                source_uri, target_client, plan.logged_model, plan.target_run_id
            )
            created_models.append(copy.model_id)
            created = target_client.create_model_version(
                name, source=f"models:/{copy.model_id}", run_id=plan.target_run_id,
                tags=plan.version.tags, description=plan.version.description,
                model_id=copy.model_id,
            )
            version_map[str(plan.version.version)] = str(created.version)
        for alias, version in model.aliases.items():
            target_client.set_registered_model_alias(name, alias, version_map[str(version)])
    except Exception:
        logger.exception("copy of %s to %s failed; removing the partial copy", name, target_uri)
        target_client.delete_registered_model(name)
        for model_id in created_models:
            target_client.delete_logged_model(model_id)
        raise
    logger.info("copied %s (%d versions) from %s to %s",
                name, len(version_map), source_uri, target_uri)
    return version_map


def _metric_set(logged) -> list[tuple]:
    return sorted((m.key, m.step, m.value) for m in logged.metrics or [])


def compare_registered_models(source_uri: str, target_uri: str, name: str,
                              version_map: dict[str, str]) -> VerificationReport:
    """Compare a registered model on two servers: versions, tags, aliases, logged models."""
    source_client, target_client = client_for(source_uri), client_for(target_uri)
    report = VerificationReport()
    source = source_client.get_registered_model(name)
    target = target_client.get_registered_model(name)
    report.add(name, "registered model", (source.description, sorted(source.tags.items())),
               (target.description, sorted(target.tags.items())))
    mapped_aliases = sorted(
        (alias, version_map.get(str(version), f"unmapped {version}"))
        for alias, version in source.aliases.items()
    )
    target_aliases = sorted((alias, str(version)) for alias, version in target.aliases.items())
    report.add(name, "aliases", mapped_aliases, target_aliases)
    for source_version, target_version in sorted(version_map.items(), key=lambda kv: int(kv[0])):
        label = f"{name} version {source_version}"
        left = source_client.get_model_version(name, source_version)
        right = target_client.get_model_version(name, target_version)
        report.add(label, "model version",
                   (str(left.version), left.description, sorted(left.tags.items())),
                   (str(right.version), right.description, sorted(right.tags.items())))
        _compare_logged_models(source_client, target_client, left, right, label, report)
        report.count("model versions")
    return report


def _model_fields(logged) -> tuple:
    """Return what a logged model copy must keep: name, params, own tags and metrics."""
    return (logged.name, sorted(logged.params.items()), _own_tags(logged.tags), _metric_set(logged))


def _model_digests(client, logged) -> list[tuple[str, str]]:
    digests = artifact_digests(client.tracking_uri, artifact_uri=logged.artifact_location)
    return sorted(digests.items())


def _compare_logged_models(source_client, target_client, left, right, label, report) -> None:
    source_model = source_client.get_logged_model(model_id_of(left))
    target_model = target_client.get_logged_model(model_id_of(right))
    report.add(label, "logged model", _model_fields(source_model), _model_fields(target_model))
    report.add(label, "logged model", _model_digests(source_client, source_model),
               _model_digests(target_client, target_model))


def predictions_from(uri: str, model_uri: str, features: np.ndarray) -> np.ndarray:
    """Load `model_uri` from the tracking server `uri` and return its predictions in degC."""
    import mlflow

    with tracking_uri(uri):
        model = mlflow.pyfunc.load_model(model_uri)
    return np.asarray(model.predict(np.asarray(features, dtype=np.float32))).reshape(-1)
