"""Start time, processes and memory of `mlflow server`: the course's lean settings against MLflow's defaults.

Lean is `--workers 1` with MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false; the
defaults are 4 workers and the GenAI job runner. Each start uses a fresh
SQLite store, so the time includes creating its tables.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from helpers import servers

REPEATS = 3


def start_once(lean: bool) -> dict:
    """Start one server on a fresh store; return seconds to healthy, process count and RSS in MiB."""
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as folder:
        server = servers.tracking_server(
            f"sqlite:///{folder}/mlflow.db", artifacts_destination=str(Path(folder) / "artifacts"),
            lean=lean, workers=1 if lean else None, name="bench-lean" if lean else "bench-default",
        )
        started = time.perf_counter()
        server.start(timeout_s=120)
        seconds = time.perf_counter() - started
        try:
            # Count a moment after /health returns 200, in case workers or the job runner
            # are still starting.
            time.sleep(2)
            processes = len(servers.process_tree(server.pid))
            memory_mib = server.memory_bytes() / 2**20
        finally:
            server.stop()
    return {"seconds": seconds, "processes": processes, "memory_mib": memory_mib}


def measure(repeats: int = REPEATS) -> list[dict]:
    """Return the median start time, process count and memory for lean and default servers."""
    rows = []
    for lean, label in [(True, "lean"), (False, "default")]:
        samples = [start_once(lean) for _ in range(repeats)]
        median = {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}
        rows += [
            {"name": f"mlflow server start to /health, {label}", "value": median["seconds"],
             "unit": "s", "target": None},
            {"name": f"mlflow server processes, {label}", "value": median["processes"],
             "unit": "processes", "target": None},
            {"name": f"mlflow server resident memory, {label}", "value": median["memory_mib"],
             "unit": "MiB", "target": None},
        ]
    return rows


if __name__ == "__main__":
    for row in measure(repeats=1):
        print(f"{row['name']}: {row['value']:.1f} {row['unit']}")
