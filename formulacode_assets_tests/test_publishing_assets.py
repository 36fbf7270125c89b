"""Stage tests for ``images``, ``tasks`` and ``dataset``: materialize() on the sample store.

The month's contexts are validated once per module (local validator, as CI allows for the sample
store); each test copies that data folder and materializes the publishing stage over it, with no
engine, or with the shared Docker engine and a loopback docker-registry.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from formulacode_assets.assets.contexts import contexts
from formulacode_assets.assets.dataset import dataset
from formulacode_assets.assets.images import images, images_exist
from formulacode_assets.assets.perf_commits import perf_commits
from formulacode_assets.assets.tasks import tasks
from formulacode_assets.core.contracts import IMAGES
from formulacode_assets.core.publishing.image_names import image_name_for
from formulacode_assets.resources.publishing import PublishingResource, RegistryResource
from formulacode_assets_tests.docker_fixtures import BASE_IMAGE, docker_host, host_ca_bundle  # noqa: F401
from formulacode_assets_tests.registry_servers import loopback_registry  # noqa: F401
from formulacode_assets_tests.test_contexts_asset import _resources, mining_assets

MONTH = "2024-02-01"
PUBLISHING = [images, tasks, dataset]


@pytest.fixture(scope="module")
def validated_month(tmp_path_factory) -> Path:
    """A folder with cache/ and data/ holding the sample store's 2024-02 graph up to ``contexts``."""
    root = tmp_path_factory.mktemp("validated")
    result = materialize(
        [*mining_assets(), perf_commits, contexts],
        partition_key=MONTH,
        resources=_resources(root),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    rows = pq.read_table(root / "data" / "contexts" / "2024-02.parquet").to_pylist()
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    return root


def _copy(validated: Path, tmp_path: Path) -> Path:
    shutil.copytree(validated / "data", tmp_path / "data")
    (tmp_path / "cache").symlink_to(validated / "cache")  # mirrors and caches: only read here
    return tmp_path


def _publish(root: Path, *, docker: dict | None = None, registry: dict | None = None, raise_on_error=True):
    resources = _resources(root, docker=docker)
    resources["registry"] = RegistryResource(**(registry or {}))
    resources["publishing"] = PublishingResource(data_dir=str(root / "data"))
    return materialize(
        [*mining_assets(), perf_commits, contexts, *PUBLISHING, images_exist],
        selection=[AssetKey("images"), AssetKey("tasks"), AssetKey("dataset")],
        partition_key=MONTH,
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def _table(root: Path, name: str) -> list[dict]:
    table = pq.read_table(root / "data" / name / "2024-02.parquet")
    return sorted(table.to_pylist(), key=lambda r: r.get("repo_name") or "")


def _metadata(result, name: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == name]
    return event.materialization.metadata


def test_without_an_engine_images_are_not_built_with_saved_contexts_and_tasks_are_empty(validated_month, tmp_path):
    root = _copy(validated_month, tmp_path)
    result = _publish(root)
    assert result.success
    rows = _table(root, "images")
    written = pq.read_table(root / "data" / "images" / "2024-02.parquet")
    assert written.schema.equals(IMAGES.schema, check_metadata=False)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"not_built"}
    assert all("unreachable" in r["reason"] and not r["built"] and r["digest"] is None for r in rows)
    for row in rows:
        assert row["image_name"] == image_name_for(row["repo_name"], row["base_sha"], namespace="formulacode").reference
        saved = Path(row["build_context_path"])
        assert saved.is_relative_to(root / "data" / "build_contexts" / "2024-02")
        assert "sha256:" + hashlib.sha256(saved.read_bytes()).hexdigest() == row["build_context_sha256"]
    assert _metadata(result, "images")["builds"].value == 0

    assert _table(root, "tasks") == []
    task_meta = _metadata(result, "tasks")
    assert "image not_built" in task_meta["why_empty"].value and "unreachable" in task_meta["why_empty"].value
    assert len(task_meta["excluded"].value) == 3
    (summary,) = _table(root, "dataset")
    assert (summary["status"], summary["n_tasks"]) == ("skipped", 0) and "HF_TOKEN" in summary["reason"]
    assert (root / "data" / "hf_dataset" / "README.md").exists()

    # Same inputs, same build-context bytes.
    again = _publish(root)
    assert again.success
    assert [r["build_context_sha256"] for r in _table(root, "images")] == [r["build_context_sha256"] for r in rows]


def _engine(docker_host: str) -> dict:  # noqa: F811 - the fixture's value
    return {"base_url": docker_host, "base_image": BASE_IMAGE, "extra_ca_certs": host_ca_bundle()}


def _remove_images(docker_host: str, root: Path) -> None:  # noqa: F811
    """The test's images are not left in the shared engine (their layers stay cached)."""
    import contextlib

    import docker

    if not (root / "data" / "images" / "2024-02.parquet").exists():
        return
    client = docker.DockerClient(base_url=docker_host, version="auto")
    try:
        for row in _table(root, "images"):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(row["image_name"], force=True)
    finally:
        client.close()


def _check_images_exist(root: Path, registry: dict):
    resources = _resources(root)
    resources["registry"] = RegistryResource(**registry)
    resources["publishing"] = PublishingResource(data_dir=str(root / "data"))
    result = materialize(
        [*mining_assets(), perf_commits, contexts, *PUBLISHING, images_exist],
        selection=AssetSelection.checks(images_exist),
        # A check-only run names its month by tag: ``partition_key`` looks for a partitioned asset.
        tags={"dagster/partition": MONTH},
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.partition == MONTH  # the month's own result
    return evaluation


def test_sample_contexts_are_built_and_pushed_and_a_rerun_builds_nothing(
    validated_month,
    tmp_path,
    docker_host,  # noqa: F811
    loopback_registry,  # noqa: F811
    request,
):
    root = _copy(validated_month, tmp_path)
    request.addfinalizer(lambda: _remove_images(docker_host, root))
    registry = {"kind": "oci", "url": loopback_registry.url, "namespace": f"fc-{tmp_path.name[-12:].lower()}"}
    namespace = f"{loopback_registry.host}/{registry['namespace']}"
    first = _publish(root, docker=_engine(docker_host), registry=registry)
    assert first.success
    rows = _table(root, "images")
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "pushed", (row["repo_name"], row["reason"], row["build_log_tail"])
        assert row["built"] and row["digest"].startswith("sha256:") and row["size_bytes"] > 0
        assert row["image_name"] == image_name_for(row["repo_name"], row["base_sha"], namespace=namespace).reference
        assert row["n_benchmarks"] >= 1
    assert _metadata(first, "images")["builds"].value == 3

    tasks_first = _table(root, "tasks")
    assert sorted(t["image_name"] for t in tasks_first) == sorted(r["image_name"] for r in rows)
    image_of = {r["image_name"]: r for r in rows}
    for task in tasks_first:
        image = image_of[task["image_name"]]
        owner, name = task["repo_name"].split("/")
        assert task["task_id"].startswith(f"{owner}__{name}-") and task["base_commit"] == image["base_sha"]
        assert task["benchmarks"] == image["benchmarks"] and task["image_digest"] == image["digest"]
        assert task["patch"] and task["merged_at"].strftime("%Y-%m") == "2024-02"
    checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations() if c.asset_key.path[-1] == "tasks"}
    assert checks == {
        "unique_keys": True,
        "contract": True,
        "failure_rate": True,
        "merged_at_in_window": True,
        "decontamination": True,
    }

    # The dataset folder loads as a Hugging Face dataset, by month and whole.
    import datasets

    folder = root / "data" / "hf_dataset"
    month = datasets.load_dataset(str(folder), "2024-02", split="test")
    everything = datasets.load_dataset(str(folder), "default", split="test")
    assert sorted(month["task_id"]) == sorted(t["task_id"] for t in tasks_first)
    assert sorted(everything["task_id"]) == sorted(month["task_id"])
    card = (folder / "README.md").read_text()
    assert 'config_name: "verified"' in card and "| 2024-02 | 3 |" in card

    # Re-running the month asks the registry first: no build call, the same digests.
    again = _publish(root, docker=_engine(docker_host), registry=registry)
    assert again.success
    rerun = _table(root, "images")
    assert {r["status"] for r in rerun} == {"exists"} and not any(r["built"] for r in rerun)
    assert [r["digest"] for r in rerun] == [r["digest"] for r in rows]
    assert _metadata(again, "images")["builds"].value == 0
    assert [t["task_id"] for t in _table(root, "tasks")] == [t["task_id"] for t in tasks_first]

    # The existence check passes, then fails naming a tag deleted from the registry.
    assert _check_images_exist(root, registry).passed
    victim = rows[0]
    repository, _, tag = victim["image_name"].rpartition(":")
    loopback_registry.delete_tag(repository.split("/", 1)[1], tag)
    evaluation = _check_images_exist(root, registry)
    assert not evaluation.passed
    missing = evaluation.metadata["missing"].value
    assert [m["image_name"] for m in missing] == [victim["image_name"]]
    assert victim["image_name"] in evaluation.description


def test_decontamination_blocks_a_task_merged_outside_its_month(validated_month, tmp_path):
    """Images stand in as built (no engine needed); one change's merged_at is moved into March."""
    from datetime import timedelta

    import pyarrow as pa

    root = _copy(validated_month, tmp_path)
    data = root / "data"
    contexts_rows = pq.read_table(data / "contexts" / "2024-02.parquet").to_pylist()
    (data / "images").mkdir()
    image_rows = [
        {
            "month": MONTH,
            "repo_name": c["repo_name"],
            "base_sha": c["base_sha"],
            "image_name": image_name_for(c["repo_name"], c["base_sha"], namespace="formulacode").reference,
            "benchmarks": c["benchmarks"],
            "status": "built",
        }
        for c in contexts_rows
    ]
    pq.write_table(IMAGES.to_table(image_rows), data / "images" / "2024-02.parquet")
    perf = pq.read_table(data / "perf_commits" / "2024-02.parquet")
    rows = perf.to_pylist()
    moved = contexts_rows[0]["merge_commit_shas"][0]
    for row in rows:
        if row["merge_commit_sha"] == moved:
            row["merged_at"] = row["merged_at"] + timedelta(days=40)
    pq.write_table(pa.Table.from_pylist(rows, schema=perf.schema), data / "perf_commits" / "2024-02.parquet")

    resources = _resources(root)
    resources["registry"] = RegistryResource()
    resources["publishing"] = PublishingResource(data_dir=str(data))
    result = materialize(
        [*mining_assets(), perf_commits, contexts, *PUBLISHING],
        selection=[AssetKey("tasks"), AssetKey("dataset")],
        partition_key=MONTH,
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "decontamination"]
    assert not check.passed and check.partition == MONTH
    (problem,) = check.metadata["problems"].value
    (task,) = [t for t in _table(root, "tasks") if t["merge_commit"] == moved]
    assert problem.startswith(f"{task['task_id']}: merged_at 2024-03") and "outside 2024-02-01" in problem
    # Blocking: the dataset is not written from a contaminated month.
    assert not (data / "hf_dataset").exists()
