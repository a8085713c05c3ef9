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


def test_choice_draws_png_into_panel(client):
    explorer = RunExplorer(client)
    explorer.choose("beta", "loss")
    assert explorer.plot.value[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="metric 'loss' not found"):
        explorer.choose("beta", "loss", filter_string="params.lr = 'none'")
    assert explorer.plot.value == b""


def test_unknown_choice_names_options(client):
    explorer = RunExplorer(client)
    with pytest.raises(ValueError, match="experiment 'gamma' not found"):
        explorer.choose("gamma", "loss")
    with pytest.raises(ValueError, match="metric 'accuracy' not found"):
        explorer.choose("alpha", "accuracy")


def test_filter_string_narrows_runs(client):
    explorer = RunExplorer(client, filter_string="params.lr = '0.1'")
    chosen = explorer.choose("alpha", "loss")
    assert [r.info.run_name for r in chosen] == ["alpha lr=0.1"]
    widened = explorer.choose("alpha", "loss", filter_string="")
    assert len(widened) == 2


def test_invalid_filter_raises_with_reason(client):
    explorer = RunExplorer(client)
    with pytest.raises(ValueError, match="invalid filter"):
        explorer.choose("alpha", "loss", filter_string="params.lr > '0.05'")
    assert explorer.matching_runs() == []


def test_max_runs_keeps_newest(client):
    explorer = RunExplorer(client, max_runs=2)
    explorer.choose("alpha", "loss")
    names = [run.info.run_name for run in explorer._runs]
    assert names == ["alpha lr=0.01", "no metric"]


def test_choose_same_experiment_reloads(tmp_path):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment_id = client.create_experiment("growing")
    first = client.create_run(experiment_id, run_name="first")
    client.log_metric(first.info.run_id, "loss", 1.0, step=0)
    explorer = RunExplorer(client)
    assert len(explorer.choose("growing", "loss")) == 1
    second = client.create_run(experiment_id, run_name="second")
    client.log_metric(second.info.run_id, "loss", 0.5, step=0)
    assert len(explorer.choose("growing", "loss")) == 2


def test_summary_is_plain_text_of_display(client):
    explorer = RunExplorer(client)
    explorer.choose("alpha", "loss", param="lr", value="0.01", filter_string="params.lr != '7'")
    expected = (
        "Run explorer: experiment 'alpha', filter \"params.lr != '7'\", lr = '0.01', metric 'loss'\n"
        "1 run matches:\n"
        "  alpha lr=0.01"
    )
    assert explorer.summary() == expected
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == expected
    assert "application/vnd.jupyter.widget-view+json" in bundle
