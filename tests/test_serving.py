"""REST serving of `models:/<name>@production` on 127.0.0.1, as notebook 04 shows it.

One module fixture registers two tiny models and serves the production alias
with `mlflow models serve --env-manager local`. Every bad request gets the
status MLflow 3.17.2 documents for it, and the server still serves correct
requests afterwards. The last test rolls back, restarts and checks that the
served predictions change back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from helpers import registry, serving
from helpers.servers import mlflow_executable, model_server
from helpers.store import use_experiment
from helpers.tracking import tracked_training
from helpers.training import TrainConfig
from helpers.windchill import DataSettings, make_splits, wind_chill
from conftest import isolate_mlflow

MODEL = "served-model"
TINY_DATA = DataSettings(n_samples=400)
ROWS = [[-20.0, 30.0], [-5.0, 10.0], [0.0, 50.0]]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An SQLite store with MODEL versions 1 and 2, @production on version 2."""
    root = tmp_path_factory.mktemp("serving")
    with pytest.MonkeyPatch.context() as patch:
        isolate_mlflow(patch, root)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        use_experiment("serving-tests")
        splits = make_splits(TINY_DATA)
        for epochs in (1, 10):
            summary = tracked_training(TrainConfig(hidden_layers=(8,), epochs=epochs), splits,
                                       TINY_DATA, f"{epochs} epochs", log_system_metrics=False)
            registry.register(summary.model_uri, MODEL)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(MODEL, "production", "2")
        client.set_model_version_tag(MODEL, "2", "previous_production_version", "1")
        try:
            yield uri
        finally:
            mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def server(store):
    managed = serving.serve_alias(MODEL, "production", store)
    managed.start(timeout_s=120)
    try:
        yield managed
    finally:
        managed.stop()
    assert not managed.is_running()


def version_predictions(version: str) -> np.ndarray:
    return registry.version_predictions(MODEL, version, np.asarray(ROWS, dtype=np.float32))


def test_payload_formats():
    assert json.loads(serving.payload([[-5, 10]])) == {"inputs": [[-5.0, 10.0]]}
    split = json.loads(serving.payload([[-5, 10]], "dataframe_split"))
    assert split == {"dataframe_split": {"columns": ["temperature_c", "wind_speed_kmh"],
                                         "data": [[-5.0, 10.0]]}}
    with pytest.raises(ValueError, match="not supported"):
        serving.payload([[-5, 10]], "records")


def test_non_loopback_url_is_rejected():
    for url in ("http://10.0.0.1:5000", "http://example.org:80", "http://127.0.0.1"):
        with pytest.raises(ValueError, match="not a loopback address"):
            serving.post_invocations(url, "{}")


def test_command_always_serves_from_this_environment(store):
    managed = serving.serve_alias(MODEL, "production", store)
    command = managed.command()
    assert command[command.index("--env-manager") + 1] == "local"
    assert command[command.index("--model-uri") + 1] == f"models:/{MODEL}@production"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert managed.env["MLFLOW_TRACKING_URI"] == store


def test_serve_without_local_env_manager_fails(store, tmp_path):
    # Without --env-manager local MLflow tries to build a new environment for the model.
    # PATH contains no pyenv here, and the proxy variables point at a closed loopback port,
    # so any download attempt fails on 127.0.0.1 instead of leaving the machine.
    closed = "http://127.0.0.1:9"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path), "MLFLOW_TRACKING_URI": store, "MLFLOW_DISABLE_TELEMETRY": "true",
        "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "http_proxy": closed, "https_proxy": closed,
        "PIP_NO_INDEX": "1", "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never",
    }
    command = [mlflow_executable(), "models", "serve", "-m", f"models:/{MODEL}@production",
               "--host", "127.0.0.1", "--port", "1"]
    finished = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode != 0
    assert "pyenv" in finished.stderr or "virtualenv" in finished.stderr, finished.stderr[-2000:]


def test_both_formats_match_logged_model(server):
    expected = version_predictions("2")
    by_inputs = serving.predict(server.url, ROWS, "inputs")
    by_split = serving.predict(server.url, ROWS, "dataframe_split")
    assert np.allclose(by_inputs, expected, atol=1e-5)
    assert np.allclose(by_split, expected, atol=1e-5)


def test_served_model_tracks_formula(server):
    rows = np.asarray(ROWS)
    served = serving.predict(server.url, rows)
    assert np.max(np.abs(served - wind_chill(rows[:, 0], rows[:, 1]))) < 15.0


@pytest.mark.parametrize("case", list(serving.BAD_REQUESTS))
def test_bad_request_gets_documented_status(server, case):
    body, content_type = serving.BAD_REQUESTS[case]
    reply = serving.post_invocations(server.url, body, content_type)
    assert reply.status == serving.DOCUMENTED_STATUS[case], reply.body[:500]
    assert reply.message


def test_server_answers_after_bad_requests(server):
    replies = serving.bad_request_replies(server.url)
    assert {name: reply.status for name, reply in replies.items()} == serving.DOCUMENTED_STATUS
    assert np.allclose(serving.predict(server.url, ROWS), version_predictions("2"), atol=1e-5)


def test_pre_2_payload_message_names_current_formats(server):
    body, content_type = serving.BAD_REQUESTS["pre-2.0 payload (columns/data)"]
    message = serving.post_invocations(server.url, body, content_type).message
    for field in ("inputs", "instances", "dataframe_split", "dataframe_records"):
        assert field in message


def test_null_is_served_as_nan(server):
    body, content_type = serving.BAD_REQUESTS["null temperature"]
    reply = serving.post_invocations(server.url, body, content_type)
    assert "NaN" in reply.body


def test_format_replies_flags_undocumented_status():
    replies = {"empty list": serving.Reply(200, '{"predictions": []}'),
               "malformed JSON": serving.Reply(400, '{"message": "Invalid\\n input"}')}
    lines = serving.format_replies(replies).splitlines()
    assert "(documented 400)" in lines[0]
    assert lines[1].endswith("Invalid input")


def test_predict_raises_on_error_status(server, monkeypatch):
    monkeypatch.setattr(serving, "payload", lambda rows, format="inputs": '{"inputs": []}')
    with pytest.raises(serving.ServingError, match="returned 400"):
        serving.predict(server.url, ROWS)


def test_latency_of_sequential_requests(server):
    latency = serving.measure_latency(server.url, requests=50, warmup=5)
    assert latency.requests == 50
    assert 0 < latency.median_ms <= latency.p95_ms
    with pytest.raises(ValueError, match="at least one request"):
        serving.measure_latency(server.url, requests=0)


def test_prediction_panel_shows_served_and_formula(server):
    panel = serving.prediction_panel(server.url, temperature_c=-15.0, wind_speed_kmh=30.0)
    temperature, wind, result = panel.children
    served = serving.predict(server.url, [[-15.0, 30.0]])[0]
    assert f"served model: {served:.1f} degC" in result.value
    assert f"formula: {float(wind_chill(-15.0, 30.0)):.1f} degC" in result.value
    temperature.value = -30.0
    assert f"formula: {float(wind_chill(-30.0, 30.0)):.1f} degC" in result.value


def test_panel_reports_failed_request(store):
    stopped = model_server(f"models:/{MODEL}@production")
    stopped.port = 9  # nothing listens on the discard port of 127.0.0.1
    panel = serving.prediction_panel(stopped.url)
    assert panel.children[2].value.startswith("request failed")


def test_rollback_reaches_server_after_restart(server):
    before = serving.predict(server.url, ROWS)
    assert registry.rollback(MODEL) == "1"
    assert np.array_equal(serving.predict(server.url, ROWS), before)
    server.stop()
    server.start(timeout_s=120)
    after = serving.predict(server.url, ROWS)
    assert np.array_equal(after, version_predictions("1"))
    assert not np.allclose(after, before)
