"""Checks of the runs and models the notebooks leave in a tracking store, via the client.

After a notebook has executed against a store, `verify` compares what that
store contains with what one execution of the notebook logs, times the number
of executions. A notebook that logged somewhere else leaves the store short,
so the check fails even when every cell's output matched. Only the notebooks'
own experiments are counted: the exercise experiments also receive the runs
of the solutions notebooks, which not every execution includes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import mlflow

from helpers.registry import SWEEP_EPOCHS as SWEEP_EPOCHS_04


@dataclass(frozen=True)
class History:
    """A metric of one named run and the number of points one execution logs to it."""

    experiment: str
    run_name: str
    metric: str
    points: int


@dataclass(frozen=True)
class Expectation:
    """Runs, metric histories and models that one execution of a notebook logs."""

    runs: dict[str, int]
    histories: list[History] = field(default_factory=list)
    logged_models: dict[str, int] = field(default_factory=dict)
    # Registered models whose whole name matches this pattern, their versions and aliases.
    registered_pattern: str | None = None
    registered_versions: int = 0
    aliases: tuple[str, ...] = ()


EXPECTED = {
    "01": Expectation(
        runs={"01-chaos-demo": 7, "01-tracking-basics": 5, "01-minimal": 4, "01-storage-targets": 1},
        histories=[
            History("01-chaos-demo", "lr=0.01 epochs=20", "val_loss", 20),
            History("01-tracking-basics", "logging-tour", "val_loss", 15),
            History("01-tracking-basics", "live", "val_loss", 10),
            History("01-minimal", "minimal", "train_loss", 5),
        ],
    ),
    "02": Expectation(
        runs={"02-wind-chill": 6},
        histories=[
            History("02-wind-chill", "demo", "val_loss", 40),
            History("02-wind-chill", "lr=0.01 width=32", "val_rmse_c", 40),
        ],
        logged_models={"02-wind-chill": 5},
    ),
    "04": Expectation(
        runs={"wind-chill-registry": 6},
        histories=[History("wind-chill-registry", "lr=0.01 width=32", "val_loss", SWEEP_EPOCHS_04)],
        logged_models={"wind-chill-registry": 5},
        # One registered model per execution, named after its sweep's parent run.
        registered_pattern=r"wind-chill-[0-9a-f]{8}",
        registered_versions=3,
        aliases=("production", "staging"),
    ),
}


def _runs_named(client: mlflow.MlflowClient, experiment_id: str, run_name: str) -> list:
    return client.search_runs(
        [experiment_id], filter_string=f"attributes.run_name = '{run_name}'", max_results=1000
    )


def _check_experiment(client, name: str, expected_runs: int, executions: int) -> tuple[str | None, list[str]]:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return None, [f"experiment {name!r} is missing"]
    found = len(client.search_runs([experiment.experiment_id], max_results=5000))
    if found != expected_runs * executions:
        return experiment.experiment_id, [
            f"experiment {name!r} holds {found} runs, expected {expected_runs} x {executions}"
        ]
    return experiment.experiment_id, []


def _check_history(client, experiment_id: str, history: History, executions: int) -> list[str]:
    runs = _runs_named(client, experiment_id, history.run_name)
    if len(runs) != executions:
        return [f"{history.experiment}: {len(runs)} runs named {history.run_name!r}, expected {executions}"]
    problems = []
    for run in runs:
        points = client.get_metric_history(run.info.run_id, history.metric)
        steps = sorted(point.step for point in points)
        if steps != list(range(history.points)):
            problems.append(
                f"{history.experiment}/{history.run_name}: {history.metric} has steps "
                f"{steps[:5]}... ({len(steps)} points), expected 0..{history.points - 1}"
            )
    return problems


def _check_registered(client, expectation: Expectation, executions: int) -> list[str]:
    pattern = re.compile(expectation.registered_pattern)
    models = [model for model in client.search_registered_models(max_results=1000)
              if pattern.fullmatch(model.name)]
    problems = []
    if len(models) != executions:
        problems.append(f"{len(models)} registered models match {pattern.pattern!r}, "
                        f"expected {executions}")
    for model in models:
        versions = client.search_model_versions(f"name = '{model.name}'")
        if len(versions) != expectation.registered_versions:
            problems.append(f"{model.name} has {len(versions)} versions, "
                            f"expected {expectation.registered_versions}")
        missing = sorted(set(expectation.aliases) - set(model.aliases))
        if missing:
            problems.append(f"{model.name} lacks the aliases {missing}")
    return problems


def verify(tracking_uri: str, notebooks: list[str], executions: int) -> list[str]:
    """Return every difference between the store and `executions` runs of `notebooks` (e.g. "01")."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    problems = []
    for notebook in notebooks:
        expectation = EXPECTED.get(notebook)
        if expectation is None:
            continue
        experiment_ids = {}
        for name, count in expectation.runs.items():
            experiment_id, found = _check_experiment(client, name, count, executions)
            experiment_ids[name] = experiment_id
            problems += found
        for history in expectation.histories:
            if experiment_ids.get(history.experiment):
                problems += _check_history(client, experiment_ids[history.experiment], history, executions)
        for name, count in expectation.logged_models.items():
            if experiment_ids.get(name):
                models = client.search_logged_models(experiment_ids=[experiment_ids[name]])
                if len(models) != count * executions:
                    problems.append(f"experiment {name!r} holds {len(models)} logged models, "
                                    f"expected {count} x {executions}")
        if expectation.registered_pattern:
            problems += _check_registered(client, expectation, executions)
    return problems
