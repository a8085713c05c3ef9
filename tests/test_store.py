"""The course store: one absolute location, overridable, shown in the UI by make ui."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from helpers import store

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def temporary_course_store(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield store.course_store()
    mlflow.set_tracking_uri(None)


def test_course_store_defaults_to_repository(monkeypatch):
    monkeypatch.delenv("COURSE_STORE_DIR", raising=False)
    course = store.course_store()
    assert course.root == REPO / "store"
    assert course.tracking_uri == f"sqlite:///{REPO}/store/mlflow.db"


def test_course_store_is_absolute_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STORE_DIR", "relative/store")
    monkeypatch.chdir(tmp_path)
    assert store.course_store().root == tmp_path / "relative" / "store"
    monkeypatch.delenv("COURSE_STORE_DIR")
    assert store.course_store().root.is_absolute()


def test_tracking_uri_environment_overrides_store(temporary_course_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert store.resolve_tracking_uri() == "http://127.0.0.1:9"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert store.resolve_tracking_uri() == temporary_course_store.tracking_uri


def test_setup_prints_uri_and_ui_command(temporary_course_store, capsys):
    uri = store.setup()
    printed = capsys.readouterr().out.splitlines()
    assert uri == temporary_course_store.tracking_uri
    assert printed == [f"Tracking URI: {uri}", "See these runs in the UI: make ui"]
    assert mlflow.get_tracking_uri() == uri
    assert temporary_course_store.artifacts.is_dir()


def test_ui_command_for_other_stores(tmp_path):
    other = store.LocalStore(tmp_path)
    command = store.ui_command(other.tracking_uri)
    assert command.startswith(f"mlflow ui --backend-store-uri {other.tracking_uri}")
    assert f"--default-artifact-root {other.artifacts}" in command
    assert "server is the UI" in store.ui_command("http://127.0.0.1:5001")


def test_artifacts_stay_inside_store(temporary_course_store, tmp_path, monkeypatch):
    work = tmp_path / "notebook-cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    store.configure_mlflow()
    experiment = store.use_experiment("artifacts stay home")
    with mlflow.start_run() as run:
        mlflow.log_dict({"answer": 42}, "answer.json")
    artifact_dir = Path(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
    assert artifact_dir.is_relative_to(temporary_course_store.artifacts)
    assert (artifact_dir / "answer.json").exists()
    assert list(work.iterdir()) == [], "MLflow wrote into the working directory"
    assert store.use_experiment("artifacts stay home").experiment_id == experiment.experiment_id


def test_quiet_setup_hides_fresh_store_info_lines(tmp_path):
    """A fresh store and a new experiment print nothing to stderr after setup()."""
    code = (
        "from helpers import store; store.setup(); import mlflow\n"
        "store.use_experiment('quiet'); mlflow.start_run(); mlflow.end_run()\n"
    )
    env = dict(os.environ, COURSE_STORE_DIR=str(tmp_path / "store"), MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 2


def test_make_ui_reads_the_store_the_notebooks_write(temporary_course_store):
    """Runs logged through setup() are the runs the `make ui` server lists."""
    from helpers import servers

    store.configure_mlflow()
    store.use_experiment("seen in ui")
    with mlflow.start_run(run_name="visible") as run:
        mlflow.log_metric("loss", 0.5, step=0)
    course = store.course_store()
    with servers.ui_server(course.tracking_uri, str(course.artifacts)) as ui:
        client = mlflow.MlflowClient(tracking_uri=ui.url)
        found = client.search_runs([client.get_experiment_by_name("seen in ui").experiment_id])
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_reset_moves_store_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STORE_DIR", str(tmp_path / "store"))
    from helpers.store import course_store, reset_course_store

    course_store().create()
    (course_store().root / "mlflow.db").write_bytes(b"runs")
    backup = reset_course_store()
    assert backup is not None, "reset returned None although a store existed"
    assert backup.name.startswith("store-backup-"), backup.name
    assert (backup / "mlflow.db").read_bytes() == b"runs", "the old runs were not kept"
    assert not course_store().root.exists(), "the course store still exists after the reset"


def test_reset_without_store_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STORE_DIR", str(tmp_path / "store"))
    from helpers.store import reset_course_store

    assert reset_course_store() is None
    assert list(tmp_path.iterdir()) == [], "reset created files although no store existed"


def test_environment_changed_restores_variables(monkeypatch):
    from helpers.store import environment_changed

    monkeypatch.setenv("COURSE_TEST_KEPT", "before")
    monkeypatch.setenv("COURSE_TEST_REMOVED", "secret")
    monkeypatch.delenv("COURSE_TEST_ADDED", raising=False)
    with environment_changed({"COURSE_TEST_KEPT": "inside", "COURSE_TEST_ADDED": "new"},
                             removed=("COURSE_TEST_REMOVED",)):
        assert os.environ["COURSE_TEST_KEPT"] == "inside"
        assert os.environ["COURSE_TEST_ADDED"] == "new"
        assert "COURSE_TEST_REMOVED" not in os.environ
    assert os.environ["COURSE_TEST_KEPT"] == "before"
    assert "COURSE_TEST_ADDED" not in os.environ, "a variable set only inside the block was kept"
    assert os.environ["COURSE_TEST_REMOVED"] == "secret", "a removed variable was not restored"
