"""Where the course stores its runs: one local store, or whatever MLFLOW_TRACKING_URI names."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Settings the course applies before the first MLflow call (see `configure_mlflow`).
COURSE_ENVIRONMENT = {
    # MLflow contacts a telemetry host on first use unless this is set.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # The "View run ... at ..." line differs on every run; the notebooks print their own.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # A dead server should fail a cell within seconds, not after minutes of retries.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def environment_changed(values: dict[str, str], removed: tuple[str, ...] = ()) -> Iterator[None]:
    """Remove the `removed` variables and set `values` inside the block, then restore both."""
    names = (*removed, *values)
    saved = {name: os.environ.get(name) for name in names}
    for name in removed:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class LocalStore:
    """A local SQLite backend store and its artifact folder."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.database}"

    def create(self) -> "LocalStore":
        """Create the store's folders (MLflow creates the database file itself)."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return self


def course_store() -> LocalStore:
    """Return the course store: `store/` in the repository, or COURSE_STORE_DIR.

    Nothing is created here. Tests and `make notebooks` point COURSE_STORE_DIR
    at a temporary folder so they never touch the student's runs.
    """
    return LocalStore(Path(os.environ.get("COURSE_STORE_DIR") or REPO_ROOT / "store").resolve())


def local_store_for(tracking_uri: str) -> LocalStore | None:
    """Return the LocalStore behind a `sqlite:///DIR/mlflow.db` URI, else None."""
    match = re.fullmatch(r"sqlite:///(.+)/mlflow\.db", tracking_uri)
    return LocalStore(Path(match.group(1))) if match else None


def resolve_tracking_uri() -> str:
    """Return MLFLOW_TRACKING_URI if set, else the course store's URI."""
    return os.environ.get("MLFLOW_TRACKING_URI") or course_store().tracking_uri


def ui_command(tracking_uri: str) -> str:
    """Return the shell command that shows the runs of `tracking_uri` in the MLflow UI."""
    if tracking_uri == course_store().tracking_uri:
        return "make ui"
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser (the server is the UI)"
    store = local_store_for(tracking_uri)
    if store is not None:
        return (
            f"mlflow ui --backend-store-uri {tracking_uri} "
            f"--default-artifact-root {store.artifacts} --host 127.0.0.1"
        )
    return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1"


def configure_mlflow(quiet: bool = True) -> str:
    """Apply the course environment, point MLflow at its store and return the URI.

    Creates the local store's folders when the URI is a course-style SQLite
    store. With `quiet`, MLflow's INFO lines (database creation, new
    experiments) are hidden, because they appear only on a fresh store.
    """
    for key, value in COURSE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    import mlflow

    tracking_uri = resolve_tracking_uri()
    store = local_store_for(tracking_uri)
    if store is not None:
        store.create()
    mlflow.set_tracking_uri(tracking_uri)
    if quiet:
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    logger.info("tracking URI set to %s", tracking_uri)
    return tracking_uri


def setup(quiet: bool = True) -> str:
    """Configure MLflow for a notebook, print where runs go and how to see them."""
    tracking_uri = configure_mlflow(quiet=quiet)
    print(f"Tracking URI: {tracking_uri}")
    print(f"See these runs in the UI: {ui_command(tracking_uri)}")
    return tracking_uri


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


def use_experiment(name: str):
    """Make `name` the active experiment, creating it if needed, and return it.

    On a local SQLite store a new experiment gets its artifact location inside
    that store, so artifacts never land in the notebook's working directory
    (MLflow's own default is `./mlruns` there). On any other store this is
    plain `mlflow.set_experiment(name)`.
    """
    import mlflow

    store = local_store_for(mlflow.get_tracking_uri())
    if store is not None and mlflow.get_experiment_by_name(name) is None:
        location = (store.artifacts / _slug(name)).as_uri()
        mlflow.create_experiment(name, artifact_location=location)
    return mlflow.set_experiment(name)


def reset_course_store() -> Path | None:
    """Move the course store aside to `<store>-backup-<UTC time>` and return that folder.

    Nothing is deleted: the old runs stay readable with
    `mlflow ui --backend-store-uri sqlite:///<backup>/mlflow.db`. Returns None
    when there is no store yet. The next notebook creates a new, empty one.
    """
    current = course_store()
    if not current.root.exists():
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    backup = current.root.with_name(f"{current.root.name}-backup-{stamp}")
    current.root.rename(backup)
    logger.info("moved the course store %s to %s", current.root, backup)
    return backup


def _main(arguments: list[str]) -> int:
    if arguments != ["reset"]:
        print("usage: python -m helpers.store reset", file=sys.stderr)
        return 2
    backup = reset_course_store()
    if backup is None:
        print(f"No course store at {course_store().root}: nothing to reset.")
        return 0
    print(f"Moved the old course store to {backup}.")
    print("The next notebook you run starts a new, empty store. "
          f"Delete {backup.name} once you no longer need its runs.")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
