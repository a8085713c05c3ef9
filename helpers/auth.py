"""Basic auth for the course's MLflow servers: generated secrets, users, permissions, credentials.

Every password and key is generated at run time with the `secrets` module and
never printed: the dataclasses hide them from repr, and `show_config` masks
them. Generated secrets share one recognisable format (SECRET_PATTERN), so a
test can prove that none ever reaches a notebook output or a committed file.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import re
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from helpers.servers import ManagedServer, tracking_server
from helpers.store import environment_changed

logger = logging.getLogger(__name__)

SECRET_PREFIX = "mlc_"
# secrets.token_urlsafe(24) encodes 24 random bytes as 32 URL-safe characters.
SECRET_PATTERN = re.compile(r"mlc_[A-Za-z0-9_-]{32}")
SECRET_OPTIONS = ("admin_password", "mlflow_tracking_password")
# The settings basic auth applies to users; the strongest last.
PERMISSIONS = ("NO_PERMISSIONS", "READ", "USE", "EDIT", "MANAGE")


def generate_secret() -> str:
    """Return a new random secret (192 bits) in the course's recognisable format."""
    return SECRET_PREFIX + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Credentials:
    """A username and its password; the password never appears in repr."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def generate(cls, username: str) -> "Credentials":
        """Return credentials for `username` with a newly generated password."""
        return cls(username, generate_secret())

    def environment(self) -> dict[str, str]:
        """Return the two variables MLflow clients read their credentials from."""
        return {"MLFLOW_TRACKING_USERNAME": self.username, "MLFLOW_TRACKING_PASSWORD": self.password}


@dataclass(frozen=True)
class AuthSettings:
    """Server-side basic auth settings: admin credentials, Flask secret key, files in `folder`."""

    folder: Path
    admin: Credentials
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls, folder: Path, admin_username: str = "admin") -> "AuthSettings":
        """Return settings with a generated admin password and secret key; create `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder, Credentials.generate(admin_username), generate_secret())

    @property
    def config_path(self) -> Path:
        return self.folder / "basic_auth.ini"

    @property
    def users_database_uri(self) -> str:
        return f"sqlite:///{self.folder / 'basic_auth.db'}"

    def write_config(self, default_permission: str = "NO_PERMISSIONS") -> Path:
        """Write the server's auth configuration file and return its path.

        The file is readable by its owner only, because it contains the admin password.
        """
        if default_permission not in PERMISSIONS:
            raise ValueError(f"default_permission {default_permission!r} is invalid; "
                             f"choose one of {', '.join(PERMISSIONS)}")
        config = configparser.ConfigParser()
        config["mlflow"] = {
            "default_permission": default_permission,
            "database_uri": self.users_database_uri,
            "admin_username": self.admin.username,
            "admin_password": self.admin.password,
            "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        }
        _write_private(self.config_path, config)
        return self.config_path

    def server_environment(self) -> dict[str, str]:
        """Return what the auth server needs: the config path and the Flask secret key."""
        return {
            "MLFLOW_AUTH_CONFIG_PATH": str(self.config_path),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": self.secret_key,
        }


def _write_private(path: Path, config: configparser.ConfigParser) -> None:
    """Write an INI file readable by its owner only, created with that mode from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        config.write(handle)


def show_config(path: Path) -> str:
    """Return a configuration or credentials file's text with every secret value masked."""
    lines = []
    for line in Path(path).read_text().splitlines():
        key = line.split("=", 1)[0].strip().lower()
        if "=" in line and key in SECRET_OPTIONS:
            line = f"{line.split('=', 1)[0].rstrip()} = <generated, not shown>"
        lines.append(SECRET_PATTERN.sub("<generated, not shown>", line))
    return "\n".join(lines)


def auth_server(settings: AuthSettings, backend_store_uri: str, artifacts_destination: str,
                port: int | None = None) -> ManagedServer:
    """Return an unstarted `mlflow server --app-name basic-auth` configured by `settings`."""
    server = tracking_server(backend_store_uri, artifacts_destination=artifacts_destination,
                             app_name="basic-auth", port=port, name="mlflow-auth",
                             env=settings.server_environment())
    # The auth app writes relative paths (a default basic_auth.db) to its working folder.
    server.cwd = settings.folder
    return server


@contextlib.contextmanager
def signed_in(credentials: Credentials | None) -> Iterator[None]:
    """Make MLflow calls in this block use `credentials` (None: anonymous), then restore."""
    values = credentials.environment() if credentials is not None else {}
    with environment_changed(values, removed=("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")):
        yield


def auth_client(server_url: str):
    """Return MLflow's basic-auth client for `server_url` (`mlflow.server.get_app_client`).

    Importing mlflow.server warns about a Starlette deprecation inside MLflow
    3.17.2; the warning is hidden here because the course cannot act on it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mlflow.server import get_app_client

        return get_app_client("basic-auth", tracking_uri=server_url)


def create_user(server_url: str, admin: Credentials, username: str,
                permission: str | None = None, experiment_id: str | None = None) -> Credentials:
    """Create `username` with a generated password, optionally granting `permission` on an experiment."""
    user = Credentials.generate(username)
    with signed_in(admin):
        auth_client(server_url).create_user(user.username, user.password)
        if permission is not None:
            grant(server_url, admin, username, permission, experiment_id)
    logger.info("created user %s on %s", username, server_url)
    return user


def grant(server_url: str, admin: Credentials, username: str, permission: str,
          experiment_id: str) -> None:
    """Give `username` the `permission` (READ, EDIT, MANAGE, ...) on one experiment."""
    if permission not in PERMISSIONS:
        raise ValueError(f"permission {permission!r} is invalid; choose one of {', '.join(PERMISSIONS)}")
    with signed_in(admin):
        auth_client(server_url).grant_user_permission(username, "experiment", experiment_id, permission)


def write_credentials_file(home: Path, credentials: Credentials, section: str | None = "mlflow") -> Path:
    """Write `home`/.mlflow/credentials as MLflow clients read it; `section=None` leaves out the header.

    Only for a temporary HOME: this never touches the student's own ~/.mlflow.
    """
    path = Path(home) / ".mlflow" / "credentials"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [] if section is None else [f"[{section}]"]
    lines += [f"mlflow_tracking_username = {credentials.username}",
              f"mlflow_tracking_password = {credentials.password}"]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


# One request per action: read an experiment, log a metric to a run in it,
# and manage it (give another user a permission on it).
ACTIONS = ("read", "log", "manage")


def request_status(server_url: str, action: str, credentials: Credentials | None,
                   experiment_id: str, run_id: str, grantee: str | None = None) -> int:
    """Send the REST request for `action` as `credentials` (None: anonymous); return the HTTP status.

    `action` is one of ACTIONS: "read" the experiment, "log" a metric to `run_id`,
    or "manage" the experiment by granting `grantee` READ on it, which needs `grantee`.
    """
    if action == "manage" and grantee is None:
        raise ValueError("action 'manage' grants a permission to another user: pass grantee=USERNAME")
    auth = (credentials.username, credentials.password) if credentials else None
    if action == "read":
        response = requests.get(f"{server_url}/api/2.0/mlflow/experiments/get",
                                params={"experiment_id": experiment_id}, auth=auth, timeout=10)
    elif action == "log":
        body = {"run_id": run_id, "key": "probe", "value": 1.0, "timestamp": 0, "step": 0}
        response = requests.post(f"{server_url}/api/2.0/mlflow/runs/log-metric",
                                 json=body, auth=auth, timeout=10)
    elif action == "manage":
        body = {"username": grantee, "resource_type": "experiment", "resource_id": experiment_id}
        response = requests.post(f"{server_url}/api/3.0/mlflow/users/permissions/grant",
                                 json={**body, "permission": "READ"}, auth=auth, timeout=10)
        if response.ok:
            # Take the grant back, so the next principal's request finds the same state.
            requests.post(f"{server_url}/api/3.0/mlflow/users/permissions/revoke",
                          json=body, auth=auth, timeout=10).raise_for_status()
    else:
        raise ValueError(f"action {action!r} is invalid; choose one of {', '.join(ACTIONS)}")
    return response.status_code


def permission_matrix(server_url: str, principals: dict[str, Credentials | None],
                      experiment_id: str, run_id: str, grantee: str) -> dict[str, dict[str, int]]:
    """Return {principal: {action: HTTP status}} for every principal and action."""
    return {
        name: {action: request_status(server_url, action, credentials, experiment_id, run_id, grantee)
               for action in ACTIONS}
        for name, credentials in principals.items()
    }


# Statuses that basic auth returns in MLflow 3.17.2 with default_permission NO_PERMISSIONS:
# 401 without credentials, 403 for an action the user's permission does not cover.
EXPECTED_MATRIX = {
    "anonymous": {"read": 401, "log": 401, "manage": 401},
    "READ": {"read": 200, "log": 403, "manage": 403},
    "EDIT": {"read": 200, "log": 200, "manage": 403},
    "MANAGE": {"read": 200, "log": 200, "manage": 200},
    "admin": {"read": 200, "log": 200, "manage": 200},
}
