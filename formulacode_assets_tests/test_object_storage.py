"""Parquet in a bucket: the same UPath IO manager writes to S3 (moto_server), the catalog reads it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dagster import DagsterInstance, materialize

from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.storage import ParquetIOManager
from formulacode_assets.storage.remote_catalog import asset_globs, httpfs_setup_sql, open_catalog
from formulacode_assets_tests.service_fixtures import moto_s3  # noqa: F401  (fixture)

MINING = [repos_discovered, repos_valid, merge_commits, patches]


@pytest.fixture
def s3_env(monkeypatch, moto_s3):  # noqa: F811
    # fsspec caches filesystems per argument set: one made by an earlier test would point at that
    # test's (stopped) endpoint.
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    for key, value in moto_s3.env().items():
        monkeypatch.setenv(key, value)
    return moto_s3


def test_sample_months_land_in_the_bucket_and_the_catalog_queries_them(tmp_path, s3_env):
    s3_env.client().create_bucket(Bucket="fc-data")
    resources = {
        "io_manager": ParquetIOManager(base_path="s3://fc-data/monthly"),
        "git_source": GitSourceResource(cache_dir=str(tmp_path / "cache")),
        "github_api": GitHubResource(cache_dir=str(tmp_path / "cache")),
    }
    instance = DagsterInstance.ephemeral()
    for month in ("2024-01-01", "2024-02-01"):
        assert materialize(MINING, partition_key=month, resources=resources, instance=instance).success
    keys = sorted(o["Key"] for o in s3_env.client().list_objects_v2(Bucket="fc-data")["Contents"])
    assert "monthly/patches/2024-01.parquet" in keys and "monthly/patches/2024-02.parquet" in keys
    assert asset_globs("s3://fc-data/monthly")["patches"] == "s3://fc-data/monthly/patches/*.parquet"

    con = open_catalog("s3://fc-data/monthly")
    counts = con.sql("select month, count(*) from patches group by month order by month").fetchall()
    assert [(str(m), n) for m, n in counts] == [("2024-01-01", 4), ("2024-02-01", 10)]
    joined = con.sql(
        "select count(*) from patches p join repos_valid r using (repo_name, month) where r.status = 'ok'"
    ).fetchone()
    assert joined[0] == 14

    # The same from a shell, as the README shows it.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "formulacode_assets.storage.remote_catalog",
            "s3://fc-data/monthly",
            "select count(*) as n from merge_commits",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "14" in proc.stdout


def test_httpfs_sql_names_the_endpoint_and_the_views(s3_env):
    s3_env.client().create_bucket(Bucket="fc-httpfs")
    s3_env.client().put_object(Bucket="fc-httpfs", Key="d/patches/2024-01.parquet", Body=b"PAR1")
    sql = httpfs_setup_sql("s3://fc-httpfs/d")
    host = s3_env.url.removeprefix("http://")
    assert f"ENDPOINT '{host}'" in sql and "USE_SSL false" in sql and "URL_STYLE 'path'" in sql
    assert "read_parquet('s3://fc-httpfs/d/patches/*.parquet'" in sql
