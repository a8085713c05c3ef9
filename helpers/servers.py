"""Managed MLflow processes: tracking servers, the UI and model servers on 127.0.0.1.

Every process started here binds 127.0.0.1 (unless asked otherwise), gets a
free port or a checked requested one, writes a PID file under the course state
folder and a log file, and is stopped by PID together with its children.
`python -m helpers.servers stop-all` ends whatever a crashed kernel left.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from helpers.store import COURSE_ENVIRONMENT, REPO_ROOT, LocalStore, course_store

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
# One worker and no GenAI job runner: healthy in about 4 s with 2 processes and
# about 0.5 GiB, against 15 processes and 2-3 GiB for the defaults (MLflow 3.17.2,
# measured on a 2-core machine; bench/servers.py measures it again).
LEAN_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class ServerError(RuntimeError):
    """A managed process failed to start, to become healthy or to stop."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class PortInUseError(ServerError):
    """The requested port is already taken by another program."""


def state_dir() -> Path:
    """Return the folder for PID files and logs (COURSE_STATE_DIR overrides it)."""
    return Path(os.environ.get("COURSE_STATE_DIR") or REPO_ROOT / ".course")


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """Return True when nothing listens on `host:port` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as the servers themselves set it, so closed connections
        # still in TIME_WAIT do not count as "in use"; a listener still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOCALHOST if host == "0.0.0.0" else host, port)) != 0


def free_port(host: str = LOCALHOST) -> int:
    """Return a port on `host` that the operating system reports free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_owner(port: int) -> str | None:
    """Describe the process listening on `port` ("PID 123 (python3)"), or None if unknown.

    Other users' sockets are hidden from non-root users on some systems
    (macOS), so None does not mean the port is free.
    """
    try:
        connections = psutil.net_connections("inet")
    except (psutil.AccessDenied, PermissionError):
        return None
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            if connection.pid is None:
                return None
            try:
                return f"PID {connection.pid} ({psutil.Process(connection.pid).name()})"
            except psutil.NoSuchProcess:
                return f"PID {connection.pid}"
    return None


def mlflow_executable() -> str:
    """Return the `mlflow` command of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "mlflow"
    return str(candidate) if candidate.exists() else "mlflow"


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return os.environ plus the course settings, with this venv's bin first on PATH."""
    env = dict(os.environ)
    for key, value in COURSE_ENVIRONMENT.items():
        env.setdefault(key, value)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def read_log_tail(path: Path, lines: int = 25) -> str:
    """Return the last `lines` lines of a log file, or a note if it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def process_tree(pid: int) -> list[psutil.Process]:
    """Return the process `pid` and all its descendants, or [] if it has ended."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal_each(processes: list[psutil.Process], signum: int) -> None:
    for process in processes:
        try:
            process.send_signal(signum)
        except psutil.NoSuchProcess:
            pass


def end_processes(
    family: list[psutil.Process],
    grace_s: float = 10.0,
    stop_signal: int = signal.SIGTERM,
    signal_children: bool = True,
) -> list[int]:
    """Send `stop_signal` to `family`, SIGKILL what is left after `grace_s`; return PIDs.

    With `signal_children` false only the first process is signalled, for
    servers such as PostgreSQL whose main process stops its own children.
    """
    _signal_each(family if signal_children else family[:1], stop_signal)
    _wait_or_kill(family, grace_s, stop_signal)
    return [process.pid for process in family]


def _wait_or_kill(family: list[psutil.Process], grace_s: float, stop_signal: int) -> None:
    """Wait up to `grace_s` for signalled processes to exit, then SIGKILL the rest."""
    _, alive = psutil.wait_procs(family, timeout=grace_s)
    for process in alive:
        logger.warning("PID %d still runs %.0f s after signal %d; sending SIGKILL",
                       process.pid, grace_s, stop_signal)
    _signal_each(alive, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)


def stop_process_tree(pid: int, grace_s: float = 10.0) -> list[int]:
    """Send SIGTERM to `pid` and its children, SIGKILL what is left after `grace_s`.

    Returns the PIDs that were signalled; a PID that no longer exists is ignored.
    """
    return end_processes(process_tree(pid), grace_s)


def kill_process_tree(pid: int) -> list[int]:
    """Send SIGKILL to `pid` and all its descendants at once, as a crash would end them.

    SIGKILL to the `mlflow server` command alone would leave its uvicorn child
    running without a parent, so the children are collected before the kill.
    """
    family = process_tree(pid)
    _signal_each(family, signal.SIGKILL)
    psutil.wait_procs(family, timeout=5)
    return [process.pid for process in family]


def _identity(process: psutil.Process) -> dict | None:
    try:
        return {"pid": process.pid, "create_time": process.create_time()}
    except psutil.NoSuchProcess:
        return None


def _primary_group(user: str | None) -> int | None:
    """Return the primary group ID of a system user, or None for the current user."""
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def _still_running(member: dict) -> psutil.Process | None:
    """Return the process a {pid, create_time} record names, unless its PID was reused."""
    try:
        process = psutil.Process(member["pid"])
        if abs(process.create_time() - member.get("create_time", 0)) < 1.0:
            return process
    except (psutil.NoSuchProcess, KeyError):
        pass
    return None


@dataclass
class ManagedServer:
    """One background process that serves on `host:port`.

    Start and stop it in separate cells with `start()` and `stop()`, or use it
    as a context manager. `health_path` is polled until it returns 200, unless
    `health_check` (called with the server) decides health instead.
    """

    name: str
    arguments: list[str]
    port: int | None = None
    host: str = LOCALHOST
    health_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    new_session: bool = False
    host_flag: str = "--host"
    port_flag: str = "--port"
    health_check: Callable[["ManagedServer"], bool] | None = None
    stop_signal: int = signal.SIGTERM
    signal_children: bool = True
    user: str | None = None
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    members: list[dict] = field(default_factory=list, init=False, repr=False)

    @property
    def url(self) -> str:
        """Base URL of the server, always through 127.0.0.1."""
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def log_path(self) -> Path:
        return state_dir() / "logs" / f"{self.name}-{self.port}.log"

    @property
    def pid_file(self) -> Path:
        return state_dir() / "servers" / f"{self.name}-{self.port}.json"

    def command(self) -> list[str]:
        """Return the full command line, with host and port filled in."""
        return [*self.arguments, self.host_flag, self.host, self.port_flag, str(self.port)]

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> "ManagedServer":
        """Start the process without waiting for health; `wait_started()` waits for it."""
        if self.is_running():
            return self
        if self.port is None:
            self.port = free_port(LOCALHOST)
        elif not port_is_free(self.port, self.host):
            raise PortInUseError(self._port_taken_message())
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_environment(self.env),
                cwd=self.cwd,
                start_new_session=self.new_session,
                user=self.user,
                group=_primary_group(self.user),
                extra_groups=[] if self.user else None,
            )
        self.members = [member for member in map(_identity, process_tree(self.pid)) if member]
        self._write_pid_file()
        if not any(server is self for server in _LAUNCHED):
            _LAUNCHED.append(self)
        logger.info("started %s on port %d as PID %d", self.name, self.port, self.pid)
        return self

    def start(self, timeout_s: float = 60.0) -> "ManagedServer":
        """Start the process and wait until it is healthy; raise ServerError otherwise."""
        if self.is_running():
            return self
        self.launch()
        return self.wait_started(timeout_s)

    def wait_started(self, timeout_s: float = 60.0) -> "ManagedServer":
        """Wait for a launched server to become healthy; stop it and raise ServerError if not."""
        try:
            self.wait_healthy(timeout_s)
        except ServerError:
            self.stop()
            raise
        return self

    def _port_taken_message(self) -> str:
        owner = port_owner(self.port)
        holder = f" by {owner}" if owner else " by another program"
        return (
            f"port {self.port} on {self.host} is already in use{holder}; "
            "pass port=None to get a free port, or stop the program holding it"
        )

    def _healthy(self) -> bool:
        if self.health_check is not None:
            return self.health_check(self)
        return _http_ok(self.url + self.health_path)

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Poll the health URL until 200; raise ServerError with the log tail on failure."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                code = self.process.returncode if self.process else None
                self._fail(f"exited with status {code} before it became healthy")
            if self._healthy():
                if not self.is_running():
                    self._fail("answered on its port but our process has exited")
                self._record_members()
                return
            time.sleep(0.1)
        self._fail(f"was not healthy after {timeout_s:.0f} s")

    def _fail(self, reason: str) -> None:
        logger.error("%s on port %s (PID %s) %s", self.name, self.port, self.pid, reason)
        tail = read_log_tail(self.log_path)
        raise ServerError(
            f"{self.name} on port {self.port} (PID {self.pid}) {reason}. "
            f"Last lines of {self.log_path.name}:\n{tail}",
            log_tail=tail,
        )

    def _record_members(self) -> None:
        """Remember the children too, so they can be stopped after the main process died."""
        known = {member["pid"] for member in self.members}
        for process in process_tree(self.pid) if self.pid else []:
            member = _identity(process)
            if member and member["pid"] not in known:
                self.members.append(member)
        self._write_pid_file()

    def _alive_members(self) -> list[psutil.Process]:
        alive = [process for process in map(_still_running, self.members) if process]
        if self.pid is not None:
            known = {process.pid for process in alive}
            alive += [process for process in process_tree(self.pid) if process.pid not in known]
        return alive

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the process and its children by PID and wait until the port is free."""
        family = self._alive_members()
        if family:
            end_processes(family, grace_s, self.stop_signal, self.signal_children)
            logger.info("stopped %s on port %s (PID %s)", self.name, self.port, self.pid)
        self._finish_stop(grace_s)

    def _finish_stop(self, grace_s: float) -> None:
        if self.process is not None:
            self.process.wait(timeout=5)
        self.pid_file.unlink(missing_ok=True)
        self._wait_port_free(timeout_s=grace_s)

    def kill(self) -> list[int]:
        """End the server and its children with SIGKILL, as a crash would; keep the PID file.

        Use it to test what survives a crash, then `start()` again on the same stores.
        """
        pids = [process.pid for process in self._alive_members()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            self.process.wait(timeout=5)
        logger.warning("killed %s on port %s (PIDs %s) with SIGKILL", self.name, self.port, pids)
        self._wait_port_free(timeout_s=10)
        self.members = []
        return pids

    def memory_bytes(self) -> int:
        """Return the resident memory of the process and its children, in bytes."""
        total = 0
        for process in process_tree(self.pid) if self.pid else []:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _wait_port_free(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.port is not None and not port_is_free(self.port, self.host):
            if time.monotonic() > deadline:
                raise ServerError(f"port {self.port} is still in use {timeout_s:.0f} s after stop")
            time.sleep(0.1)

    def _write_pid_file(self) -> None:
        write_record(
            self.pid_file,
            name=self.name,
            pid=self.pid,
            port=self.port,
            command=self.command(),
            log=self.log_path,
            members=self.members,
            stop_signal=self.stop_signal,
            signal_children=self.signal_children,
        )

    def __enter__(self) -> "ManagedServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# Every ManagedServer this Python process launched, so `stop_launched` can end them
# all, also those whose variables a failed notebook cell never assigned.
_LAUNCHED: list[ManagedServer] = []


def stop_launched(grace_s: float = 10.0) -> list[ManagedServer]:
    """Stop every server this process launched that still runs; return those servers.

    Servers started by other processes, such as `make ui` in a terminal, are
    left alone, unlike `stop_all`, which ends every recorded server.
    """
    running = [server for server in _LAUNCHED if server._alive_members()]
    stop_servers(running, grace_s)
    return running


def stop_servers(managed: list[ManagedServer], grace_s: float = 10.0) -> None:
    """Stop several servers at once: signal all of them first, then wait for each.

    Stopping N servers this way takes about as long as the slowest one, not
    the sum. Each gets SIGKILL if it still runs at least `grace_s` seconds after its signal.
    """
    families = [(server, server._alive_members()) for server in managed]
    for server, family in families:
        _signal_each(family if server.signal_children else family[:1], server.stop_signal)
    for server, family in families:
        if family:
            _wait_or_kill(family, grace_s, server.stop_signal)
            logger.info("stopped %s on port %s (PID %s)", server.name, server.port, server.pid)
        server._finish_stop(grace_s)


def send_logs_to(path: Path, level: int = logging.INFO) -> Path:
    """Write the helpers' log records (starts, stops, failures with ports and PIDs) to `path`.

    A notebook calls this so that log lines, which carry PIDs, stay out of
    the cell outputs that nbval compares.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("helpers")
    package_logger.addHandler(handler)
    package_logger.setLevel(level)
    package_logger.propagate = False
    return path


def write_record(path: Path, name: str, pid: int, port: int | None, command: list[str],
                 log: Path | None, members: list[dict] | None = None,
                 stop_signal: int = signal.SIGTERM, signal_children: bool = True) -> None:
    """Write the PID file that `stop-all` and `check-clean` read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "pid": pid,
        "port": port,
        "command": command,
        "log": str(log) if log else None,
        "create_time": psutil.Process(pid).create_time(),
        "members": members or [],
        "stop_signal": int(stop_signal),
        "signal_children": signal_children,
    }
    path.write_text(json.dumps(record, indent=2))


def record_process(pid: int, name: str, port: int | None = None, log: Path | None = None,
                   timeout_s: float = 60.0) -> Path:
    """Record a process started elsewhere (a shell, tmux) so `make stop` can end it.

    With a port, waits until the port accepts connections, so that the
    children the server starts by then are recorded too.
    """
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout_s
    while port and port_is_free(port):
        if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            tail = read_log_tail(log) if log else ""
            raise ServerError(f"{name} (PID {pid}) exited before port {port} opened", tail)
        if time.monotonic() > deadline:
            raise ServerError(f"{name} (PID {pid}) did not open port {port} in {timeout_s:.0f} s")
        time.sleep(0.1)
    members = [member for member in map(_identity, process_tree(pid)) if member]
    path = state_dir() / "servers" / f"{name}-{port if port else pid}.json"
    write_record(path, name, pid, port, process.cmdline(), log, members)
    logger.info("recorded %s on port %s as PID %d", name, port, pid)
    return path


def format_command(command: list[str], folders: dict[Path | str, str] | None = None) -> str:
    """Return `command` as one shell line: programs by their name, `folders` by their labels.

    `folders` maps paths to labels such as {work: "$WORK"}, so that printed
    commands carry no machine-specific paths.
    """
    words = []
    for word in command:
        if os.path.isabs(word) and os.path.isfile(word) and os.access(word, os.X_OK):
            word = "python" if word == sys.executable else Path(word).name
        for folder, label in (folders or {}).items():
            word = word.replace(str(folder), label)
        # A label such as $WORK stays unquoted, so the line still works in a shell.
        words.append(word if re.fullmatch(r"[\w@%+=:,./$-]+", word) else shlex.quote(word))
    return " ".join(words)


def tracking_server(
    backend_store_uri: str,
    artifacts_destination: str | None = None,
    default_artifact_root: str | None = None,
    serve_artifacts: bool = True,
    app_name: str | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
    workers: int = 1,
    lean: bool = True,
    name: str = "mlflow-server",
    extra_arguments: tuple[str, ...] = (),
) -> ManagedServer:
    """Return an unstarted `mlflow server` on 127.0.0.1 with lean defaults.

    `lean=False` and `workers=None` give MLflow's own defaults (4 workers and
    the GenAI job runner), for comparison.
    """
    arguments = [mlflow_executable(), "server", "--backend-store-uri", backend_store_uri]
    if artifacts_destination:
        arguments += ["--artifacts-destination", artifacts_destination]
    if default_artifact_root:
        arguments += ["--default-artifact-root", default_artifact_root]
    if not serve_artifacts:
        arguments.append("--no-serve-artifacts")
    if app_name:
        arguments += ["--app-name", app_name]
    if workers is not None:
        arguments += ["--workers", str(workers)]
    arguments += list(extra_arguments)
    server_env = {**(LEAN_ENVIRONMENT if lean else {}), **(env or {})}
    return ManagedServer(name, arguments, port=port, env=server_env)


def ui_server(backend_store_uri: str, default_artifact_root: str, port: int | None = None) -> ManagedServer:
    """Return an unstarted `mlflow ui` on 127.0.0.1 for one backend store."""
    arguments = [
        mlflow_executable(), "ui",
        "--backend-store-uri", backend_store_uri,
        "--default-artifact-root", default_artifact_root,
        "--workers", "1",
    ]
    return ManagedServer("mlflow-ui", arguments, port=port, env=dict(LEAN_ENVIRONMENT))


def model_server(model_uri: str, port: int | None = None, env: dict[str, str] | None = None) -> ManagedServer:
    """Return an unstarted `mlflow models serve` in this environment (no new virtualenv)."""
    arguments = [
        mlflow_executable(), "models", "serve",
        "--model-uri", model_uri,
        "--env-manager", "local",
        "--workers", "1",
    ]
    return ManagedServer("mlflow-models", arguments, port=port, health_path="/ping", env=env or {})


def recorded_servers() -> list[dict]:
    """Return the PID file records of servers the course started and has not stopped."""
    folder = state_dir() / "servers"
    records = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("skipping unreadable PID file %s: %s", path, error)
            continue
        record["pid_file"] = str(path)
        records.append(record)
    return records


def _record_is_alive(record: dict) -> bool:
    """True when the recorded PID still runs the recorded process (not a reused PID)."""
    return _still_running(record) is not None


def record_processes(record: dict) -> list[psutil.Process]:
    """Return the still-running processes of one record: the main one, its children, members."""
    found = {}
    main = _still_running(record)
    for process in process_tree(main.pid) if main else []:
        found[process.pid] = process
    for member in record.get("members", []):
        process = _still_running(member)
        if process:
            found.setdefault(process.pid, process)
    return list(found.values())


def stop_all(grace_s: float = 10.0) -> list[dict]:
    """Stop every recorded course server that still runs and remove all PID files.

    Children recorded in the PID file are stopped too, also when the main
    process died first and left them without a parent.
    """
    stopped = []
    for record in recorded_servers():
        family = record_processes(record)
        if family:
            main = [process for process in family if process.pid == record["pid"]]
            others = [process for process in family if process.pid != record["pid"]]
            # Without their main process the children would keep running, so each gets the signal.
            signal_children = record.get("signal_children", True) or not main
            end_processes(main + others, grace_s, record.get("stop_signal", signal.SIGTERM),
                          signal_children)
            logger.info("stopped %s on port %s (PID %s)", record["name"], record["port"], record["pid"])
            stopped.append(record)
        Path(record["pid_file"]).unlink(missing_ok=True)
    return stopped


def forget_stopped() -> list[str]:
    """Remove the PID files of recorded servers that no longer run; return their names."""
    forgotten = []
    for record in recorded_servers():
        if not record_processes(record):
            Path(record["pid_file"]).unlink(missing_ok=True)
            forgotten.append(record["name"])
    return forgotten


def course_processes() -> list[psutil.Process]:
    """Return running processes started from this repository (venv tools, servers, databases)."""
    own = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    found = []
    root = str(REPO_ROOT)
    for process in psutil.process_iter(["pid", "cmdline", "exe"]):
        if process.info["pid"] in own:
            continue
        cmdline = " ".join(process.info["cmdline"] or [])
        if root in cmdline or (process.info["exe"] or "").startswith(root):
            if "ipykernel" in cmdline or "jupyter" in cmdline:
                continue
            found.append(process)
    return found


def leftovers() -> list[str]:
    """Describe every course process and every recorded server or port still in use."""
    own = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    processes = {process.pid: process for process in course_processes()}
    for record in recorded_servers():
        for process in record_processes(record):
            if process.pid not in own:
                processes.setdefault(process.pid, process)
    lines = [f"still running: {_describe(process)}" for process in processes.values()]
    for record in recorded_servers():
        port = record.get("port")
        if port and not port_is_free(port):
            lines.append(f"port {port} of recorded {record['name']} is still in use")
    return lines


def _describe(process: psutil.Process) -> str:
    try:
        ports = sorted({c.laddr.port for c in process.net_connections("inet") if c.status == "LISTEN"})
        return f"PID {process.pid} ports {ports}: {' '.join(process.cmdline())[:150]}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"PID {process.pid} (ended)"


def _tcp_port(text: str) -> int:
    """Parse a command-line port number from 1 to 65535, or raise a usage error."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a TCP port; give a number from 1 to 65535, or leave PORT unset "
            "for a free one")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.servers", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ui = commands.add_parser("ui", help="run the MLflow UI on the course store until Ctrl-C")
    ui.add_argument("--port", type=_tcp_port, default=None, help="TCP port, 1-65535 (default: a free one)")
    commands.add_parser("stop-all", help="stop every server the course recorded")
    commands.add_parser("list", help="list recorded servers and course processes")
    commands.add_parser("check-clean", help="exit 1 if any course process or recorded port is left")
    record = commands.add_parser("record", help="record a server started from a shell")
    record.add_argument("pid", type=int, help="process ID of the server")
    record.add_argument("--name", required=True, help="short name for the PID file, e.g. nohup-server")
    record.add_argument("--port", type=int, default=None, help="TCP port it listens on; waits until the port opens")
    record.add_argument("--log", type=Path, default=None, help="its log file")
    return parser


def _main() -> int:
    args = _parser().parse_args()
    # `record` runs inside shell cells, whose output should not carry PIDs: warnings only.
    level = logging.WARNING if args.command == "record" else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "ui":
        return _run_ui(args.port)
    if args.command == "record":
        try:
            record_process(args.pid, args.name, args.port, args.log)
        except psutil.NoSuchProcess:
            print(f"no process with PID {args.pid}: was the server started?", file=sys.stderr)
            return 2
        except ServerError as error:
            print(f"{error}\n{error.log_tail}", file=sys.stderr)
            return 2
        return 0
    if args.command == "stop-all":
        stopped = stop_all()
        print(f"stopped {len(stopped)} course server(s)")
        return 0
    if args.command == "list":
        for record in recorded_servers():
            print(f"recorded: {record['name']} port {record['port']} PID {record['pid']}")
    found = leftovers()
    for line in found:
        print(line)
    if args.command == "check-clean":
        if found:
            print("course processes are still running; `make stop` ends recorded servers")
            return 1
        print("no course process is running")
    return 0


EMPTY_STORE_HINT = "run notebooks/02_wind_chill_training.ipynb to fill it"


def describe_store(store: LocalStore) -> str:
    """Return one line on what the course store contains, with a hint when it is empty."""
    if not store.database.exists() or store.database.stat().st_size == 0:
        return f"Course store contains no runs yet: {EMPTY_STORE_HINT}; the UI starts anyway."
    from mlflow import MlflowClient

    client = MlflowClient(store.tracking_uri)
    experiments = client.search_experiments()
    runs = sum(len(client.search_runs([e.experiment_id], max_results=50000)) for e in experiments)
    if runs == 0:
        return f"Course store contains no runs yet: {EMPTY_STORE_HINT}; the UI starts anyway."
    return f"Course store contains {runs} runs in {len(experiments)} experiments."


def _run_ui(port: int | None) -> int:
    store = course_store().create()
    server = ui_server(store.tracking_uri, str(store.artifacts), port=port)
    try:
        server.start()
    except PortInUseError:
        owner = port_owner(port) if port else None
        print(f"port {port} on {LOCALHOST} is already in use{f' by {owner}' if owner else ''}; "
              "run `make ui` without PORT to get a free port, or choose another PORT",
              file=sys.stderr)
        return 2
    print(f"MLflow UI on the course store: {server.url}  (Ctrl-C stops it)")
    if not store.database.exists() or store.database.stat().st_size == 0:
        print(f"The course store is still empty: {EMPTY_STORE_HINT}.")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
