"""Real services on 127.0.0.1 for the deployment tests: PostgreSQL and an S3 endpoint (moto).

PostgreSQL is Debian's server (``apt-get install postgresql``), run as the ``postgres`` user (its
binaries refuse root) in a throw-away data directory on a free port; ``moto_server`` serves S3, ECR
and ECS. Both are stopped by PID at the end of the session. Tests that need a missing one skip,
saying why.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    db: str

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_POSTGRES_HOST": self.host,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_USER": self.user,
            "DAGSTER_POSTGRES_PASSWORD": "unused-trust-auth",
            "DAGSTER_POSTGRES_DB": self.db,
        }

    def create_database(self, name: str) -> Postgres:
        """A fresh database on the same server (tests that need an empty instance)."""
        bindir = _postgres_bin()
        subprocess.run(
            [str(bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return Postgres(self.host, self.port, self.user, name)


@pytest.fixture(scope="session")
def postgres():
    bindir = _postgres_bin()
    if bindir is None or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    if os.geteuid() != 0:
        pytest.skip("starting PostgreSQL as the postgres user needs root")
    root = Path(tempfile.mkdtemp(prefix="fc-postgres-"))
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    port = free_port()

    def as_postgres(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=timeout
        )

    init = as_postgres(str(bindir / "initdb"), "-D", str(data), "-U", "dagster", "--auth=trust", "-E", "UTF8")
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr[-500:]}")
    start = as_postgres(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-o",
        f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200",
        "-w",
        "-t",
        "120",
        "start",
    )
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-500:]}")
    server = Postgres("127.0.0.1", port, "dagster", "postgres")
    try:
        yield server.create_database("dagster")
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class S3Endpoint:
    url: str

    def env(self) -> dict[str, str]:
        """What boto3, s3fs and the pipeline need to use this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self, service: str = "s3"):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )


@pytest.fixture(scope="session")
def moto_s3():
    moto = BIN / "moto_server"
    if not moto.exists():
        pytest.skip("moto_server not installed (the dev dependency moto[server])")
    port = free_port()
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.skip("moto_server did not start")
            time.sleep(0.2)
    try:
        yield S3Endpoint(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
