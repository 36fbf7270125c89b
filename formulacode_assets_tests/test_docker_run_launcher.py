"""Each run in its own container: the Docker run launcher against Postgres and an S3 endpoint.

The repository's ``Dockerfile`` is built on the local Debian base (no Docker Hub here) with the
host's CA bundle in ``deploy/extra-ca/`` (TLS-intercepting proxies). A code server reports that
image (``DAGSTER_CURRENT_IMAGE``); the webserver queues a one-partition run through GraphQL; the
daemon launches it with ``ForwardingDockerRunLauncher`` in a container on the host network, which
reaches the same Postgres and ``moto_server`` and writes the parquet into the bucket.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

import pytest

from formulacode_assets.storage.remote_catalog import open_catalog
from formulacode_assets_tests.deploy_fixtures import BIN, ROOT, Deployment, graphql, write_instance
from formulacode_assets_tests.docker_fixtures import BASE_IMAGE, docker_host, host_ca_bundle  # noqa: F401
from formulacode_assets_tests.service_fixtures import free_port, moto_s3, postgres  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PARTITION = "2024-02-01"
ASSETS = ["repos_discovered", "repos_valid"]

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN = """
query Run($id: ID!) {
  runOrError(runId: $id) { ... on Run { status tags { key value } } }
}
"""


def _context_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    return sorted(f for f in listed.stdout.splitlines() if (ROOT / f).is_file())


@pytest.fixture(scope="module")
def image(docker_host, tmp_path_factory):  # noqa: F811
    """The repository's image on the local base, tagged by its inputs (rebuilt only when they change)."""
    import docker

    files = _context_files()
    digest = hashlib.sha256(BASE_IMAGE.encode())
    for name in files:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    tag = f"formulacode-assets:test-{digest.hexdigest()[:12]}"
    client = docker.DockerClient(base_url=docker_host, version="auto", timeout=1500)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context = tmp_path_factory.mktemp("image-context")
    for name in files:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    bundle = host_ca_bundle()
    if bundle:
        shutil.copy(bundle, context / "deploy" / "extra-ca" / "host.crt")
    started = time.monotonic()
    try:
        client.images.build(
            path=str(context), tag=tag, buildargs={"BASE_IMAGE": BASE_IMAGE}, network_mode="host", rm=True
        )
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream", chunk)) for chunk in exc.build_log)
        pytest.fail(f"image build failed: {log[-3000:]}")
    print(f"image {tag} built in {time.monotonic() - started:.0f} s")
    return tag


def test_one_partition_runs_in_its_own_container(tmp_path, docker_host, image, postgres, moto_s3):  # noqa: F811
    pg = postgres.create_database("docker_launcher")
    moto_s3.client().create_bucket(Bucket="fc-launcher")
    home = tmp_path / "dagster_home"
    write_instance(
        home,
        run_launcher={
            "module": "formulacode_assets.deploy.run_launcher",
            "class": "ForwardingDockerRunLauncher",
            "config": {
                "network": "host",
                "env_vars": sorted(pg.env()),
                "env_var_prefixes": ["FORMULACODE_", "AWS_"],
            },
        },
    )
    port = free_port()
    (tmp_path / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n"
        "      location_name: formulacode_assets\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FORMULACODE_", "DAGSTER_", "AWS_"))},
        **pg.env(),
        **moto_s3.env(),
        "DAGSTER_HOME": str(home),
        "DOCKER_HOST": docker_host,
        "DAGSTER_CURRENT_IMAGE": image,
        # Inside the run's container: the bucket, and a cache of its own.
        "FORMULACODE_DATA_DIR": "s3://fc-launcher/data",
        "FORMULACODE_CACHE_DIR": "/tmp/formulacode-cache",
    }
    code_log = open(tmp_path / "code-server.log", "wb")  # noqa: SIM115
    code_server = subprocess.Popen(
        [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port)]
        + ["-m", "formulacode_assets.definitions", "-d", "/opt/formulacode"],
        cwd=tmp_path,
        env=env,
        stdout=code_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deployment = Deployment(env, tmp_path / "workspace.yaml", tmp_path / "logs")
    deployment.processes.append(code_server)
    try:
        deployment.start()
        deployment.wait_for_assets()
        launched = graphql(
            deployment.port,
            LAUNCH_RUN,
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": "formulacode_assets",
                        "repositoryName": "__repository__",
                        "jobName": "__ASSET_JOB",
                        "assetSelection": [{"path": [a]} for a in ASSETS],
                    },
                    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PARTITION}]},
                }
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        deadline, run = time.monotonic() + 600, None
        while time.monotonic() < deadline:
            run = graphql(deployment.port, RUN, {"id": run_id})["runOrError"]
            if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
                break
            time.sleep(2)
        assert run and run["status"] == "SUCCESS", f"{run}\n{deployment.log_tail()}"
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags.get("dagster/image") == image
        container_id = tags["docker/container_id"]
    finally:
        deployment.stop()

    import docker

    client = docker.DockerClient(base_url=docker_host, version="auto")
    container = client.containers.get(container_id)
    try:
        assert container.attrs["Config"]["Image"] == image
        env_names = {e.split("=", 1)[0] for e in container.attrs["Config"]["Env"]}
        assert {"DAGSTER_POSTGRES_HOST", "FORMULACODE_DATA_DIR", "AWS_ENDPOINT_URL"} <= env_names
    finally:
        container.remove(force=True)

    keys = {o["Key"] for o in moto_s3.client().list_objects_v2(Bucket="fc-launcher")["Contents"]}
    assert {f"data/{a}/2024-02.parquet" for a in ASSETS} <= keys
    old = {k: os.environ.get(k) for k in moto_s3.env()}
    os.environ.update(moto_s3.env())
    try:
        con = open_catalog("s3://fc-launcher/data")
        statuses = dict(con.sql("select status, count(*) from repos_valid group by all").fetchall())
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert statuses.get("ok", 0) >= 3
