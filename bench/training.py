"""Cost of MLflow logging in the wind chill training loop, on a temporary local store.

The loop of notebook 02 is timed with per-epoch logging into an active run and
without MLflow, alternating the two so that machine noise hits both alike.
`log_model` is timed on the trained network with the course's settings.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPEATS = 5
# The loop's own target: logging every epoch may cost at most 10 % of the wall time.
OVERHEAD_TARGET = 1.10
LOG_MODEL_TARGET_S = 1.5


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _loop_times(splits, config) -> dict[str, list[float]]:
    """Return REPEATS wall times of the loop without MLflow, logging synchronously and async."""
    import mlflow

    from helpers.training import BUFFERING_VARIABLE, train

    times = {"plain": [], "sync": [], "async": []}
    train(config, splits["train"], splits["validation"], log_to_mlflow=False)  # warm-up
    for _ in range(REPEATS):
        times["plain"].append(_timed(lambda: train(
            config, splits["train"], splits["validation"], log_to_mlflow=False)))
        with mlflow.start_run(run_name="bench-loop-sync"):
            times["sync"].append(_timed(lambda: train(config, splits["train"], splits["validation"])))
        os.environ[BUFFERING_VARIABLE] = "1"
        try:
            with mlflow.start_run(run_name="bench-loop-async"):
                times["async"].append(_timed(lambda: train(
                    config, splits["train"], splits["validation"], synchronous=False)))
        finally:
            os.environ.pop(BUFFERING_VARIABLE, None)
    return times


def _log_model_times(model) -> list[float]:
    import mlflow

    from helpers.tracking import log_model

    times = []
    for _ in range(REPEATS):
        with mlflow.start_run(run_name="bench-log-model"):
            times.append(_timed(lambda: log_model(model)))
    return times


def measure() -> list[dict]:
    """Return the logging overhead ratio of the loop and the median `log_model` time."""
    folder = Path(tempfile.mkdtemp(prefix="course-bench-training-"))
    os.environ["COURSE_STORE_DIR"] = str(folder / "store")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        from helpers import store
        from helpers.training import TrainConfig
        from helpers.windchill import DataSettings, make_splits

        store.configure_mlflow()
        store.use_experiment("bench-training")
        splits = make_splits(DataSettings())
        config = TrainConfig()
        times = _loop_times(splits, config)
        from helpers.training import train

        model = train(config, splits["train"], splits["validation"], log_to_mlflow=False).model
        log_model_s = _log_model_times(model)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    epochs = config.epochs
    return [
        {"name": f"training loop, {epochs} epochs, no MLflow (median of {REPEATS})",
         "value": medians["plain"], "unit": "s", "target": None},
        {"name": f"training loop, {epochs} epochs, logging every epoch (median of {REPEATS})",
         "value": medians["sync"], "unit": "s", "target": None},
        {"name": "logging overhead: logged / plain loop time", "value": medians["sync"] / medians["plain"],
         "unit": "x", "target": OVERHEAD_TARGET},
        {"name": "logging overhead, async with 1 s buffering: logged / plain",
         "value": medians["async"] / medians["plain"], "unit": "x", "target": OVERHEAD_TARGET},
        {"name": f"mlflow.pytorch.log_model with pip requirements (median of {REPEATS})",
         "value": statistics.median(log_model_s), "unit": "s", "target": LOG_MODEL_TARGET_S},
    ]
