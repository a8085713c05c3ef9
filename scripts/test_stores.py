"""Execute notebooks 01, 02 and 04 under nbval once against each kind of tracking store.

Each leg changes nothing but MLFLOW_TRACKING_URI and the variables that its
store needs, then reads the store back through the client API (store_checks).
The local SQLite leg is the two-pass run of test_notebooks.py, which checks
its store the same way. Usage: python scripts/test_stores.py [server auth file] [--notebooks 01,02]
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from notebook_env import (
    CELL_TIMEOUT_S, REPO_ROOT, merged_sanitize_file, new_work_folder, notebooks,
    temporary_store_environment,
)
from store_checks import verify

sys.path.insert(0, str(REPO_ROOT))

from helpers.auth import AuthSettings, auth_server, create_user  # noqa: E402
from helpers.servers import course_processes, stop_all, tracking_server  # noqa: E402
from helpers.store import LocalStore  # noqa: E402

NOTEBOOKS = ["01", "02", "04"]


@dataclass
class Target:
    """A running tracking target: the variables a notebook needs and how to read it back."""

    env: dict[str, str]
    # Credentials the harness itself uses to read the store afterwards.
    reader_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Leg:
    """One kind of store: how to start it and which notebooks it cannot run, with the reason."""

    name: str
    description: str
    start: Callable[[Path], contextlib.AbstractContextManager[Target]]
    unsupported: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def proxied_server(folder: Path) -> Iterator[Target]:
    store = LocalStore(folder / "server-store").create()
    with tracking_server(store.tracking_uri, artifacts_destination=str(store.artifacts)) as server:
        yield Target({"MLFLOW_TRACKING_URI": server.url})


def enable_credential_cache(config_path: Path, seconds: int = 300) -> None:
    """Let the auth server cache successful password checks (MLflow's auth_cache_ttl_seconds).

    Basic auth verifies the scrypt password hash on every request. Measured here
    (MLflow 3.17.2, 2 cores under load), 450 ms a request without the cache and
    33 ms with it, which turns a ten-minute leg into a two-minute one.
    """
    config = configparser.ConfigParser()
    config.read(config_path)
    config["mlflow"]["auth_cache_ttl_seconds"] = str(seconds)
    with open(config_path, "w") as handle:  # keeps the file's owner-only mode
        config.write(handle)


@contextlib.contextmanager
def basic_auth_server(folder: Path) -> Iterator[Target]:
    store = LocalStore(folder / "auth-store").create()
    settings = AuthSettings.generate(folder / "auth")
    enable_credential_cache(settings.write_config())
    with auth_server(settings, store.tracking_uri, str(store.artifacts)) as server:
        student = create_user(server.url, settings.admin, "student")
        # The notebooks get the student's credentials through these two variables only.
        yield Target({"MLFLOW_TRACKING_URI": server.url, **student.environment()},
                     reader_env=settings.admin.environment())


@contextlib.contextmanager
def file_store(folder: Path) -> Iterator[Target]:
    yield Target({"MLFLOW_TRACKING_URI": (folder / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"})


LEGS = {
    "server": Leg("server", "tracking server on 127.0.0.1, artifacts proxied", proxied_server),
    "auth": Leg("auth", "the same server behind basic auth, credentials from variables",
                basic_auth_server),
    "file": Leg(
        "file", "legacy file store (MLFLOW_ALLOW_FILE_STORE=true)", file_store,
        unsupported={
            number: "in MLflow 3.17.2 the file store appends a second copy of each metric's "
                    "step-0 point when a model is logged (val_loss gets 41 points for 40 epochs)"
            for number in ("02", "04")
        },
    ),
}


def run_nbval(paths: list[Path], env: dict[str, str], sanitize: Path) -> int:
    command = [
        sys.executable, "-m", "pytest", "--nbval", *map(str, paths),
        "--nbval-sanitize-with", str(sanitize), "--nbval-cell-timeout", str(CELL_TIMEOUT_S),
        "-p", "no:cacheprovider", "-q",
    ]
    return subprocess.call(command, env=env, cwd=paths[0].parent)


def run_leg(leg: Leg, chosen: list[str]) -> tuple[bool, float]:
    """Execute the chosen notebooks against one leg's store; return (passed, seconds)."""
    started = time.perf_counter()
    folder = new_work_folder(f"course-store-{leg.name}-")
    env = temporary_store_environment(folder)
    os.environ["COURSE_STATE_DIR"] = env["COURSE_STATE_DIR"]
    runnable = [number for number in chosen if number not in leg.unsupported]
    for number in chosen:
        if number in leg.unsupported:
            print(f"[{leg.name}] SKIP notebook {number}: {leg.unsupported[number]}", flush=True)
    passed = True
    running_before = {process.pid for process in course_processes()}
    try:
        with leg.start(folder) as target:
            paths = [path for path in notebooks(runnable) if path.parent.name == "notebooks"]
            sanitize = merged_sanitize_file(folder)
            passed = run_nbval(paths, {**env, **target.env}, sanitize) == 0
            tracking_uri = target.env["MLFLOW_TRACKING_URI"]
            with _environment({**target.env, **target.reader_env}):
                problems = verify(tracking_uri, runnable, executions=1)
            for problem in problems:
                print(f"[{leg.name}] store check: {problem}", flush=True)
            passed = passed and not problems
    finally:
        stop_all()
        shutil.rmtree(folder, ignore_errors=True)
    left = [process for process in course_processes() if process.pid not in running_before]
    for process in left:
        print(f"[{leg.name}] left running after the leg: PID {process.pid} {process.name()}", flush=True)
    return passed and not left, time.perf_counter() - started


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("legs", nargs="*", default=list(LEGS), help=f"legs to run, of {list(LEGS)}")
    parser.add_argument("--notebooks", default=",".join(NOTEBOOKS),
                        help="comma-separated notebook numbers (default: %(default)s)")
    args = parser.parse_args()
    names, chosen = args.legs, args.notebooks.split(",")
    unknown = [name for name in names if name not in LEGS]
    if unknown:
        raise SystemExit(f"unknown legs {unknown}; choose from {list(LEGS)}")
    results = {}
    for name in names:
        leg = LEGS[name]
        print(f"store leg {name}: {leg.description}", flush=True)
        results[name] = run_leg(leg, chosen)
    print("store legs:")
    for name, (passed, seconds) in results.items():
        print(f"  {name:7} {'passed' if passed else 'FAILED'} in {seconds:.0f} s")
    return 0 if all(passed for passed, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
