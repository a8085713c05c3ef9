"""A PostgreSQL backend store and an S3-compatible artifact store, both started on 127.0.0.1."""

from __future__ import annotations

import mlflow
import psycopg2
import pytest

from helpers import backends, clients, servers


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Return (postgres, object_store, s3 settings) running for the whole module."""
    folder = tmp_path_factory.mktemp("stores")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_STATE_DIR", str(folder / "state"))
        postgres = backends.postgres_server(folder / "postgres")
        object_store = backends.moto_server()
        for service in (postgres, object_store):
            service.launch()
        try:
            for service in (postgres, object_store):
                service.wait_started()
            yield postgres, object_store, backends.S3Settings.generate(object_store.url)
        finally:
            servers.stop_servers([postgres, object_store])
    assert servers.port_is_free(postgres.port)
    assert servers.port_is_free(object_store.port)


@pytest.fixture(scope="module")
def team_layout(stores):
    """A lean tracking server on PostgreSQL with artifacts proxied to the S3 bucket."""
    postgres, _, s3 = stores
    uri = backends.create_database(postgres, "mlflow")
    bucket = backends.create_bucket(s3, "course-artifacts")
    with servers.tracking_server(uri, artifacts_destination=f"{bucket}/mlflow", env=s3.environment(),
                                 name="mlflow-postgres") as server:
        yield server


def test_postgres_listens_on_loopback_only(stores):
    postgres = stores[0]
    connection = psycopg2.connect(host=servers.LOCALHOST, port=postgres.port, user="postgres",
                                  dbname="postgres")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW listen_addresses")
            assert cursor.fetchone()[0] == servers.LOCALHOST
            cursor.execute("SHOW server_version")
            assert cursor.fetchone()[0].split(".")[0].isdigit()
    finally:
        connection.close()


def test_create_database_is_idempotent(stores):
    postgres = stores[0]
    first = backends.create_database(postgres, "twice")
    assert backends.create_database(postgres, "twice") == first
    assert first == f"postgresql+psycopg2://postgres@127.0.0.1:{postgres.port}/twice"


def test_run_artifacts_land_in_bucket(team_layout, stores):
    s3 = stores[2]
    run = clients.log_example_run(team_layout.url, "storage")
    assert "error" not in run
    assert run["artifact_uri"].startswith("mlflow-artifacts:/")
    keys = backends.list_keys(s3, "course-artifacts", prefix="mlflow/")
    assert any(key.endswith(f"{run['run_id']}/artifacts/notes/readme.txt") for key in keys)
    stored = mlflow.MlflowClient(team_layout.url).get_run(run["run_id"])
    assert stored.data.params == {"store": "storage"}


def test_eight_clients_store_every_metric_on_postgres(team_layout):
    experiment_id = mlflow.MlflowClient(team_layout.url).create_experiment("load")
    summary = clients.fan_out(team_layout.url, experiment_id, clients=8, count=200, batch_size=1)
    assert [result.get("error") for result in summary["clients"]] == [None] * 8
    stored = clients.metric_values(team_layout.url, experiment_id)
    assert len(stored) == 8
    assert sum(len(steps) for steps in stored.values()) == 1600
    print(f"PostgreSQL-backed server: 1600/1600 metrics from 8 clients in {summary['seconds']:.1f} s")


def test_s3_settings_hide_keys_and_isolate_aws_files(stores):
    s3 = stores[2]
    assert s3.access_key_id not in repr(s3)
    assert s3.secret_access_key not in repr(s3)
    env = s3.environment()
    assert env["MLFLOW_S3_ENDPOINT_URL"] == s3.endpoint_url
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == env["AWS_CONFIG_FILE"]
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
