"""Screenshots of the real MLflow UI, taken in headless Chromium with Playwright.

`make screenshots` starts the UI on the course store and saves four pages into
notebooks/images/: the experiment's run list, the run comparison charts, one
metric's page and the registered model with its aliases. The notebooks show
these images. The defaults are the names the notebooks create: the newest sweep
of notebook 02's experiment, and the newest model that notebook 04 registered,
named by a prefix, a dash and 8 hex digits of that execution's parent run ID.
Usage: python scripts/screenshots.py [--experiment NAME] [--model-prefix PREFIX | --model NAME]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "notebooks" / "images"
CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network: without them Chromium keeps calling home at start.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
]
VIEWPORT = {"width": 1400, "height": 860}
# Names the notebooks create: notebook 02's experiment and notebook 04's model prefix.
DEFAULT_EXPERIMENT = "02-wind-chill"
DEFAULT_MODEL_PREFIX = "wind-chill"
# The model page lists versions newest first, each row as tall as its tags, so the
# alias on an older version needs a taller window to be in the picture.
# NOTE: 1400 px fits notebook 04's three versions; more versions or tags would push
# the oldest version's alias out of the picture again.
PAGE_HEIGHTS = {"ui-registered-model": 1400}


def chromium_path() -> str | None:
    """Return the Chromium executable to drive, or None when none is installed."""
    return next((path for path in (CHROMIUM, shutil.which("chromium")) if path and Path(path).exists()), None)


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def page_routes(experiment_id: str, run_ids: list[str], metric: str, model: str) -> dict[str, str]:
    """Return the UI's hash routes of the four pages, keyed by image name."""
    metric_query = urllib.parse.urlencode(
        {"metric": compact(metric), "plot_metric_keys": compact([metric])}, quote_via=urllib.parse.quote
    )
    return {
        "ui-run-list": f"#/experiments/{experiment_id}/runs",
        "ui-run-charts": f"#/experiments/{experiment_id}/runs?compareRunsMode=CHART",
        "ui-metric-page": (f"#/metric?runs={compact(run_ids)}&{metric_query}"
                           f"&experiments={compact([experiment_id])}&x_axis=step"),
        "ui-registered-model": f"#/models/{urllib.parse.quote(model)}",
    }


def close_assistant(page) -> None:
    """Close the MLflow Assistant side panel if the UI opened it, to give the page room."""
    for button in page.locator('button[aria-label="Close"]').all():
        box = button.bounding_box()
        # The panel's own close button sits in its header at the top right.
        if box and box["x"] > VIEWPORT["width"] * 0.7 and box["y"] < 100:
            button.click()
            page.wait_for_timeout(800)
            return


def expand_child_runs(page, parent_run_id: str) -> None:
    """Click the expand button of a parent run's row in the run list, so its child runs show."""
    # The grid splits each row into several elements, one per pinned column block.
    rows = page.locator(f'[role="row"][row-id="{parent_run_id}"]')
    rows.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
    page.wait_for_timeout(1000)


def capture(
    ui_url: str, routes: dict[str, str], wait_for: dict[str, str], folder: Path,
    expand_run_id: str | None = None,
) -> dict[str, str]:
    """Open each route, wait for its expected text and save a PNG. Return each page's text.

    With `expand_run_id`, the child runs of that parent run are expanded on the
    run list first, because the UI collapses them and hides them from the charts.
    """
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    texts = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            for name, route in routes.items():
                height = PAGE_HEIGHTS.get(name, VIEWPORT["height"])
                page.set_viewport_size({**VIEWPORT, "height": height})
                page.goto(f"{ui_url}/{route}")
                if expand_run_id and name == "ui-run-list":
                    parent_row = page.locator(f'[role="row"][row-id="{expand_run_id}"]').first
                    parent_row.wait_for(timeout=60_000)
                    expand_child_runs(page, expand_run_id)
                page.get_by_text(wait_for[name]).first.wait_for(timeout=60_000)
                page.wait_for_timeout(1500)
                close_assistant(page)
                page.screenshot(path=str(folder / f"{name}.png"))
                texts[name] = page.inner_text("body")
        finally:
            browser.close()
    return texts


def latest_sweep(client, experiment_name: str, metric: str) -> tuple[str, str, list]:
    """Find the experiment's newest parent run whose child runs logged `metric`.

    Returns the experiment ID, that parent's run ID and its child runs.
    """
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise SystemExit(f"experiment {experiment_name!r} not found in the course store; run notebook 02 first")
    parents = client.search_runs([experiment.experiment_id], "tags.mlflow.parentRunId IS NULL",
                                 order_by=["attributes.start_time DESC"], max_results=20)
    for parent in parents:
        children = client.search_runs([experiment.experiment_id],
                                      f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        children = [run for run in children if metric in run.data.metrics]
        if children:
            return experiment.experiment_id, parent.info.run_id, children
    raise SystemExit(f"no sweep with metric {metric!r} in {experiment_name!r}; run notebook 02 first")


def newest_model(client, prefix: str) -> str:
    """Return the newest registered model named `prefix-` and 8 hex digits."""
    pattern = re.compile(rf"{re.escape(prefix)}-[0-9a-f]{{8}}")
    models, page_token = [], None
    while True:
        page = client.search_registered_models(
            f"name LIKE '{prefix}-%'", max_results=100, page_token=page_token
        )
        models += [model for model in page if pattern.fullmatch(model.name)]
        page_token = page.token
        if not page_token:
            break
    if not models:
        raise SystemExit(
            f"no registered model named {prefix}-<8 hex digits> in the course store; "
            "run notebook 04 first"
        )
    return max(models, key=lambda model: model.creation_timestamp).name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                        help="experiment whose newest sweep is shown (default: notebook 02's)")
    parser.add_argument("--metric", default="val_loss", help="metric shown on the metric page")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--model-prefix", default=DEFAULT_MODEL_PREFIX,
                        help="show the newest registered model named PREFIX-<8 hex digits> "
                             "(default: notebook 04's)")
    models.add_argument("--model", help="registered model shown with its aliases, by exact name")
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("Chromium not found: install it (Debian or Ubuntu: apt-get install chromium) and run again")
    sys.path.insert(0, str(REPO))
    import mlflow

    from helpers.servers import ui_server
    from helpers.store import configure_mlflow, course_store

    configure_mlflow()
    client = mlflow.MlflowClient()
    experiment_id, parent_run_id, runs = latest_sweep(client, args.experiment, args.metric)
    model = args.model or newest_model(client, args.model_prefix)
    if client.search_registered_models(f"name = '{model}'") == []:
        sys.exit(f"registered model {model!r} not found; run notebook 04 first")
    routes = page_routes(experiment_id, [run.info.run_id for run in runs], args.metric, model)
    wait_for = {"ui-run-list": runs[0].info.run_name, "ui-run-charts": args.metric,
                "ui-metric-page": "Completed Runs", "ui-registered-model": "Version"}
    store = course_store()
    with ui_server(store.tracking_uri, str(store.artifacts)) as ui:
        capture(ui.url, routes, wait_for, IMAGES, expand_run_id=parent_run_id)
    for name in routes:
        print(f"saved notebooks/images/{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
