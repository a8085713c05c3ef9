"""Managed server processes: ports, failed starts, health timeouts, stopping, PID records.

Every server binds 127.0.0.1 and keeps its store, PID files and logs under
pytest's temporary folders (COURSE_STATE_DIR), so `stop-all` here never
touches servers that other notebooks or tests started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from helpers import servers

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def lean_server(folder: Path, port: int | None = None) -> servers.ManagedServer:
    return servers.tracking_server(f"sqlite:///{folder}/mlflow.db",
                                   artifacts_destination=str(folder / "artifacts"), port=port)


def python_server(code: str, **options) -> servers.ManagedServer:
    """Return a ManagedServer that runs `python -c code`; --host/--port become ignored arguments."""
    return servers.ManagedServer("python-probe", [sys.executable, "-c", code], **options)


def test_free_port_can_be_bound():
    port = servers.free_port()
    assert servers.port_is_free(port)
    with socket.create_server((servers.LOCALHOST, port)):
        assert not servers.port_is_free(port)
    assert servers.port_is_free(port)


def test_taken_port_error_names_port(tmp_path):
    with socket.create_server((servers.LOCALHOST, 0)) as listener:
        port = listener.getsockname()[1]
        server = lean_server(tmp_path, port=port)
        with pytest.raises(servers.PortInUseError) as caught:
            server.start()
    message = str(caught.value)
    assert f"port {port}" in message
    assert "already in use" in message
    assert f"PID {os.getpid()}" in message, "the message should name the program holding the port"
    assert server.process is None, "no process may start on a taken port"


def test_failed_start_shows_log_tail():
    server = python_server("import sys; print('config file missing: /no/such.ini'); sys.exit(3)")
    with pytest.raises(servers.ServerError) as caught:
        server.start(timeout_s=30)
    assert "exited with status 3" in str(caught.value)
    assert "config file missing: /no/such.ini" in str(caught.value)
    assert "config file missing" in caught.value.log_tail
    assert not server.pid_file.exists()


def test_health_timeout_stops_process():
    server = python_server("import time; time.sleep(60)")
    with pytest.raises(servers.ServerError) as caught:
        server.start(timeout_s=1)
    assert "was not healthy after 1 s" in str(caught.value)
    assert not psutil.pid_exists(server.pid) or psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
    assert not server.pid_file.exists()


def test_stop_ends_children_and_frees_port(tmp_path):
    with lean_server(tmp_path) as server:
        assert servers._http_ok(server.url + "/health")
        family = servers.process_tree(server.pid)
        record = servers.recorded_servers()[0]
        assert record["pid"] == server.pid
        assert record["port"] == server.port
        assert len(family) >= 2, "mlflow server runs its uvicorn worker as a child"
        assert {process.pid for process in family} <= {m["pid"] for m in record["members"]}
    assert not [process.pid for process in family if process.is_running()]
    assert servers.port_is_free(server.port)
    assert servers.recorded_servers() == []


def test_stop_all_ends_orphans_after_crash(tmp_path, state_dir):
    server = lean_server(tmp_path).start()
    family = servers.process_tree(server.pid)
    # SIGKILL to the CLI alone, as a crash would: its uvicorn worker keeps the port.
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    orphans = [process for process in family if process.pid != server.pid]
    assert orphans and all(process.is_running() for process in orphans)
    assert not servers.port_is_free(server.port)

    env = {**os.environ, "COURSE_STATE_DIR": str(state_dir)}
    result = subprocess.run([sys.executable, "-m", "helpers.servers", "stop-all"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "stopped 1 course server(s)" in result.stdout
    psutil.wait_procs(orphans, timeout=10)
    assert not [process.pid for process in orphans if process.is_running()]
    assert servers.port_is_free(server.port)
    assert servers.recorded_servers() == []


def test_record_lets_stop_all_end_shell_server(tmp_path, state_dir):
    port = servers.free_port()
    # A server started from a shell with nohup: its own session, not our child for long.
    process = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", servers.LOCALHOST, str(port)],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        path = servers.record_process(process.pid, "shell-server", port, timeout_s=30)
        assert path.exists()
        stopped = servers.stop_all()
        assert [record["name"] for record in stopped] == ["shell-server"]
        assert servers.recorded_servers() == []
        assert process.wait(timeout=10) is not None
        assert servers.port_is_free(port)
    finally:
        if process.poll() is None:
            process.kill()


def test_record_rejects_process_that_exits(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "print('bind failed')"])
    process.wait()
    with pytest.raises((servers.ServerError, psutil.NoSuchProcess)):
        servers.record_process(process.pid, "gone", servers.free_port(), timeout_s=5)


def test_stop_servers_stops_several_at_once():
    first = python_server("import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, "
                          "port=int(sys.argv[-1]), bind='127.0.0.1')", health_path="/")
    second = python_server("import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, "
                           "port=int(sys.argv[-1]), bind='127.0.0.1')", health_path="/")
    for server in (first, second):
        server.start(timeout_s=30)
    servers.stop_servers([first, second], grace_s=5)
    for server in (first, second):
        assert not server.is_running()
        assert servers.port_is_free(server.port)
        assert not server.pid_file.exists()


def test_format_command_hides_machine_paths(tmp_path):
    command = [servers.mlflow_executable(), "server", "--backend-store-uri", f"sqlite:///{tmp_path}/x.db"]
    line = servers.format_command(command, {tmp_path: "$WORK"})
    assert line == "mlflow server --backend-store-uri sqlite:///$WORK/x.db"


def test_send_logs_to_keeps_pids_out_of_stderr(tmp_path, capfd):
    import logging

    package_logger = logging.getLogger("helpers")
    saved = (package_logger.handlers[:], package_logger.level, package_logger.propagate)
    try:
        path = servers.send_logs_to(tmp_path / "helpers.log")
        logging.getLogger("helpers.servers").warning("killed PID %d", 12345)
        for handler in package_logger.handlers:
            handler.flush()
        assert "killed PID 12345" in path.read_text()
        assert "12345" not in capfd.readouterr().err
    finally:
        for handler in package_logger.handlers:
            if handler not in saved[0]:
                handler.close()
        package_logger.handlers, package_logger.level, package_logger.propagate = saved


def test_stop_launched_skips_stopped_servers():
    code = ("import http.server as h, sys; h.test(h.SimpleHTTPRequestHandler, "
            "port=int(sys.argv[-1]), bind='127.0.0.1')")
    stopped_early = python_server(code, health_path="/").start(timeout_s=30)
    still_running = python_server(code, health_path="/").start(timeout_s=30)
    stopped_early.stop()
    stopped = servers.stop_launched(grace_s=5)
    assert [server is still_running for server in stopped] == [True]
    assert not still_running.is_running()
    assert servers.port_is_free(still_running.port)


@pytest.mark.parametrize("value", ["0", "70000", "-1", "abc"])
def test_ui_command_rejects_invalid_port(value):
    result = subprocess.run([sys.executable, "-m", "helpers.servers", "ui", f"--port={value}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"'{value}' is not a TCP port" in result.stderr, result.stderr
    assert "1 to 65535" in result.stderr, result.stderr
