"""A closed month re-materialized mines nothing; a mirror that gained a commit in the window is mined again."""

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
from dagster import DagsterInstance, materialize

from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.core.mining import merged_changes
from formulacode_assets.core.mining import patches as core_patches
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.storage import ParquetIOManager

ASSETS = [repos_discovered, repos_valid, merge_commits, patches]


class MiningCalls:
    """Counts the git mining entry points the month cache guards (the real functions still run)."""

    def __init__(self, monkeypatch):
        self.log, self.diff = 0, 0
        real_log, real_diff = merged_changes.merge_commit_rows, core_patches.patch_rows

        def log(*args, **kwargs):
            self.log += 1
            return real_log(*args, **kwargs)

        def diff(*args, **kwargs):
            self.diff += 1
            return real_diff(*args, **kwargs)

        monkeypatch.setattr(merged_changes, "merge_commit_rows", log)
        monkeypatch.setattr(core_patches, "patch_rows", diff)


def _materialize(tmp_path: Path, csv: Path) -> dict[str, dict]:
    result = materialize(
        ASSETS,
        partition_key="2024-02-01",
        resources={
            "io_manager": ParquetIOManager(base_path=str(tmp_path / "data")),
            "git_source": GitSourceResource(cache_dir=str(tmp_path / "cache"), source="git", repos_csv=str(csv)),
            "github_api": GitHubResource(cache_dir=str(tmp_path / "cache")),
        },
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return {
        name: {k: v.value for k, v in result.asset_materializations_for_node(name)[0].metadata.items()}
        for name in ("merge_commits", "patches")
    }


def _digests(tmp_path: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((tmp_path / "data" / name / "2024-02.parquet").read_bytes()).hexdigest()
        for name in ("merge_commits", "patches")
    }


def _counts(meta: dict[str, dict]) -> dict[str, tuple[int, int]]:
    return {name: (m["repo_months_mined"], m["repo_months_cached"]) for name, m in meta.items()}


def test_closed_month_rerun_mines_nothing_and_a_new_commit_in_the_window_is_mined(tmp_path, repo, monkeypatch):
    repo.commit("Initial", {"asv.conf.json": "{}", "pkg/a.py": "1\n"}, date="2024-01-05T00:00:00Z")
    repo.commit("Speed up a (#1)", {"pkg/a.py": "2\n"}, date="2024-02-05T00:00:00Z")
    repo.commit("Faster b (#2)", {"pkg/b.py": "1\n"}, date="2024-02-06T00:00:00Z")
    csv = tmp_path / "repos.csv"
    csv.write_text(f"repo_name,url\nowner/repo,{repo.path}\n")
    calls = MiningCalls(monkeypatch)

    assert _counts(_materialize(tmp_path, csv)) == {"merge_commits": (1, 0), "patches": (1, 0)}
    assert (calls.log, calls.diff) == (1, 1)
    first = _digests(tmp_path)

    # The same closed month again: read from the cache, byte-identical files, no git mining.
    assert _counts(_materialize(tmp_path, csv)) == {"merge_commits": (0, 1), "patches": (0, 1)}
    assert (calls.log, calls.diff) == (1, 1)
    assert _digests(tmp_path) == first

    # A commit after the window leaves the month's history unchanged.
    repo.commit("March work (#3)", {"pkg/a.py": "3\n"}, date="2024-03-02T00:00:00Z")
    assert _counts(_materialize(tmp_path, csv)) == {"merge_commits": (0, 1), "patches": (0, 1)}
    assert (calls.log, calls.diff) == (1, 1)

    # The mirror gains a commit dated inside the window (a late push): that month is mined again.
    late = repo.commit("Late fix (#4)", {"pkg/b.py": "2\n"}, date="2024-02-20T00:00:00Z")
    assert _counts(_materialize(tmp_path, csv)) == {"merge_commits": (1, 0), "patches": (1, 0)}
    assert (calls.log, calls.diff) == (2, 2)
    shas = pq.read_table(tmp_path / "data" / "patches" / "2024-02.parquet").column("merge_commit_sha").to_pylist()
    assert late in shas and len(shas) == 3


def test_a_month_with_a_git_failure_is_not_cached_so_it_is_retried(tmp_path):
    from formulacode_assets.core.contracts import MERGE_COMMITS
    from formulacode_assets.core.mining.month_cache import MinedMonthCache, rows_of_month

    cache = MinedMonthCache.in_cache_dir(tmp_path)
    failed = [{"month": "2024-02-01", "repo_name": "o/r", "status": "failed", "reason": "git log failed: x"}]
    assert rows_of_month(cache, "k", MERGE_COMMITS, "o/r", lambda: failed) == (failed, True)
    assert cache.get("k", MERGE_COMMITS) is None
    ok = [{"month": "2024-02-01", "repo_name": "o/r", "merge_commit_sha": "a" * 40, "status": "ok"}]
    assert rows_of_month(cache, "k", MERGE_COMMITS, "o/r", lambda: ok)[1] is True
    rows, mined = rows_of_month(cache, "k", MERGE_COMMITS, "o/r", lambda: [])
    assert not mined and rows[0]["merge_commit_sha"] == "a" * 40
