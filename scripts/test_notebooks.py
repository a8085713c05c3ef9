"""Execute the notebooks under nbval twice in a row against one temporary store.

The second pass proves that a notebook reproduces its outputs on a store that
already contains its runs. Afterwards the store is read back through the client
(store_checks), which makes this the local SQLite leg of the store matrix whose
other legs test_stores.py runs. Usage: python scripts/test_notebooks.py [01 02 ...]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from notebook_env import CELL_TIMEOUT_S, merged_sanitize_file, new_work_folder, notebooks, temporary_store_environment
from store_checks import verify

from helpers.store import LocalStore

PASSES = 2


def check_store(env: dict[str, str], chosen) -> int:
    """Read the temporary store back and report what the executions failed to leave in it."""
    os.environ.update({key: env[key] for key in ("COURSE_STORE_DIR", "MLFLOW_DISABLE_TELEMETRY")})
    tracking_uri = env.get("MLFLOW_TRACKING_URI") or LocalStore(Path(env["COURSE_STORE_DIR"])).tracking_uri
    numbers = sorted({path.name[:2] for path in chosen})
    problems = verify(tracking_uri, numbers, executions=PASSES)
    for problem in problems:
        print(f"store check: {problem}", flush=True)
    print(f"store check of {numbers} after {PASSES} passes: {len(problems)} problem(s)", flush=True)
    return 1 if problems else 0


def main() -> int:
    chosen = notebooks(sys.argv[1:])
    folder = new_work_folder("course-nbval-")
    env = temporary_store_environment(folder)
    sanitize = merged_sanitize_file(folder)
    status = 0
    try:
        for number in range(1, PASSES + 1):
            print(f"nbval pass {number} of {PASSES} on {[nb.name for nb in chosen]}", flush=True)
            started = time.perf_counter()
            command = [
                sys.executable, "-m", "pytest", "--nbval", *map(str, chosen),
                "--nbval-sanitize-with", str(sanitize),
                "--nbval-cell-timeout", str(CELL_TIMEOUT_S),
                "-p", "no:cacheprovider", "--durations", "0",
            ]
            status = subprocess.call(command, env=env, cwd=chosen[0].parent)
            print(f"nbval pass {number} took {time.perf_counter() - started:.0f} s", flush=True)
            if status != 0:
                break
        if status == 0:
            status = check_store(env, chosen)
    finally:
        subprocess.call([sys.executable, "-m", "helpers.servers", "stop-all"], env=env)
        shutil.rmtree(folder, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
