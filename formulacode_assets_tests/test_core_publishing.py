"""core/publishing units: deterministic build contexts, task ids, decontamination, registry clients
(Docker Hub-shaped loopback server, ECR API on moto_server)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import time
from datetime import UTC, datetime

import boto3
import pytest

from formulacode_assets.core.publishing.build_context import ImageRecipe, render_build_context
from formulacode_assets.core.publishing.image_names import image_name_for
from formulacode_assets.core.publishing.registries import DockerHubRegistry, EcrRegistry, Registry, RegistryError
from formulacode_assets.core.publishing.tasks import decontamination_problems, task_id_of, task_rows
from formulacode_assets.resources.publishing import RegistryResource
from formulacode_assets_tests.registry_servers import hub_server, moto_ecr  # noqa: F401 - fixtures


def _recipe(sha: str, **changes) -> ImageRecipe:
    fields = dict(
        repo_name="o/r",
        base_sha=sha,
        branch="main",
        build_env_sh="#!/usr/bin/env bash\necho build\n",
        asv_conf_path="asv.conf.json",
        exclude_newer="2024-01-10T12:00:00Z",
        benchmarks=("bench.time_a", "bench.Suite.time_b"),
        toolchain="fc-toolchain:abc",
    )
    return ImageRecipe(**{**fields, **changes})


def test_build_context_tar_is_deterministic_and_holds_a_working_shallow_repository(repo, tmp_path):
    repo.commit("first", {"a.py": "print(1)\n", "pkg/b.py": "x = 2\n"}, date="2024-01-01T00:00:00Z")
    sha = repo.commit("second", {"pkg/c.sh": "echo hi\n"}, date="2024-01-02T00:00:00Z")
    mirror = repo.path / ".git"
    first = render_build_context(_recipe(sha), mirror)
    time.sleep(1.1)  # a later render (different clock) still gives the same bytes
    assert render_build_context(_recipe(sha), mirror) == first
    assert render_build_context(_recipe(sha, build_env_sh="echo other\n"), mirror) != first

    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == sorted(m.name for m in members)
        assert {(m.mtime, m.uid, m.gid) for m in members} == {(0, 0, 0)}
        dockerfile = tar.extractfile("Dockerfile").read().decode()
        tar.extractall(tmp_path / "ctx", filter="data")
    assert "FROM fc-toolchain:abc AS repository" in dockerfile and "AS final" in dockerfile
    assert 'org.formulacode.benchmarks="[\\"bench.time_a\\", \\"bench.Suite.time_b\\"]"' in dockerfile
    checkout = tmp_path / "ctx" / "repo"
    git = lambda *args: subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, check=True).stdout  # noqa: E731
    git("reset", "--quiet")
    assert git("rev-parse", "HEAD").strip() == sha and git("status", "--short") == ""
    assert git("rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert (checkout / "pkg" / "c.sh").read_text() == "echo hi\n"
    git("fsck", "--no-dangling")


def test_task_ids_are_readable_and_stable_and_rows_without_an_image_stay_out():
    assert task_id_of("sample-org/fastmath", 12, "a" * 40) == "sample-org__fastmath-12"
    assert task_id_of("sample-org/fastmath", None, "abcdef0123" + "0" * 30) == "sample-org__fastmath-abcdef01"
    merged = datetime(2024, 2, 3, tzinfo=UTC)
    contexts = [
        {"repo_name": "o/r", "base_sha": "b1", "status": "ok", "merge_commit_shas": ["m1", "m2"]},
        {"repo_name": "o/s", "base_sha": "b2", "status": "ok", "merge_commit_shas": ["m3"]},
        {"repo_name": "o/t", "base_sha": "b3", "status": "failed", "reason": "build", "merge_commit_shas": ["m4"]},
    ]
    images = [
        {"repo_name": "o/r", "base_sha": "b1", "status": "pushed", "image_name": "ns/all:x", "digest": "sha256:1"},
        {"repo_name": "o/s", "base_sha": "b2", "status": "not_built", "reason": "no engine", "image_name": "ns/all:y"},
    ]
    perf = [
        {"repo_name": "o/r", "merge_commit_sha": "m1", "is_performance": True, "pr_number": 7, "merged_at": merged},
        {"repo_name": "o/r", "merge_commit_sha": "m2", "is_performance": True, "pr_number": 7, "merged_at": merged},
        {"repo_name": "o/s", "merge_commit_sha": "m3", "is_performance": True, "pr_number": 8, "merged_at": merged},
    ]
    tasks, excluded = task_rows("2024-02-01", images, contexts, perf)
    assert [t["task_id"] for t in tasks] == ["o__r-7-m1", "o__r-7-m2"]  # one PR landed twice: told apart
    assert {t["image_name"] for t in tasks} == {"ns/all:x"}
    assert sorted((e["merge_commit"], e["reason"]) for e in excluded) == [
        ("m3", "image not_built: no engine"),
        ("m4", "context failed: build"),
    ]
    assert task_rows("2024-02-01", images, contexts, perf)[0] == tasks


def test_decontamination_fails_on_a_row_merged_outside_its_month_and_on_an_id_in_two_months():
    feb = (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    inside = {"task_id": "o__r-1", "merged_at": datetime(2024, 2, 29, 23, 59, tzinfo=UTC)}
    assert decontamination_problems({"2024-02-01": [inside]}, {"2024-02-01": feb}) == []
    late = {"task_id": "o__r-2", "merged_at": datetime(2024, 3, 1, tzinfo=UTC)}
    (problem,) = decontamination_problems({"2024-02-01": [inside, late]}, {"2024-02-01": feb})
    assert problem.startswith("o__r-2: merged_at 2024-03-01") and "outside 2024-02-01" in problem
    (again,) = decontamination_problems({"2024-02-01": [inside]}, {"2024-02-01": feb}, {"o__r-1": "2024-01-01"})
    assert again == "o__r-1: also a task of 2024-01-01"


def test_docker_hub_lookup_waits_out_a_429_with_retry_after(hub_server):  # noqa: F811
    url, script = hub_server
    image = image_name_for("Sample-Org/FastMath", "a" * 40, namespace="formulacode")
    script.tags[f"{image.path}:{image.tag}"] = "sha256:" + hashlib.sha256(b"m").hexdigest()
    script.rate_limited, script.retry_after = 1, 1.5
    hub = DockerHubRegistry(url=url, namespace="formulacode", username=script.username, password=script.token)
    assert hub.image_namespace == "formulacode" and image.registry_host is None
    assert hub.manifest_digest(image) == script.tags[f"{image.path}:{image.tag}"]
    manifests = [r for r in script.requests if "/manifests/" in r["path"]]
    # Basic -> 401 Bearer challenge, token fetched with the user's credentials, 429, then 200
    assert [r["auth"].split(" ")[0] for r in manifests] == ["Basic", "Bearer", "Bearer"]
    assert any(r["path"].startswith("/token") for r in script.requests)
    assert manifests[2]["at"] - manifests[1]["at"] >= 1.5 and hub.waits == [1.5]
    missing = image_name_for("sample-org/fastmath", "b" * 40, namespace="formulacode")
    assert hub.manifest_digest(missing) is None


def test_a_registry_that_keeps_failing_raises_naming_the_image(hub_server):  # noqa: F811
    url, script = hub_server
    script.rate_limited, script.retry_after = 10, 0
    hub = Registry(url=url, namespace="ns", username=script.username, password=script.token, max_retries=2)
    image = image_name_for("o/r", "c" * 40, namespace=hub.image_namespace)
    with pytest.raises(RegistryError, match=image.tag):
        hub.manifest_digest(image)


def test_ecr_creates_the_repository_once_and_logs_in_again_after_a_401(
    moto_ecr,  # noqa: F811
    hub_server,  # noqa: F811
    monkeypatch,
):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    url, script = hub_server  # the registry side of ECR (moto has only the API): Basic auth
    script.auth, script.unauthorized = "basic", 1
    resource = RegistryResource(kind="ecr", aws_region="us-east-1", ecr_endpoint_url=moto_ecr, url=url)
    ecr = resource.registry()
    assert isinstance(ecr, EcrRegistry) and ecr.logins == 1
    first = image_name_for("o/r", "d" * 40, namespace=ecr.image_namespace)
    second = image_name_for("o/s", "e" * 40, namespace=ecr.image_namespace)
    ecr.prepare(first)
    ecr.prepare(second)  # the single layout: one repository for both
    assert ecr.repositories_created == ["formulacode/all"] and first.path == "formulacode/all"
    client = boto3.client("ecr", region_name="us-east-1", endpoint_url=moto_ecr)
    assert [r["repositoryName"] for r in client.describe_repositories()["repositories"]] == ["formulacode/all"]
    again = resource.registry()  # a later run finds the repository
    again.prepare(first)
    assert again.repositories_created == []

    script.tags[f"{first.path}:{first.tag}"] = "sha256:" + "1" * 64
    assert ecr.manifest_digest(first) == "sha256:" + "1" * 64
    assert ecr.logins == 2  # the expired token was renewed once
    assert [r["auth"].startswith("Basic ") for r in script.requests] == [True, True]


def test_dataset_folder_has_default_monthly_and_verified_configs(tmp_path):
    import datasets

    from formulacode_assets.core.contracts import TASKS
    from formulacode_assets.core.publishing.dataset import VERIFIED_FILE, write_dataset

    def task(task_id: str, month: int, category: str) -> dict:
        return {
            "month": f"2024-{month:02d}-01",
            "task_id": task_id,
            "repo_name": "o/r",
            "base_commit": "b" * 40,
            "merge_commit": "m" * 40,
            "merged_at": datetime(2024, month, 5, tzinfo=UTC),
            "category": category,
            "image_name": f"ns/all:{task_id}",
            "benchmarks": ["bench.time_a"],
            "status": "ok",
        }

    months = {
        "2024-01-01": TASKS.to_table([task("o__r-1", 1, "algorithm")]),
        "2024-02-01": TASKS.to_table([task("o__r-2", 2, "caching"), task("o__r-3", 2, "algorithm")]),
    }
    folder = tmp_path / "dataset"
    written = write_dataset(folder, months, TASKS.schema)
    assert written.months == {"2024-01": 1, "2024-02": 2} and sum(written.verified.values()) == 0
    assert (folder / VERIFIED_FILE).read_text().startswith("#")
    (folder / VERIFIED_FILE).write_text((folder / VERIFIED_FILE).read_text() + "o__r-3\n")
    written = write_dataset(folder, months, TASKS.schema)
    assert written.verified == {"2024-01": 0, "2024-02": 1}
    card = (folder / "README.md").read_text()
    assert "| algorithm | 2 |" in card and "| o/r | 3 |" in card and "| 2024-01 | 1 |" in card
    assert datasets.load_dataset(str(folder), "2024-01", split="test")["task_id"] == ["o__r-1"]
    assert sorted(datasets.load_dataset(str(folder), "default", split="test")["task_id"]) == [
        "o__r-1",
        "o__r-2",
        "o__r-3",
    ]
    assert datasets.load_dataset(str(folder), "verified", split="test")["task_id"] == ["o__r-3"]


def test_publishing_settings_follow_the_upstream_variable_names(tmp_path):
    from dagster import EnvVar

    from formulacode_assets.resources import build_resources

    environ = {
        "FORMULACODE_DATA_DIR": str(tmp_path),
        "DOCKERHUB_NAMESPACE": "formulacode",
        "DOCKERHUB_USERNAME": "me",
        "DOCKERHUB_TOKEN": "secret",
        "DOCKERHUB_RATE_LIMIT_WAIT": "5",
        "PUSH_CONCURRENCY": "3",
        "BUILD_CONCURRENCY": "2",
        "FORMULACODE_IMAGE_LAYOUT": "mirror",
    }
    resources = build_resources(environ)
    registry, publishing = resources["registry"], resources["publishing"]
    assert registry.kind == "dockerhub" and registry.rate_limit_wait_s == 5
    assert isinstance(registry.password, EnvVar) and registry.password.env_var_name == "DOCKERHUB_TOKEN"
    assert (publishing.layout, publishing.push_concurrency, publishing.build_concurrency) == ("mirror", 3, 2)
    assert build_resources({})["registry"].kind == "none"
    hub = RegistryResource(kind="dockerhub", namespace="formulacode", username="me", password="secret").registry()
    assert "secret" not in hub.describe() and hub.image_namespace == "formulacode"
