"""Issue 12: faults, hostile inputs and crashes that used to break a repository, a month or the instance.

Each ``test_point_N_*`` covers point N of the issue and failed before its fix.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from formulacode_assets.core.mining.asv_config import load_asv_json
from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.mining.mirror import sync_mirror
from formulacode_assets.core.mining.repos import RepoSpec, repos_valid_rows
from formulacode_assets.storage.catalog import refresh_catalog

MONTH_END = datetime(2024, 3, 1, tzinfo=UTC)


def _asv_repo(repo, conf: str) -> None:
    repo.commit("init", {"asv.conf.json": conf, "pkg/__init__.py": ""}, date="2024-01-10T10:00:00Z")


# --- point 6: a hostile asv.conf.json stays on its repository's row ---------------------------------


def test_point_6_deep_or_huge_asv_conf_is_one_failed_row_and_stripping_is_linear(repo, tmp_path):
    _asv_repo(repo, "[" * 100_000 + "]" * 100_000)
    deep = sync_mirror(tmp_path / "cache", "hostile/deep", str(repo.path), default_branch="main")
    good_repo = type(repo)(tmp_path / "good")
    _asv_repo(good_repo, '{"version": 1, // comment\n "benchmark_dir": "benchmarks",}')
    good = sync_mirror(tmp_path / "cache", "fine/good", str(good_repo.path), default_branch="main")

    specs = [RepoSpec("hostile/deep", str(repo.path)), RepoSpec("fine/good", str(good_repo.path))]
    rows = {
        r["repo_name"]: r
        for r in repos_valid_rows(specs, {"hostile/deep": deep, "fine/good": good}, "git", "2024-02-01", MONTH_END)
    }
    assert rows["hostile/deep"]["status"] == "failed" and "nested too deeply" in rows["hostile/deep"]["reason"]
    assert rows["fine/good"]["status"] == "ok" and rows["fine/good"]["benchmark_dir"] == "benchmarks"

    # Linear comment stripping: 300 KB of unterminated comments and strings used to take ~90 s.
    hostile = '{"a": 1, ' + '/* "x" // ' * 30_000
    started = time.monotonic()
    with pytest.raises(ValueError):
        load_asv_json(hostile)
    assert time.monotonic() - started < 5
    assert load_asv_json('{"u": "http://x//y", /* c */ "l": [1, 2,], // t\n}') == {"u": "http://x//y", "l": [1, 2]}


# --- point 7: glob characters in the data folder ----------------------------------------------------


def test_point_7_catalog_rebuild_with_glob_characters_in_the_data_path(tmp_path):
    data = tmp_path / "data[1]*?"
    (data / "patches").mkdir(parents=True)
    pq.write_table(pa.table({"month": ["2024-02-01"], "n": [3]}), data / "patches" / "2024-02.parquet")
    catalog = tmp_path / "cat[1]" / "catalog.duckdb"
    assert refresh_catalog(data, catalog) == ["patches"]
    with duckdb.connect(str(catalog), read_only=True) as con:
        assert con.sql("select n from patches").fetchall() == [(3,)]


# --- point 9: the ext:: transport and the parent's GIT_* environment --------------------------------


def test_point_9_ext_transport_is_refused_even_when_the_parent_allows_it(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "ext:file")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'protocol.ext.allow'='always'")
    url = f"ext::sh -c touch% {marker}% >&2"
    with pytest.raises(GitError):
        sync_mirror(tmp_path / "cache", "evil/ext", url, default_branch="main")
    assert not marker.exists()
