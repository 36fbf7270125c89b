"""The deployment files: compose validates, the instance configurations load, settings reach runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.run_coordinator import QueuedRunCoordinator

from formulacode_assets.deploy import init as deploy_init
from formulacode_assets.deploy.run_launcher import ForwardingDockerRunLauncher, forwarded_names
from formulacode_assets_tests.service_fixtures import moto_s3, postgres  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) when present, else Debian's `docker-compose` (v1)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _compose_config(env_overrides: dict[str, str]) -> dict:
    command = _compose_command()
    if command is None:
        pytest.skip("no compose binary (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORMULACODE_", "POSTGRES_", "MINIO_"))}
    env.update({"FORMULACODE_ENV_FILE": str(ROOT / "deploy" / "formulacode.env.example"), **env_overrides})
    proc = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return yaml.safe_load(proc.stdout)


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_compose_config_validates_with_images_from_variables(tmp_path):
    env_file = tmp_path / "site.env"
    env_file.write_text(
        "FORMULACODE_SOURCE=github\nGH_TOKENS=ghp_example\nDSPY_MODEL_NAME=m\nDOCKERHUB_USERNAME=u\n"
        "AWS_ENDPOINT_URL=http://s3.site:9000\nFORMULACODE_NEW_SETTING=x\n"
    )
    config = _compose_config(
        {
            "FORMULACODE_ENV_FILE": str(env_file),
            "FORMULACODE_IMAGE": "registry.site/formulacode:1",
            "POSTGRES_IMAGE": "registry.site/postgres:15",
            "MINIO_IMAGE": "registry.site/minio:1",
        }
    )
    services = config["services"]
    assert set(services) == {"postgres", "minio", "init", "user_code", "webserver", "daemon"}
    assert services["postgres"]["image"] == "registry.site/postgres:15"
    assert services["minio"]["image"] == "registry.site/minio:1"
    for name in ("init", "user_code", "webserver", "daemon"):
        assert services[name]["image"] == "registry.site/formulacode:1"
    assert "healthcheck" in services["postgres"]
    assert services["daemon"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    code_env = _environment(services["user_code"])
    assert code_env["DAGSTER_CURRENT_IMAGE"] == "registry.site/formulacode:1"
    # The env file reaches the code server and the daemon (which forwards it to every run)...
    for name in ("user_code", "daemon", "webserver"):
        env = _environment(services[name])
        assert env["GH_TOKENS"] == "ghp_example"
        assert env["DSPY_MODEL_NAME"] == "m"
        assert env["DOCKERHUB_USERNAME"] == "u"
        assert env["FORMULACODE_NEW_SETTING"] == "x"
        # ...and overrides the defaults file.
        assert env["AWS_ENDPOINT_URL"] == "http://s3.site:9000"
        assert env["FORMULACODE_SOURCE"] == "github"
        assert env["FORMULACODE_DATA_DIR"] == "s3://formulacode/data"
    assert config["networks"]["formulacode"]["name"] == "formulacode"


def test_compose_defaults_are_public_images():
    services = _compose_config({})["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["user_code"]["build"]["args"]["BASE_IMAGE"].startswith("python:3.11")


def test_the_run_launcher_forwards_set_settings_by_prefix():
    environ = {
        "FORMULACODE_SOURCE": "github",
        "GH_TOKENS": "t",
        "DSPY_API_KEY": "k",
        "DOCKERHUB_TOKEN": "d",
        "AWS_REGION": "eu-west-1",
        "HOME": "/root",
        "DAGSTER_POSTGRES_HOST": "postgres",
    }
    names = forwarded_names(environ, ("FORMULACODE_", "GH_", "DSPY_", "DOCKERHUB_", "AWS_"), ["DAGSTER_POSTGRES_HOST"])
    assert names == [
        "DAGSTER_POSTGRES_HOST",
        "AWS_REGION",
        "DOCKERHUB_TOKEN",
        "DSPY_API_KEY",
        "FORMULACODE_SOURCE",
        "GH_TOKENS",
    ]


def _instance_env(monkeypatch, home: Path, instance_file: Path, pg) -> None:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(instance_file, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in pg.env().items():
        monkeypatch.setenv(key, value)


@pytest.mark.slow
def test_compose_instance_loads_against_postgres(tmp_path, monkeypatch, postgres, moto_s3):  # noqa: F811
    pg = postgres.create_database("compose_instance")
    _instance_env(monkeypatch, tmp_path / "home", ROOT / "deploy" / "dagster.yaml", pg)
    monkeypatch.setenv("GH_TOKENS", "ghp_forwarded")
    monkeypatch.setenv("FORMULACODE_SOURCE", "github")
    for key, value in moto_s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FORMULACODE_DATA_DIR", "s3://compose-bucket/data")
    monkeypatch.setenv("FORMULACODE_POOL_LIMITS", "github=2,llm=4,docker_build=1,registry_push=3")
    deploy_init.main()
    assert "compose-bucket" in {b["Name"] for b in moto_s3.client().list_buckets()["Buckets"]}
    deploy_init.main()  # idempotent
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        launcher = instance.run_launcher
        assert isinstance(launcher, ForwardingDockerRunLauncher)
        assert launcher.networks == ["formulacode"]
        assert "formulacode_cache:/srv/formulacode" in launcher.container_kwargs["volumes"]
        assert {"DAGSTER_POSTGRES_HOST", "GH_TOKENS", "FORMULACODE_SOURCE", "AWS_ENDPOINT_URL"} <= set(
            launcher.env_vars
        )
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert [(limit["key"], limit["limit"]) for limit in queue.tag_concurrency_limits] == [("dagster/backfill", 3)]
        limits = {
            key: instance.event_log_storage.get_concurrency_info(key).slot_count
            for key in ("github", "llm", "docker_build", "registry_push")
        }
        assert limits == {"github": 2, "llm": 4, "docker_build": 1, "registry_push": 3}


@pytest.mark.slow
def test_ecs_instance_loads_with_s3_logs(tmp_path, monkeypatch, postgres, moto_s3):  # noqa: F811
    pg = postgres.create_database("ecs_instance")
    _instance_env(monkeypatch, tmp_path / "home", ROOT / "deploy" / "ecs" / "dagster.yaml", pg)
    for key, value in moto_s3.env().items():
        monkeypatch.setenv(key, value)
    moto_s3.client().create_bucket(Bucket="fc-logs")
    task = moto_s3.client("ecs").register_task_definition(
        family="formulacode-run",
        containerDefinitions=[{"name": "run", "image": "registry.site/formulacode:1", "memory": 512}],
    )
    monkeypatch.setenv("FORMULACODE_ECS_TASK_DEFINITION", "formulacode-run")
    monkeypatch.setenv("FORMULACODE_LOG_BUCKET", "fc-logs")
    with DagsterInstance.get() as instance:
        from dagster_aws.ecs import EcsRunLauncher
        from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

        launcher = instance.run_launcher
        assert isinstance(launcher, EcsRunLauncher)
        assert launcher.task_definition == task["taskDefinition"]["taskDefinitionArn"]
        assert launcher.container_name == "run"
        assert launcher.secrets_tags == ["formulacode"]
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
