"""The screenshot tool drives the real MLflow UI and the pages show the course's names."""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import nbformat
import pytest

from helpers.servers import ui_server
from helpers.store import LocalStore

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import screenshots  # noqa: E402

needs_chromium = pytest.mark.skipif(screenshots.chromium_path() is None, reason="Chromium is not installed")
PAGES = ("ui-run-list", "ui-run-charts", "ui-metric-page", "ui-registered-model")
# A model name as notebook 04 builds it: the prefix and 8 hex digits of a parent run ID.
MODEL = "ui-check-0123abcd"


def notebook_source(name: str) -> str:
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def log_sweep(client, experiment_id: str, parent_name: str, rates: tuple[str, ...]):
    """Log a parent run with one child run per learning rate, as notebook 02's sweep does."""
    parent = client.create_run(experiment_id, run_name=parent_name)
    children = []
    for rate in rates:
        run = client.create_run(experiment_id, run_name=f"{parent_name} lr={rate}",
                                tags={"mlflow.parentRunId": parent.info.run_id})
        client.log_param(run.info.run_id, "learning_rate", rate)
        for step in range(5):
            client.log_metric(run.info.run_id, "val_loss", float(rate) / (step + 1), step=step)
        client.set_terminated(run.info.run_id)
        children.append(run)
    client.set_terminated(parent.info.run_id)
    return parent, children


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("ui-store")).create()
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri)
    experiment_id = client.create_experiment("ui-check", artifact_location=(store.artifacts / "ui").as_uri())
    log_sweep(client, experiment_id, "older", ("0.1",))
    parent, runs = log_sweep(client, experiment_id, "newest", ("0.01", "0.003"))
    for name in ("ui-check-ffffffff", MODEL, f"{MODEL}-prod"):
        client.create_registered_model(name)
    for _ in range(2):
        version = client.create_model_version(MODEL, f"runs:/{runs[0].info.run_id}/model",
                                              run_id=runs[0].info.run_id)
    client.set_registered_model_alias(MODEL, "production", "1")
    client.set_registered_model_alias(MODEL, "staging", version.version)
    return store, client, experiment_id, parent, runs


@pytest.fixture(scope="module")
def pages(store, tmp_path_factory):
    store, client, experiment_id, parent, runs = store
    routes = screenshots.page_routes(experiment_id, [r.info.run_id for r in runs], "val_loss", MODEL)
    wait_for = {"ui-run-list": "newest lr=0.01", "ui-run-charts": "val_loss",
                "ui-metric-page": "Completed Runs", "ui-registered-model": "Version"}
    folder = tmp_path_factory.mktemp("images")
    with ui_server(store.tracking_uri, str(store.artifacts)) as ui:
        texts = screenshots.capture(ui.url, routes, wait_for, folder, expand_run_id=parent.info.run_id)
    return texts, folder


def test_defaults_name_what_notebooks_create():
    experiment = screenshots.DEFAULT_EXPERIMENT
    assert f'EXPERIMENT = "{experiment}"' in notebook_source("02_wind_chill_training.ipynb")
    prefix = screenshots.DEFAULT_MODEL_PREFIX
    assert f'execution_model_name("{prefix}"' in notebook_source("04_registry_and_serving.ipynb")


def test_latest_sweep_picks_newest_parent(store):
    _, client, experiment_id, parent, runs = store
    found_experiment, found_parent, children = screenshots.latest_sweep(client, "ui-check", "val_loss")
    assert found_experiment == experiment_id
    assert found_parent == parent.info.run_id
    assert sorted(run.info.run_name for run in children) == ["newest lr=0.003", "newest lr=0.01"]


def test_latest_sweep_names_missing_experiment(store):
    _, client, *_ = store
    with pytest.raises(SystemExit, match="experiment 'absent' not found"):
        screenshots.latest_sweep(client, "absent", "val_loss")


def test_newest_model_matches_execution_names(store):
    _, client, *_ = store
    # The -prod copy and a name without 8 hex digits are not execution names.
    assert screenshots.newest_model(client, "ui-check") == MODEL


def test_newest_model_names_missing_prefix(store):
    _, client, *_ = store
    with pytest.raises(SystemExit, match="no registered model named absent-<8 hex digits>"):
        screenshots.newest_model(client, "absent")


@needs_chromium
def test_run_list_shows_expanded_sweep(pages):
    texts, _ = pages
    assert "ui-check" in texts["ui-run-list"]
    assert "newest lr=0.01" in texts["ui-run-list"]
    assert "newest lr=0.003" in texts["ui-run-list"]


@needs_chromium
def test_charts_and_metric_page_show_metric(pages):
    texts, _ = pages
    assert "val_loss" in texts["ui-run-charts"]
    assert "val_loss" in texts["ui-metric-page"]
    assert "Comparing 2 Runs" in texts["ui-metric-page"]


@needs_chromium
def test_model_page_shows_both_aliases(pages):
    texts, _ = pages
    assert MODEL in texts["ui-registered-model"]
    assert "production" in texts["ui-registered-model"]
    assert "staging" in texts["ui-registered-model"]
    assert "Version 2" in texts["ui-registered-model"]


@needs_chromium
def test_every_page_saved_as_png(pages):
    _, folder = pages
    for name in PAGES:
        image = folder / f"{name}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name}.png is not a PNG"
        assert image.stat().st_size > 20_000, f"{name}.png looks blank"
