"""Export and import between two live tracking servers on 127.0.0.1, as notebook 04 does it.

One module fixture starts an "old" and a "new" server on temporary SQLite
stores, logs a small team history on the old one and migrates its
experiment with mlflow-export-import. The tests check that the verification
finds no difference in what the course keeps, that it reports the tool's
known losses, and that the registered model copy refuses to overwrite.
"""

from __future__ import annotations

import getpass
import os
import sys

import mlflow
import numpy as np
import pytest

from helpers import migration, registry
from helpers.servers import ManagedServer, ServerError
from conftest import isolate_mlflow

EXPERIMENT = "team-history"
MODEL = "team-model"
KNOWN_LOSSES = {
    "run ID", "status", "start time", "end time", "user", "dataset inputs",
    "logged models of runs",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Start the old and new servers, with PID files in a temporary state folder."""
    root = tmp_path_factory.mktemp("migration")
    with pytest.MonkeyPatch.context() as patch:
        isolate_mlflow(patch, root)
        old, new = migration.migration_servers(root)
        migration.start_servers(old, new)
        try:
            yield old, new
        finally:
            old.stop()
            new.stop()
            mlflow.set_tracking_uri(None)
    assert not old.is_running()
    assert not new.is_running()


@pytest.fixture(scope="module")
def migrated(servers):
    """Seed the old server, migrate its experiment and return the run ID map."""
    old, new = servers
    seeded = migration.seed_old_server(old.url, EXPERIMENT, MODEL, epochs=2)
    run_id_map = migration.migrate_experiment(old.url, new.url, EXPERIMENT)
    return seeded, run_id_map


@pytest.fixture(scope="module")
def report(servers, migrated):
    old, new = servers
    return migration.compare_experiments(old.url, new.url, EXPERIMENT, migrated[1])


@pytest.fixture(scope="module")
def version_map(servers, migrated):
    old, new = servers
    return migration.copy_registered_model(old.url, new.url, MODEL, migrated[1])


def test_every_run_is_imported(migrated, report):
    seeded, run_id_map = migrated
    source_ids = {seeded["parent"], seeded["failed"], *seeded["children"].split(",")}
    assert set(run_id_map) == source_ids
    assert report.compared["runs"] == 4


def test_promised_fields_are_identical(report):
    assert report.unexpected() == []
    assert report.compared["metric histories"] >= 6


def test_known_losses_are_reported(report):
    fields = {difference.field for difference in report.losses()}
    assert fields == KNOWN_LOSSES


def test_failed_run_arrives_finished(report):
    status = [d for d in report.differences if d.field == "status"]
    assert [(d.item, d.source, d.target) for d in status] == [("crashed run", "FAILED", "FINISHED")]


def test_user_is_lost(report):
    users = {(d.source, d.target) for d in report.differences if d.field == "user"}
    assert users == {(migration.TEAM_USER, "unknown")}


def test_summary_marks_every_loss(report):
    text = report.format_summary()
    assert "NO (unexpected)" not in text
    assert text.count("no (known loss)") == len(KNOWN_LOSSES)


def test_verification_finds_changed_tag(servers, migrated):
    old, new = servers
    seeded, run_id_map = migrated
    target_client = migration.client_for(new.url)
    target_run = run_id_map[seeded["parent"]]
    target_client.set_tag(target_run, "reviewed", "yes")
    try:
        changed = migration.compare_experiments(old.url, new.url, EXPERIMENT, run_id_map)
    finally:
        target_client.delete_tag(target_run, "reviewed")
    unexpected = changed.unexpected()
    assert [(d.item, d.field) for d in unexpected] == [("team sweep", "tags")]
    assert "reviewed" in unexpected[0].target


def test_missing_experiment_raises(servers):
    old, _ = servers
    with pytest.raises(registry.RegistryError, match="does not exist"):
        migration.compare_experiments(old.url, old.url, "no-such-experiment", {})


def test_copied_model_has_no_differences(servers, version_map):
    old, new = servers
    assert version_map == {"1": "1", "2": "2"}
    compared = migration.compare_registered_models(old.url, new.url, MODEL, version_map)
    assert compared.differences == []
    assert compared.compared["model versions"] == 2


def test_copy_leaves_imported_runs_unchanged(servers, migrated, version_map):
    old, new = servers
    after_copy = migration.compare_experiments(old.url, new.url, EXPERIMENT, migrated[1])
    assert after_copy.unexpected() == []


def test_copied_model_keeps_aliases(servers, version_map):
    old, new = servers
    source = migration.client_for(old.url).get_registered_model(MODEL)
    target = migration.client_for(new.url).get_registered_model(MODEL)
    assert {a: str(v) for a, v in target.aliases.items()} == {
        a: str(v) for a, v in source.aliases.items()
    }
    assert set(target.aliases) == {"production", "staging"}


def test_copied_versions_link_imported_runs(servers, migrated, version_map):
    _, new = servers
    _, run_id_map = migrated
    client = migration.client_for(new.url)
    for version in version_map.values():
        copied = client.get_model_version(MODEL, version)
        logged = client.get_logged_model(registry.model_id_of(copied))
        assert logged.source_run_id in run_id_map.values()
        assert copied.run_id == logged.source_run_id


def test_migrated_model_predicts_the_same(servers, version_map):
    old, new = servers
    features = registry.holdout_grid()[0]
    uri = f"models:/{MODEL}@production"
    from_old = migration.predictions_from(old.url, uri, features)
    from_new = migration.predictions_from(new.url, uri, features)
    assert np.array_equal(from_old, from_new)


def test_copy_into_target_with_model_raises(servers, migrated, version_map):
    old, new = servers
    target = migration.client_for(new.url)
    before = target.search_model_versions(f"name = '{MODEL}'")
    with pytest.raises(migration.ModelAlreadyExistsError, match="already exists"):
        migration.copy_registered_model(old.url, new.url, MODEL, migrated[1])
    after = target.search_model_versions(f"name = '{MODEL}'")
    assert len(after) == len(before)


def test_copy_without_migrated_run_raises(servers, migrated):
    old, new = servers
    name = f"{MODEL}-unmigrated"
    source_version = migration.client_for(old.url).get_model_version(MODEL, "1")
    with migration.tracking_uri(old.url):
        registry.register(source_version.source, name)
    with pytest.raises(registry.RegistryError, match="not in run_id_map"):
        migration.copy_registered_model(old.url, new.url, name, {})
    assert migration.client_for(new.url).search_registered_models(f"name = '{name}'") == []


def test_failed_copy_removes_partial_copy(servers, migrated, monkeypatch):
    old, new = servers
    name = f"{MODEL}-partial"
    source = migration.client_for(old.url)
    with migration.tracking_uri(old.url):
        for version in ("1", "2"):
            registry.register(source.get_model_version(MODEL, version).source, name)
    copy_logged_model = migration._copy_logged_model
    calls = []

    def fail_on_second_version(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("simulated network failure")
        return copy_logged_model(*args, **kwargs)

    monkeypatch.setattr(migration, "_copy_logged_model", fail_on_second_version)
    target = migration.client_for(new.url)
    experiment = target.get_experiment_by_name(EXPERIMENT).experiment_id
    models_before = len(target.search_logged_models([experiment]))
    with pytest.raises(OSError, match="simulated"):
        migration.copy_registered_model(old.url, new.url, name, migrated[1])
    assert target.search_registered_models(f"name = '{name}'") == []
    assert len(target.search_logged_models([experiment])) == models_before


def test_wait_servers_stops_all_on_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_STATE_DIR", str(tmp_path / "state"))
    # The host and port flags the server appends become ignored arguments of the script.
    sleeping = [sys.executable, "-c", "import time; time.sleep(60)"]
    never_healthy = ManagedServer("never-healthy", sleeping, health_check=lambda server: False)
    crashing = ManagedServer("crashing", [sys.executable, "-c", "raise SystemExit(3)"])
    migration.launch_servers(never_healthy, crashing)
    with pytest.raises(ServerError, match="exited with status"):
        migration.wait_servers(never_healthy, crashing, timeout_s=30)
    assert not never_healthy.is_running()
    assert not crashing.is_running()


def test_seeding_hides_credentials_of_other_server(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "student")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-for-the-old-server")
    with migration._logged_as(migration.TEAM_USER):
        assert "MLFLOW_TRACKING_USERNAME" not in os.environ, "the username would become the run's user"
        assert "MLFLOW_TRACKING_PASSWORD" not in os.environ, "the password would reach a server without login"
        assert getpass.getuser() == migration.TEAM_USER
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "student", "the credentials were not restored"
