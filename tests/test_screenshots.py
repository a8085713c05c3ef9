"""The screenshot tool drives the real MLflow UI and the pages show the course's names."""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import pytest

from helpers.servers import ui_server
from helpers.store import LocalStore

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import screenshots  # noqa: E402

pytestmark = pytest.mark.skipif(screenshots.chromium_path() is None, reason="Chromium is not installed")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("ui-store")).create()
    client = mlflow.MlflowClient(tracking_uri=store.tracking_uri)
    experiment_id = client.create_experiment("ui-check", artifact_location=(store.artifacts / "ui").as_uri())
    runs = []
    for rate in ("0.01", "0.003"):
        run = client.create_run(experiment_id, run_name=f"lr={rate}")
        client.log_param(run.info.run_id, "learning_rate", rate)
        for step in range(5):
            client.log_metric(run.info.run_id, "val_loss", float(rate) / (step + 1), step=step)
        client.set_terminated(run.info.run_id)
        runs.append(run)
    client.create_registered_model("ui-check-model")
    version = client.create_model_version("ui-check-model", f"runs:/{runs[0].info.run_id}/model",
                                          run_id=runs[0].info.run_id)
    client.set_registered_model_alias("ui-check-model", "production", version.version)
    routes = screenshots.page_routes(experiment_id, [r.info.run_id for r in runs], "val_loss", "ui-check-model")
    wait_for = {"ui-run-list": "lr=0.01", "ui-run-charts": "val_loss", "ui-metric-page": "Completed Runs",
                "ui-registered-model": "Version"}
    folder = tmp_path_factory.mktemp("images")
    with ui_server(store.tracking_uri, str(store.artifacts)) as ui:
        texts = screenshots.capture(ui.url, routes, wait_for, folder)
    return texts, folder


def test_run_list_shows_experiment_and_runs(pages):
    texts, _ = pages
    assert "ui-check" in texts["ui-run-list"]
    assert "lr=0.01" in texts["ui-run-list"] and "lr=0.003" in texts["ui-run-list"]


def test_charts_and_metric_page_show_metric(pages):
    texts, _ = pages
    assert "val_loss" in texts["ui-run-charts"]
    assert "val_loss" in texts["ui-metric-page"]
    assert "Comparing 2 Runs" in texts["ui-metric-page"]


def test_model_page_shows_alias(pages):
    texts, _ = pages
    assert "ui-check-model" in texts["ui-registered-model"]
    assert "production" in texts["ui-registered-model"]
    assert "Version 1" in texts["ui-registered-model"]


def test_every_page_saved_as_png(pages):
    _, folder = pages
    for name in ("ui-run-list", "ui-run-charts", "ui-metric-page", "ui-registered-model"):
        image = folder / f"{name}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name}.png is not a PNG"
        assert image.stat().st_size > 20_000, f"{name}.png looks blank"
