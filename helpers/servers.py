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
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from helpers.store import COURSE_ENVIRONMENT, REPO_ROOT, course_store

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
# One worker and no GenAI job runner: healthy in about 4 s with 2 processes and
# about 0.5 GiB, against 15 processes and 2-3 GiB for the defaults (MLflow 3.17.2,
# measured on a 2-core machine).
LEAN_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class ServerError(RuntimeError):
    """A managed process failed to start, to become healthy or to stop."""


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


def stop_process_tree(pid: int, grace_s: float = 10.0) -> list[int]:
    """Send SIGTERM to `pid` and its children, SIGKILL what is left after `grace_s`.

    Returns the PIDs that were signalled; a PID that no longer exists is ignored.
    """
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for process in family:
        try:
            process.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=grace_s)
    for process in alive:
        logger.warning("PID %d ignored SIGTERM for %.0f s; sending SIGKILL", process.pid, grace_s)
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return [process.pid for process in family]


@dataclass
class ManagedServer:
    """One background process that serves HTTP on `host:port`.

    Start and stop it in separate cells with `start()` and `stop()`, or use it
    as a context manager. `health_path` is polled until it returns 200.
    """

    name: str
    arguments: list[str]
    port: int | None = None
    host: str = LOCALHOST
    health_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    new_session: bool = False
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

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
        return [*self.arguments, "--host", self.host, "--port", str(self.port)]

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 60.0) -> "ManagedServer":
        """Start the process and wait until it is healthy; raise ServerError otherwise."""
        if self.is_running():
            return self
        if self.port is None:
            self.port = free_port(LOCALHOST)
        elif not port_is_free(self.port, self.host):
            raise PortInUseError(
                f"port {self.port} on {self.host} is already in use by another program; "
                "pass port=None to get a free port, or stop the program holding it"
            )
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
            )
        self._write_pid_file()
        logger.info("started %s on port %d as PID %d", self.name, self.port, self.pid)
        try:
            self.wait_healthy(timeout_s)
        except ServerError:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Poll the health URL until 200; raise ServerError with the log tail on failure."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                code = self.process.returncode if self.process else None
                self._fail(f"exited with status {code} before it became healthy")
            if _http_ok(self.url + self.health_path):
                if not self.is_running():
                    self._fail("answered on its port but our process has exited")
                return
            time.sleep(0.25)
        self._fail(f"was not healthy after {timeout_s:.0f} s")

    def _fail(self, reason: str) -> None:
        logger.error("%s on port %s (PID %s) %s", self.name, self.port, self.pid, reason)
        raise ServerError(
            f"{self.name} on port {self.port} (PID {self.pid}) {reason}. "
            f"Last lines of {self.log_path.name}:\n{read_log_tail(self.log_path)}"
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the process and its children by PID and wait until the port is free."""
        if self.process is not None:
            stop_process_tree(self.process.pid, grace_s)
            self.process.wait(timeout=5)
            logger.info("stopped %s on port %d (PID %d)", self.name, self.port, self.pid)
        self.pid_file.unlink(missing_ok=True)
        self._wait_port_free(timeout_s=grace_s)

    def _wait_port_free(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.port is not None and not port_is_free(self.port, self.host):
            if time.monotonic() > deadline:
                raise ServerError(f"port {self.port} is still in use {timeout_s:.0f} s after stop")
            time.sleep(0.1)

    def _write_pid_file(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "name": self.name,
            "pid": self.pid,
            "port": self.port,
            "command": self.command(),
            "log": str(self.log_path),
            "create_time": psutil.Process(self.pid).create_time(),
        }
        self.pid_file.write_text(json.dumps(record, indent=2))

    def __enter__(self) -> "ManagedServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


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
    """Return an unstarted `mlflow server` on 127.0.0.1 with lean defaults."""
    arguments = [mlflow_executable(), "server", "--backend-store-uri", backend_store_uri]
    if artifacts_destination:
        arguments += ["--artifacts-destination", artifacts_destination]
    if default_artifact_root:
        arguments += ["--default-artifact-root", default_artifact_root]
    if not serve_artifacts:
        arguments.append("--no-serve-artifacts")
    if app_name:
        arguments += ["--app-name", app_name]
    arguments += ["--workers", str(workers), *extra_arguments]
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
    try:
        process = psutil.Process(record["pid"])
        return abs(process.create_time() - record.get("create_time", 0)) < 1.0
    except (psutil.NoSuchProcess, KeyError):
        return False


def stop_all(grace_s: float = 10.0) -> list[dict]:
    """Stop every recorded course server that still runs and remove all PID files."""
    stopped = []
    for record in recorded_servers():
        if _record_is_alive(record):
            stop_process_tree(record["pid"], grace_s)
            logger.info("stopped %s on port %s (PID %s)", record["name"], record["port"], record["pid"])
            stopped.append(record)
        Path(record["pid_file"]).unlink(missing_ok=True)
    return stopped


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


def _describe(process: psutil.Process) -> str:
    try:
        ports = sorted({c.laddr.port for c in process.net_connections("inet") if c.status == "LISTEN"})
        return f"PID {process.pid} ports {ports}: {' '.join(process.cmdline())[:150]}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"PID {process.pid} (ended)"


def _main() -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.servers", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ui = commands.add_parser("ui", help="run the MLflow UI on the course store until Ctrl-C")
    ui.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    commands.add_parser("stop-all", help="stop every server the course recorded")
    commands.add_parser("list", help="list recorded servers and course processes")
    commands.add_parser("check-clean", help="exit 1 if any course process is still running")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "ui":
        return _run_ui(args.port)
    if args.command == "stop-all":
        stopped = stop_all()
        print(f"stopped {len(stopped)} course server(s)")
        return 0
    if args.command == "list":
        for record in recorded_servers():
            print(f"recorded: {record['name']} port {record['port']} PID {record['pid']}")
    leftovers = course_processes()
    for process in leftovers:
        print(f"still running: {_describe(process)}")
    if args.command == "check-clean":
        if leftovers:
            print("course processes are still running; `make stop` ends recorded servers")
            return 1
        print("no course process is running")
    return 0


def _run_ui(port: int | None) -> int:
    store = course_store().create()
    server = ui_server(store.tracking_uri, str(store.artifacts), port=port)
    try:
        server.start()
    except PortInUseError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"MLflow UI on the course store: {server.url}  (Ctrl-C stops it)")
    if not store.database.exists() or store.database.stat().st_size == 0:
        print("The course store is still empty: run notebooks/02_wind_chill_training.ipynb to fill it.")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
