"""Latency of one-row requests to `mlflow models serve` on 127.0.0.1, as notebook 04 measures it.

Logs an untrained network of the course's sweep size on a temporary SQLite
store, registers it with @production, serves that alias with
`--env-manager local` and times 200 sequential one-row requests over one
keep-alive connection. An untrained network costs the same per request as a
trained one of the same shape.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

# Maxima in milliseconds for the 2-core CI machine.
MEDIAN_TARGET_MS = 2.0
P95_TARGET_MS = 5.0
REQUESTS = 200


def _register_model(tracking_uri: str, folder: Path, name: str) -> None:
    """Log an untrained WindChillNet and point `name@production` at it."""
    import mlflow

    from helpers.model import WindChillNet
    from helpers.registry import register
    from helpers.tracking import log_model

    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.create_experiment("bench-serving", (folder / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_model(WindChillNet((32, 32)))
    version = register(info.model_uri, name)
    mlflow.MlflowClient().set_registered_model_alias(name, "production", str(version.version))


def measure() -> list[dict]:
    """Return the model server's start time and the median and p95 request latency."""
    from helpers.serving import measure_latency, serve_alias

    folder = Path(tempfile.mkdtemp(prefix="course-bench-serving-"))
    saved_state = os.environ.get("COURSE_STATE_DIR")
    os.environ["COURSE_STATE_DIR"] = str(folder / "state")
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    server = None
    try:
        _register_model(tracking_uri, folder, "bench-serving")
        server = serve_alias("bench-serving", "production", tracking_uri)
        started = time.perf_counter()
        server.start(timeout_s=120)
        start_s = time.perf_counter() - started
        latency = measure_latency(server.url, requests=REQUESTS)
    finally:
        if server is not None:
            server.stop()
        if saved_state is None:
            os.environ.pop("COURSE_STATE_DIR", None)
        else:
            os.environ["COURSE_STATE_DIR"] = saved_state
        shutil.rmtree(folder, ignore_errors=True)
    return [
        {"name": "model server start to /ping", "value": start_s, "unit": "s", "target": None},
        {"name": f"serving median of {REQUESTS} one-row requests", "value": latency.median_ms,
         "unit": "ms", "target": MEDIAN_TARGET_MS},
        {"name": f"serving p95 of {REQUESTS} one-row requests", "value": latency.p95_ms,
         "unit": "ms", "target": P95_TARGET_MS},
    ]
