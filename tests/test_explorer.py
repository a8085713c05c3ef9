"""The run explorer filters runs by parameter and plots the chosen metric."""

from __future__ import annotations

import mlflow
import pytest

from helpers.explorer import ANY, RunExplorer


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('explorer')}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri)
    for name in ("alpha", "beta"):
        experiment_id = client.create_experiment(name)
        for lr in ("0.1", "0.01"):
            run = client.create_run(experiment_id, run_name=f"{name} lr={lr}")
            client.log_param(run.info.run_id, "lr", lr)
            for step in range(3):
                client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
            client.set_terminated(run.info.run_id)
    # A run without the metric must not be offered for plotting.
    bare = client.create_run(client.get_experiment_by_name("alpha").experiment_id, run_name="no metric")
    client.log_param(bare.info.run_id, "lr", "0.1")
    return client


def test_lists_experiments_without_default(client):
    explorer = RunExplorer(client)
    assert list(explorer.experiment.options) == ["alpha", "beta"]


def test_param_filter_narrows_runs(client):
    explorer = RunExplorer(client)
    every = explorer.choose("alpha", "loss")
    assert sorted(r.info.run_name for r in every) == ["alpha lr=0.01", "alpha lr=0.1"]
    chosen = explorer.choose("alpha", "loss", param="lr", value="0.01")
    assert [r.info.run_name for r in chosen] == ["alpha lr=0.01"]
    assert list(explorer.value.options) == [ANY, "0.01", "0.1"]


def test_figure_has_one_line_per_run(client):
    explorer = RunExplorer(client)
    explorer.choose("beta", "loss")
    figure = explorer.figure()
    lines = figure.axes[0].get_lines()
    assert len(lines) == 2
    assert list(lines[0].get_xdata()) == [0, 1, 2]


def test_unknown_choice_names_options(client):
    explorer = RunExplorer(client)
    with pytest.raises(ValueError, match="experiment 'gamma' not found"):
        explorer.choose("gamma", "loss")
    with pytest.raises(ValueError, match="metric 'accuracy' not found"):
        explorer.choose("alpha", "accuracy")
