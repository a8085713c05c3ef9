"""Shared test setup: an MLflow environment isolated from the student's settings."""

from __future__ import annotations

from pathlib import Path

import pytest


def isolate_mlflow(patch: pytest.MonkeyPatch, root: Path) -> None:
    """Keep server PID files under `root`, turn telemetry off and clear the tracking target."""
    patch.setenv("COURSE_STATE_DIR", str(root / "state"))
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID"):
        # setenv records the original state, so the context also removes what MLflow sets.
        patch.setenv(name, "")
        patch.delenv(name)
