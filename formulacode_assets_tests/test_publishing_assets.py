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
from dagster import AssetKey, DagsterInstance, materialize

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
    return sorted(table.to_pylist(), key=lambda r: r["repo_name"])


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

    # Same inputs, same build-context bytes.
    again = _publish(root)
    assert again.success
    assert [r["build_context_sha256"] for r in _table(root, "images")] == [r["build_context_sha256"] for r in rows]
