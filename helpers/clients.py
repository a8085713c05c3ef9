"""MLflow clients in child processes: several users at once, credential checks, load and crashes.

Each client is a separate Python process, as a colleague's notebook would be,
with its own environment (user name, HOME, credentials). It prints one JSON
line with what it did, which `collect` reads back.
Usage: python -m helpers.clients log-metrics|fan-out|probe|example-run ... (see --help)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from helpers.servers import child_environment

logger = logging.getLogger(__name__)

# Credentials a child client must not inherit from the notebook: MLflow's and the cloud's.
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def client_environment(tracking_uri: str, user: str | None = None, home: Path | None = None,
                       extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of a child client: course settings, the tracking URI, its user.

    MLflow takes the run's `mlflow.user` tag from the login name (LOGNAME or
    USER). MLflow and AWS credentials of the parent are not inherited; pass
    them in `extra`.
    """
    env = child_environment({"MLFLOW_TRACKING_URI": tracking_uri})
    for key in CREDENTIAL_VARIABLES:
        env.pop(key, None)
    if user is not None:
        env.update({"LOGNAME": user, "USER": user})
    if home is not None:
        env["HOME"] = str(home)
    # A proxy set for the outside world must not carry requests to the local server.
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = ",".join(filter(None, [env.get(key), "127.0.0.1", "localhost"]))
    env.update(extra or {})
    return env


def start_client(arguments: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start `python -m helpers.clients ARGUMENTS` and return the process."""
    command = [sys.executable, "-m", "helpers.clients", *arguments]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    logger.info("started client PID %d: %s", process.pid, " ".join(arguments[:1]))
    return process


def collect(processes: list[subprocess.Popen], timeout_s: float = 120.0) -> list[dict]:
    """Wait for every client and return the JSON each printed last, in the same order."""
    results = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            logger.error("client PID %d timed out after %.0f s", process.pid, timeout_s)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if lines:
            results.append(json.loads(lines[-1]))
        else:
            results.append({"error": f"client exited with status {process.returncode}: "
                                     f"{stderr.strip().splitlines()[-1:] or 'no output'}"})
    return results


def log_metrics_arguments(experiment_id: str, run_name: str, count: int, tags: dict[str, str] | None = None,
                          ack_file: Path | None = None, interval_s: float = 0.0,
                          batch_size: int = 1) -> list[str]:
    """Return the arguments of a `log-metrics` client."""
    arguments = ["log-metrics", "--experiment-id", experiment_id, "--run-name", run_name,
                 "--count", str(count), "--interval-s", str(interval_s), "--batch-size", str(batch_size)]
    for key, value in (tags or {}).items():
        arguments += ["--tag", f"{key}={value}"]
    if ack_file is not None:
        arguments += ["--ack-file", str(ack_file)]
    return arguments


def run_loggers(tracking_uri: str, experiment_id: str, count: int, users: list[str],
                tags: dict[str, str] | None = None, timeout_s: float = 180.0) -> list[dict]:
    """Run one logging process per user at the same time, each logging `count` metrics to its run.

    Each process gets its user's login name, which MLflow records as the
    run's `mlflow.user` tag. Returns each client's summary: run_id, user,
    logged count, or error.
    """
    processes = []
    for user in users:
        arguments = log_metrics_arguments(experiment_id, f"{user}-run", count, tags)
        processes.append(start_client(arguments, client_environment(tracking_uri, user=user)))
    return collect(processes, timeout_s)


def fan_out(tracking_uri: str, experiment_id: str, clients: int = 8, count: int = 200,
            batch_size: int = 1, tags: dict[str, str] | None = None, timeout_s: float = 300.0) -> dict:
    """Log `count` metrics from each of `clients` processes at the same time; return their summary.

    One launcher process imports MLflow once and forks the clients, so the
    time measured is logging, not eight imports. Returns {"seconds": wall
    time from the first fork to the last exit, "clients": [summary, ...]}.
    """
    arguments = log_metrics_arguments(experiment_id, "load", count, tags, batch_size=batch_size)
    arguments = ["fan-out", "--clients", str(clients), *arguments[1:]]
    return collect([start_client(arguments, client_environment(tracking_uri))], timeout_s)[0]


def run_probes(tracking_uri: str, experiment_id: str, homes: dict[str, Path],
               extra: dict[str, str] | None = None) -> dict[str, dict]:
    """Run one client per HOME folder at the same time, each reading an experiment.

    Returns {label: {"ok", "status", "error" or "experiment"}} for the labels
    of `homes`. `extra` adds environment variables (credentials) to every client.
    """
    processes = {
        label: start_client(["probe", "--experiment-id", experiment_id],
                            client_environment(tracking_uri, home=home, extra=extra))
        for label, home in homes.items()
    }
    return dict(zip(processes, collect(list(processes.values()), 60)))


def run_example_client(tracking_uri: str, experiment_name: str, env: dict[str, str] | None = None,
                       artifact_location: str | None = None) -> dict:
    """Run `log_example_run` in a child process with extra `env`; return its summary or error."""
    arguments = ["example-run", "--experiment-name", experiment_name]
    if artifact_location:
        arguments += ["--artifact-location", artifact_location]
    return collect([start_client(arguments, client_environment(tracking_uri, extra=env))], 60)[0]


def log_example_run(tracking_uri: str, experiment_name: str, artifact_location: str | None = None) -> dict:
    """Log one small run (a parameter, three metric values, a text artifact) to `tracking_uri`.

    The same code serves every store of the notebook. Returns run_id,
    artifact_uri and, if the artifact upload failed, the error; the
    parameter and metrics are logged before the artifact.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (experiment.experiment_id if experiment
                     else client.create_experiment(experiment_name, artifact_location=artifact_location))
    run = client.create_run(experiment_id, run_name="storage-check")
    run_id = run.info.run_id
    client.log_param(run_id, "store", experiment_name)
    for step, loss in enumerate([0.9, 0.5, 0.3]):
        client.log_metric(run_id, "loss", loss, step=step)
    summary = {"run_id": run_id, "artifact_uri": run.info.artifact_uri}
    try:
        client.log_text(run_id, "wind chill course\n", "notes/readme.txt")
    except Exception as error:  # noqa: BLE001 - the failure is the lesson: the run exists without its file
        summary["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        client.set_terminated(run_id, status="FAILED")
        return summary
    client.set_terminated(run_id)
    return summary


def time_failure(tracking_uri: str) -> dict:
    """Time one MLflow call against a server that may be down; return seconds and the error.

    Returns {"seconds": float, "error": short message or None}. The time is
    set by the retry variables MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR and MLFLOW_HTTP_REQUEST_TIMEOUT.
    """
    from mlflow import MlflowClient

    started = time.perf_counter()
    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
        error = None
    except Exception as caught:  # noqa: BLE001 - the failure is what this measures
        text = str(caught)
        error = f"{type(caught).__name__}: {text.split(' with exception')[0]}"
        if "refused" in text.lower():
            error += " (connection refused)"
    return {"seconds": time.perf_counter() - started, "error": error}


def metric_values(tracking_uri: str, experiment_id: str, key: str = "value") -> dict[str, set[int]]:
    """Return {run_id: steps stored for metric `key`} for every run of an experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    runs = client.search_runs([experiment_id], max_results=1000)
    return {run.info.run_id: {m.step for m in client.get_metric_history(run.info.run_id, key)} for run in runs}


def wait_for_lines(path: Path, count: int, timeout_s: float = 60.0) -> int:
    """Wait until the file at `path` has at least `count` lines; return how many it has."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            lines = len(path.read_text().splitlines())
            if lines >= count:
                return lines
        time.sleep(0.05)
    raise TimeoutError(f"{path.name} has fewer than {count} lines after {timeout_s:.0f} s; "
                       "is the logging client still running?")


def acknowledged_steps(path: Path) -> dict[str, set[int]]:
    """Return {run_id: steps} from an acknowledgement file written by a `log-metrics` client."""
    steps: dict[str, set[int]] = {}
    for line in path.read_text().splitlines():
        run_id, step = line.split()
        steps.setdefault(run_id, set()).add(int(step))
    return steps


def _log_metrics(args: argparse.Namespace, run_name: str | None = None) -> dict:
    """Log to a new run the way a training script does: `mlflow.start_run` sets mlflow.user."""
    import getpass

    import mlflow
    from mlflow.entities import Metric

    tags = dict(item.split("=", 1) for item in args.tag)
    run = mlflow.start_run(experiment_id=args.experiment_id, run_name=run_name or args.run_name, tags=tags)
    run_id = run.info.run_id
    client = mlflow.MlflowClient()
    ack = open(args.ack_file, "a", buffering=1) if args.ack_file else None
    logged = 0
    try:
        for first in range(0, args.count, args.batch_size):
            steps = range(first, min(first + args.batch_size, args.count))
            if len(steps) == 1:
                client.log_metric(run_id, "value", float(first), step=first)
            else:
                now = int(time.time() * 1000)
                client.log_batch(run_id, metrics=[Metric("value", float(s), now, s) for s in steps])
            logged += len(steps)
            if ack:
                ack.write("".join(f"{run_id} {step}\n" for step in steps))
            if args.interval_s:
                time.sleep(args.interval_s)
        mlflow.end_run()
    except Exception as error:  # noqa: BLE001 - the parent reads the failure from the JSON line
        return {"run_id": run_id, "user": getpass.getuser(), "logged": logged,
                "error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}
    finally:
        if ack:
            ack.close()
    return {"run_id": run_id, "user": getpass.getuser(), "logged": logged}


def _fan_out(args: argparse.Namespace) -> dict:
    """Fork `args.clients` logging processes after one MLflow import; gather their summaries."""
    import mlflow  # noqa: F401 - imported once here, inherited by every forked client

    started = time.perf_counter()
    children = []
    for index in range(args.clients):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            result = _log_metrics(args, run_name=f"{args.run_name}-{index + 1}")
            os.write(write_end, json.dumps(result).encode())
            os._exit(0 if "error" not in result else 1)
        os.close(write_end)
        children.append((pid, read_end))
    results = []
    for pid, read_end in children:
        with os.fdopen(read_end, "rb") as pipe:
            text = pipe.read().decode()
        os.waitpid(pid, 0)
        results.append(json.loads(text) if text else {"error": f"client PID {pid} printed nothing"})
    return {"seconds": time.perf_counter() - started, "clients": results}


def _probe(args: argparse.Namespace) -> dict:
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    try:
        experiment = MlflowClient().get_experiment(args.experiment_id)
        return {"ok": True, "status": 200, "experiment": experiment.name}
    except RestException as error:
        status = error.get_http_status_code()
        return {"ok": False, "status": status, "error": str(error).splitlines()[0][:300]}
    except Exception as error:  # noqa: BLE001 - the parent shows what the client raised
        return {"ok": False, "status": None, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}


def _example_run(args: argparse.Namespace) -> dict:
    return log_example_run(os.environ["MLFLOW_TRACKING_URI"], args.experiment_name, args.artifact_location)


def _add_logging_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment-id", required=True)
    parser.add_argument("--run-name", required=True)
    parser.add_argument("--count", type=int, default=200, help="number of metric values to log")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="values per request: 1 uses log_metric, more use log_batch")
    parser.add_argument("--tag", action="append", default=[], help="KEY=VALUE tag on the run")
    parser.add_argument("--ack-file", default=None, help="append 'RUN_ID STEP' after each acknowledged call")
    parser.add_argument("--interval-s", type=float, default=0.0, help="pause between calls, in seconds")


def _main() -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.clients", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    log = commands.add_parser("log-metrics", help="create a run and log COUNT metric values")
    _add_logging_options(log)
    fan = commands.add_parser("fan-out", help="fork CLIENTS log-metrics clients after one import")
    fan.add_argument("--clients", type=int, default=8, help="number of forked client processes")
    _add_logging_options(fan)
    example = commands.add_parser("example-run", help="log one small run with a text artifact")
    example.add_argument("--experiment-name", required=True)
    example.add_argument("--artifact-location", default=None, help="artifact location of a new experiment")
    probe = commands.add_parser("probe", help="read one experiment and report the HTTP status")
    probe.add_argument("--experiment-id", required=True)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    handlers = {"log-metrics": _log_metrics, "fan-out": _fan_out, "probe": _probe,
                "example-run": _example_run}
    result = handlers[args.command](args)
    print(json.dumps(result), flush=True)
    # Skip the atexit hooks: after a failure MLflow's hook would try to end the run on the
    # same dead server and wait through a second round of retries.
    os._exit(0 if "error" not in result else 1)


if __name__ == "__main__":
    sys.exit(_main())
