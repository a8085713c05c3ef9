"""Shared settings for executing notebooks: a temporary store and one sanitize file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
SANITIZE_DIR = NOTEBOOK_DIR / "sanitize"
SOLUTIONS_DIR = NOTEBOOK_DIR / "solutions"
CELL_TIMEOUT_S = 300


def notebooks(names: list[str]) -> list[Path]:
    """Return the notebooks named by number prefix or path (with their solutions), or all."""
    every = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")) + sorted(SOLUTIONS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    chosen = []
    for name in names:
        prefix = Path(name).name[:2]
        matches = [nb for nb in every if nb.name.startswith(prefix) or nb == Path(name).resolve()]
        if not matches:
            raise SystemExit(f"no notebook matches {name!r}; choose from {[nb.name for nb in every]}")
        chosen += [nb for nb in matches if nb not in chosen]
    return chosen


def merged_sanitize_file(folder: Path) -> Path:
    """Concatenate notebooks/sanitize/*.cfg (common.cfg first) into one file for nbval."""
    parts = sorted(SANITIZE_DIR.glob("*.cfg"), key=lambda p: (p.name != "common.cfg", p.name))
    merged = folder / "sanitize.cfg"
    merged.write_text("\n".join(part.read_text() for part in parts))
    return merged


def temporary_store_environment(folder: Path) -> dict[str, str]:
    """Return os.environ with store and server state in `folder` and telemetry off.

    MLFLOW_TRACKING_URI is kept when the caller set it, so the same notebooks
    can be tested against a server.
    """
    env = dict(os.environ)
    env["COURSE_STORE_DIR"] = str(folder / "store")
    # PID files of this execution's servers, so its final stop-all ends only those,
    # never the servers of a notebook executing at the same time.
    env.setdefault("COURSE_STATE_DIR", str(folder / "state"))
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def new_work_folder(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
