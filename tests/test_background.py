"""Servers that die with their kernel, outlive it, or run inside tmux; the systemd unit text."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from helpers import background, servers

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_server_dies_with_kernel_group(tmp_path):
    stand_in = background.KernelStandIn(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    stand_in.start()
    port = stand_in.server["port"]
    try:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).ok
        assert len(stand_in.group_members()) >= 3, "kernel, mlflow server and its worker"
    finally:
        killed = stand_in.kill_group()
    assert not [pid for pid in killed if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert servers.port_is_free(port)
    assert servers.recorded_servers() == []


def test_stop_all_after_kernel_crash(tmp_path, state_dir):
    stand_in = background.KernelStandIn(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"))
    stand_in.start()
    port = stand_in.server["port"]
    server_family = [psutil.Process(stand_in.server["pid"]),
                     *map(psutil.Process, stand_in.server["children"])]
    # The kernel process alone dies; its server keeps running without a parent.
    os.kill(stand_in.process.pid, signal.SIGKILL)
    stand_in.process.wait(timeout=10)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).ok
        env = {**os.environ, "COURSE_STATE_DIR": str(state_dir)}
        result = subprocess.run([sys.executable, "-m", "helpers.servers", "stop-all"], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        psutil.wait_procs(server_family, timeout=10)
        assert not [process.pid for process in server_family if process.is_running()]
        assert servers.port_is_free(port)
        assert servers.recorded_servers() == []
    finally:
        for process in server_family:
            if process.is_running():
                process.kill()


@pytest.mark.skipif(not background.tmux_available(), reason="tmux is not installed")
def test_tmux_server_starts_and_stops(tmp_path):
    port = servers.free_port()
    server = servers.tracking_server(f"sqlite:///{tmp_path}/mlflow.db",
                                     artifacts_destination=str(tmp_path / "artifacts"), port=port)
    session = background.TmuxServer(server.command(), port, session=f"test-{port}").start()
    try:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).text == "OK"
        assert {record["name"] for record in servers.recorded_servers()} == {"tmux", "tmux-mlflow-server"}
    finally:
        session.stop()
    assert servers.port_is_free(port)
    assert servers.recorded_servers() == []


def test_systemd_unit_restarts_on_failure():
    unit = background.systemd_unit("/srv/mlflow/.venv/bin/mlflow server --port 5000")
    lines = unit.splitlines()
    assert lines[0] == "[Unit]"
    assert "ExecStart=/srv/mlflow/.venv/bin/mlflow server --port 5000" in lines
    assert "Restart=on-failure" in lines
    assert "WantedBy=multi-user.target" in lines
    assert "Environment=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in lines


def test_tmux_commands_name_the_session():
    commands = background.tmux_commands("mlflow server", session="demo")
    assert commands[0].startswith("tmux new-session -d -s demo 'mlflow server'")
    assert any(command.startswith("screen -dmS demo mlflow server") for command in commands)
