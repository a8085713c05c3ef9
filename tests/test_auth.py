"""Basic auth on a real server: 401 and 403, the permission matrix, credential sources, secrets.

One basic-auth server on 127.0.0.1 serves the whole module; each test that
needs users creates its own, with generated passwords.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest
import requests

from helpers import auth, clients, servers

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture(scope="module")
def guarded(state, tmp_path_factory):
    """Return (server, settings, experiment_id, run_id) of a running basic-auth server."""
    folder = tmp_path_factory.mktemp("auth")
    settings = auth.AuthSettings.generate(folder)
    settings.write_config(default_permission="NO_PERMISSIONS")
    server = auth.auth_server(settings, f"sqlite:///{folder}/mlflow.db", str(folder / "artifacts"))
    with server:
        with auth.signed_in(settings.admin):
            client = mlflow.MlflowClient(server.url)
            experiment_id = client.create_experiment("secured")
            run_id = client.create_run(experiment_id).info.run_id
        yield server, settings, experiment_id, run_id
    assert servers.port_is_free(server.port)


def test_anonymous_request_gets_401(guarded):
    server = guarded[0]
    response = requests.get(f"{server.url}/api/2.0/mlflow/experiments/search",
                            params={"max_results": 1}, timeout=10)
    assert response.status_code == 401
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_permission_matrix_as_expected(guarded):
    server, settings, experiment_id, run_id = guarded
    users = {level: auth.create_user(server.url, settings.admin, f"matrix-{level.lower()}",
                                     level, experiment_id)
             for level in ("READ", "EDIT", "MANAGE")}
    grantee = auth.create_user(server.url, settings.admin, "matrix-grantee")
    principals = {"anonymous": None, **users, "admin": settings.admin}
    matrix = auth.permission_matrix(server.url, principals, experiment_id, run_id, grantee.username)
    for principal, expected in auth.EXPECTED_MATRIX.items():
        for action, status in expected.items():
            assert matrix[principal][action] == status, f"{principal} {action}"
    assert matrix == auth.EXPECTED_MATRIX


def test_read_user_client_gets_403_on_log(guarded):
    server, settings, experiment_id, run_id = guarded
    reader = auth.create_user(server.url, settings.admin, "client-reader", "READ", experiment_id)
    with auth.signed_in(reader):
        client = mlflow.MlflowClient(server.url)
        assert client.get_experiment(experiment_id).name == "secured"
        with pytest.raises(mlflow.exceptions.MlflowException, match="403"):
            client.log_metric(run_id, "loss", 0.5)


def test_credentials_file_needs_mlflow_header(guarded, tmp_path):
    server, settings, experiment_id, _ = guarded
    reader = auth.create_user(server.url, settings.admin, "file-reader", "READ", experiment_id)
    homes = {}
    for label, section in [("none", None), ("default", "default"), ("mlflow", "mlflow")]:
        homes[label] = tmp_path / f"home-{label}"
        auth.write_credentials_file(homes[label], reader, section=section)
    homes["environment"] = tmp_path / "home-environment"
    homes["environment"].mkdir()
    probes = clients.run_probes(server.url, experiment_id, homes)
    assert not probes["none"]["ok"]
    assert "MissingSectionHeaderError" in probes["none"]["error"]
    assert not probes["default"]["ok"]
    assert "401" in probes["default"]["error"]
    assert probes["mlflow"] == {"ok": True, "status": 200, "experiment": "secured"}
    assert not probes["environment"]["ok"], "a client without any credentials must be rejected"


def test_environment_credentials_sign_in(guarded, tmp_path):
    server, settings, experiment_id, _ = guarded
    reader = auth.create_user(server.url, settings.admin, "env-reader", "READ", experiment_id)
    probes = clients.run_probes(server.url, experiment_id, {"environment": tmp_path},
                                extra=reader.environment())
    assert probes["environment"] == {"ok": True, "status": 200, "experiment": "secured"}


def test_credentials_file_is_private(tmp_path):
    path = auth.write_credentials_file(tmp_path, auth.Credentials.generate("someone"))
    assert path == tmp_path / ".mlflow" / "credentials"
    assert path.stat().st_mode & 0o777 == 0o600


def test_server_without_admin_password_refuses(state, tmp_path):
    server = servers.tracking_server(
        f"sqlite:///{tmp_path}/mlflow.db", artifacts_destination=str(tmp_path / "artifacts"),
        app_name="basic-auth", name="mlflow-auth-refused",
        env={"MLFLOW_AUTH_ADMIN_PASSWORD": "", "MLFLOW_FLASK_SERVER_SECRET_KEY": auth.generate_secret()},
    )
    server.cwd = tmp_path
    with pytest.raises(servers.ServerError) as caught:
        server.start()
    assert "needs a password to create the admin user" in caught.value.log_tail
    assert servers.port_is_free(server.port)


def test_secrets_stay_out_of_repr_and_config_display(tmp_path):
    settings = auth.AuthSettings.generate(tmp_path)
    path = settings.write_config()
    assert settings.admin.password in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    shown = auth.show_config(path)
    assert settings.admin.password not in shown
    assert "admin_password = <generated, not shown>" in shown
    for text in (repr(settings), repr(settings.admin)):
        assert settings.admin.password not in text
        assert settings.secret_key not in text
    assert auth.SECRET_PATTERN.fullmatch(auth.generate_secret())


def test_write_config_rejects_unknown_permission(tmp_path):
    with pytest.raises(ValueError, match="default_permission"):
        auth.AuthSettings.generate(tmp_path).write_config(default_permission="ALL")


def test_no_generated_secret_in_committed_files():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split("\0")
    candidates = [REPO / name for name in tracked if name]
    candidates += sorted((REPO / "notebooks").rglob("*.ipynb"))
    leaks = []
    for path in set(candidates):
        if not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        if auth.SECRET_PATTERN.search(text):
            leaks.append(str(path.relative_to(REPO)))
    assert not leaks, f"generated secrets found: {leaks}"
