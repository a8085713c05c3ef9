"""Client processes against a real SQLite-backed server: users, load, a killed server, a dead one."""

from __future__ import annotations

import os

import mlflow
import pytest

from helpers import clients, servers
from helpers.store import COURSE_ENVIRONMENT


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A lean tracking server with a SQLite backend store, shared by the module's tests."""
    folder = tmp_path_factory.mktemp("team")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_STATE_DIR", str(folder / "state"))
        server = servers.tracking_server(f"sqlite:///{folder}/mlflow.db",
                                         artifacts_destination=str(folder / "artifacts"))
        with server:
            yield server
    assert servers.port_is_free(server.port)


def test_two_users_attributed_to_their_runs(team):
    experiment_id = mlflow.MlflowClient(team.url).create_experiment("two-users")
    results = clients.run_loggers(team.url, experiment_id, count=5, users=["alice", "bob"])
    assert [result.get("error") for result in results] == [None, None]
    runs = mlflow.MlflowClient(team.url).search_runs([experiment_id])
    users = sorted(run.data.tags["mlflow.user"] for run in runs)
    assert users == ["alice", "bob"]
    stored = clients.metric_values(team.url, experiment_id)
    assert all(steps == set(range(5)) for steps in stored.values())


def test_eight_clients_store_every_metric(team):
    experiment_id = mlflow.MlflowClient(team.url).create_experiment("load")
    summary = clients.fan_out(team.url, experiment_id, clients=8, count=200, batch_size=1)
    assert [result.get("error") for result in summary["clients"]] == [None] * 8
    assert sum(result["logged"] for result in summary["clients"]) == 1600
    stored = clients.metric_values(team.url, experiment_id)
    assert len(stored) == 8
    assert sum(len(steps) for steps in stored.values()) == 1600
    print(f"SQLite-backed server: 1600/1600 metrics from 8 clients in {summary['seconds']:.1f} s")


def test_killed_server_keeps_acknowledged_metrics(team, tmp_path):
    experiment_id = mlflow.MlflowClient(team.url).create_experiment("crash")
    acknowledged = tmp_path / "acknowledged.txt"
    arguments = clients.log_metrics_arguments(experiment_id, "crash-run", 5000,
                                              ack_file=acknowledged, interval_s=0.01)
    client = clients.start_client(arguments, clients.client_environment(team.url))
    try:
        clients.wait_for_lines(acknowledged, 40)
        killed = team.kill()
    finally:
        outcome = clients.collect([client], timeout_s=60)[0]
    assert len(killed) >= 2, "the CLI and its uvicorn worker both get SIGKILL"
    assert "error" in outcome, "the client must notice that the server died"
    team.start()
    acknowledged_steps = clients.acknowledged_steps(acknowledged)[outcome["run_id"]]
    stored_steps = clients.metric_values(team.url, experiment_id)[outcome["run_id"]]
    assert len(acknowledged_steps) >= 40
    assert acknowledged_steps <= stored_steps, f"lost: {sorted(acknowledged_steps - stored_steps)}"
    assert len(stored_steps - acknowledged_steps) <= 1, "at most the value in flight may be extra"


def test_dead_server_fails_fast(monkeypatch):
    for key, value in COURSE_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    failure = clients.time_failure(f"http://{servers.LOCALHOST}:{servers.free_port()}")
    assert failure["error"] is not None
    assert "connection refused" in failure["error"]
    assert failure["seconds"] < 10, f"took {failure['seconds']:.1f} s; check the retry settings"


def test_client_environment_drops_parent_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "parent-password")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "parent-key")
    env = clients.client_environment("http://127.0.0.1:1", user="carol", home=tmp_path)
    assert "MLFLOW_TRACKING_PASSWORD" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["USER"] == env["LOGNAME"] == "carol"
    assert env["HOME"] == str(tmp_path)
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:1"
    assert "127.0.0.1" in env["NO_PROXY"]
    assert os.environ["HOME"] != str(tmp_path)
