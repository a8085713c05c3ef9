"""Servers that outlive a notebook, and one that does not: kernel process groups, tmux, systemd.

A Jupyter kernel runs in a process group of its own, and a server the kernel
starts as a plain child joins that group, so it ends with the kernel.
`KernelStandIn` shows that on a child process without touching the real
kernel. `TmuxServer` runs a server inside a tmux session on a socket of its
own (never the student's tmux server), and `systemd_unit` writes the unit
file a Linux machine would use.
Usage: python -m helpers.background stand-in-kernel BACKEND_URI ARTIFACTS_DIR
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from helpers.servers import (
    LEAN_ENVIRONMENT,
    ServerError,
    child_environment,
    format_command,
    record_process,
    recorded_servers,
    stop_process_tree,
    tracking_server,
)

logger = logging.getLogger(__name__)

TMUX_SOCKET = "mlflow-course"


def _read_json_line(process: subprocess.Popen, timeout_s: float) -> dict:
    """Return the first JSON line `process` prints, or raise ServerError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.startswith("{"):
                return json.loads(line)
            if not line and process.poll() is not None:
                break
    raise ServerError(f"PID {process.pid} printed no server description within {timeout_s:.0f} s "
                      f"(exit status {process.poll()})")


def _forget_records(pids: set[int]) -> None:
    for record in recorded_servers():
        if record["pid"] in pids:
            Path(record["pid_file"]).unlink(missing_ok=True)


@dataclass
class KernelStandIn:
    """A child Python process in its own process group, standing in for a Jupyter kernel.

    It starts a lean MLflow server the way a notebook does (a plain child, in
    its process group) and keeps running until `kill_group()`.
    """

    backend_store_uri: str
    artifacts_destination: str
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    server: dict = field(default_factory=dict, init=False)

    def start(self, timeout_s: float = 90.0) -> "KernelStandIn":
        """Start the stand-in and wait until its server is healthy."""
        command = [sys.executable, "-m", "helpers.background", "stand-in-kernel",
                   self.backend_store_uri, self.artifacts_destination]
        # A new session gives the child its own process group, as Jupyter gives each kernel.
        self.process = subprocess.Popen(command, env=child_environment(), stdout=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        record_process(self.process.pid, "kernel-stand-in")
        try:
            self.server = _read_json_line(self.process, timeout_s)
        except ServerError:
            self.kill_group()
            raise
        logger.info("stand-in kernel PID %d runs a server on port %s", self.process.pid, self.server["port"])
        return self

    @property
    def pgid(self) -> int:
        return os.getpgid(self.process.pid)

    def group_members(self) -> list[int]:
        """Return the PIDs of running processes in the stand-in's process group."""
        if self.process is None:
            return []
        members = []
        for process in psutil.process_iter(["pid", "status"]):
            try:
                if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == self.process.pid:
                    members.append(process.pid)
            except (ProcessLookupError, PermissionError):
                continue
        return members

    def kill_group(self) -> list[int]:
        """Send SIGKILL to the stand-in's whole process group, as Jupyter does to a stuck kernel."""
        if self.process is None:
            return []
        members = self.group_members()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        psutil.wait_procs([psutil.Process(pid) for pid in members if psutil.pid_exists(pid)], timeout=10)
        _forget_records({self.process.pid, self.server.get("pid", -1)})
        logger.info("killed process group %d (%d processes)", self.process.pid, len(members))
        return members


def _stand_in_kernel(backend_store_uri: str, artifacts_destination: str) -> int:
    server = tracking_server(backend_store_uri, artifacts_destination=artifacts_destination,
                             name="mlflow-kernel-child").start()
    members = [process.pid for process in psutil.Process(server.pid).children(recursive=True)]
    print(json.dumps({"pid": server.pid, "port": server.port, "children": members}), flush=True)
    while True:
        signal.pause()


def tmux_available() -> bool:
    """Return True when a `tmux` program is on PATH."""
    return shutil.which("tmux") is not None


def tmux_commands(command_line: str, session: str = "mlflow") -> list[str]:
    """Return the shell commands that run `command_line` in a detached tmux or screen session."""
    return [
        f"tmux new-session -d -s {session} '{command_line}'   # start, detached",
        f"tmux attach -t {session}                            # look at it (Ctrl-b d detaches again)",
        f"tmux kill-session -t {session}                      # end the session and the server",
        f"screen -dmS {session} {command_line}   # the same with screen",
        f"screen -r {session}                    # attach (Ctrl-a d detaches)",
        f"screen -S {session} -X quit            # end it",
    ]


@dataclass
class TmuxServer:
    """A command run inside a detached tmux session on the course's own tmux socket."""

    command: list[str]
    port: int
    session: str = "mlflow"
    pane_pid: int | None = field(default=None, init=False)
    tmux_pid: int | None = field(default=None, init=False)

    def _tmux(self, *arguments: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(["tmux", "-L", TMUX_SOCKET, *arguments], capture_output=True,
                                text=True, env=env, check=True)
        return result.stdout.strip()

    def start(self, timeout_s: float = 90.0) -> "TmuxServer":
        """Start the session, record the server and tmux by PID, wait until the port opens."""
        line = "exec " + format_command(self.command)
        env = child_environment(LEAN_ENVIRONMENT)
        self.pane_pid = int(self._tmux("new-session", "-d", "-s", self.session, "-P",
                                       "-F", "#{pane_pid}", line, env=env))
        self.tmux_pid = int(self._tmux("display-message", "-p", "#{pid}"))
        record_process(self.tmux_pid, "tmux")
        record_process(self.pane_pid, "tmux-mlflow-server", self.port, timeout_s=timeout_s)
        logger.info("tmux session %s runs PID %d on port %d", self.session, self.pane_pid, self.port)
        return self

    def stop(self) -> None:
        """Stop the server by PID, then end the session; tmux exits with its last session."""
        if self.pane_pid is not None:
            stop_process_tree(self.pane_pid)
        try:
            self._tmux("kill-session", "-t", self.session)
        except subprocess.CalledProcessError:
            pass  # the session closed when its only command ended
        if self.tmux_pid is not None and psutil.pid_exists(self.tmux_pid):
            psutil.wait_procs([psutil.Process(self.tmux_pid)], timeout=10)
        _forget_records({pid for pid in (self.pane_pid, self.tmux_pid) if pid})
        logger.info("stopped tmux session %s", self.session)


def systemd_unit(exec_start: str, user: str = "mlflow", working_directory: str = "/srv/mlflow",
                 environment_file: str = "/etc/mlflow/server.env") -> str:
    """Return a systemd service unit that runs `exec_start` and restarts it after a crash."""
    return "\n".join([
        "[Unit]",
        "Description=MLflow tracking server",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        f"User={user}",
        f"Group={user}",
        f"WorkingDirectory={working_directory}",
        "Environment=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        f"EnvironmentFile={environment_file}",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        "RestartSec=5",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def _main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "stand-in-kernel":
        logging.basicConfig(level=logging.WARNING)
        return _stand_in_kernel(sys.argv[2], sys.argv[3])
    print(__doc__.strip().splitlines()[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main())
