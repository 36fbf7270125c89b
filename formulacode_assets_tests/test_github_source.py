"""The GitHub source end to end: repos_discovered → repos_valid → merge_commits → patches for one month,
against the loopback GitHub server, with local bare repositories as the code mirror."""

import logging

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.storage import ParquetIOManager
from formulacode_assets_tests.gitbuilder import RepoBuilder
from formulacode_assets_tests.github_server import FakeGitHub, Fault

TOKENS = ("ghp_SECRETtokenONE111111", "ghp_SECRETtokenTWO222222")
ASSETS = [repos_discovered, repos_valid, merge_commits, patches]
ASV_CONF = '{"version": 1, "benchmark_dir": "benchmarks"} // asv\n'


def _fastlib(tmp_path):
    """A repository as GitHub leaves it: a squash merge and a merge commit in February, one in March."""
    repo = RepoBuilder(tmp_path / "work" / "fastlib")
    repo.commit(
        "Initial",
        {
            "asv.conf.json": ASV_CONF,
            "fastlib/core.py": "def f():\n    return sum(range(10))\n",
            "benchmarks/bench.py": "def time_f(): pass\n",
            "README.md": "fastlib\n",
        },
        date="2024-01-05T10:00:00Z",
    )
    squash = repo.commit(
        "Speed up f with a closed form (#1)\n\nUse the arithmetic series formula.",
        {"fastlib/core.py": "def f():\n    return 45\n"},
        date="2024-02-03T10:00:00Z",
    )
    repo.branch("docs")
    repo.commit("docs", {"README.md": "fastlib: fast\n"}, date="2024-02-10T09:00:00Z")
    repo.checkout("main")
    merge = repo.merge("docs", "Merge pull request #2 from bob/docs\n\nDocument f", date="2024-02-12T10:00:00Z")
    march = repo.commit("Add g (#3)", {"fastlib/g.py": "g = 1\n"}, date="2024-03-02T10:00:00Z")
    return repo.bare_clone(tmp_path / "origin" / "fastlib.git"), squash, merge, march


def _renamed(tmp_path):
    repo = RepoBuilder(tmp_path / "work" / "renamed")
    repo.commit("Initial", {"asv_bench/asv.conf.json": ASV_CONF, "pkg/a.py": "a = 1\n"}, date="2024-01-05T10:00:00Z")
    return repo.bare_clone(tmp_path / "origin" / "renamed.git")


@pytest.fixture
def github(tmp_path):
    server = FakeGitHub().start()
    origin, squash, merge, march = _fastlib(tmp_path)
    server.add_repo("octo/fastlib", str(origin), stars=2000)
    server.add_repo("octo/renamed", str(_renamed(tmp_path)), stars=900)
    server.renamed["old-octo/renamed"] = "octo/renamed"
    server.add_repo("octo/forked", "/nowhere", fork=True, parent={"full_name": "octo/fastlib"})
    server.add_repo("octo/tiny", "/nowhere", stars=12)
    server.add_repo("octo/attic", "/nowhere", archived=True)
    server.add_repo("airspeed-velocity/asv", "/nowhere", stars=900)
    server.blocked["gone/repo"] = 404
    for name, path in [
        ("octo/fastlib", "asv.conf.json"),
        ("old-octo/renamed", "asv_bench/asv.conf.json"),
        ("octo/forked", "asv.conf.json"),
        ("octo/tiny", "asv.conf.json"),
        ("octo/attic", "asv.conf.json"),
        ("airspeed-velocity/asv", "asv.conf.json"),
        ("gone/repo", "asv.conf.json"),
    ]:
        server.code_files.append({"repo": name, "path": path, "size": 300 + len(name)})
    server.add_pull(
        "octo/fastlib",
        1,
        title="Speed up f with a closed form",
        created_at="2023-12-20T08:00:00Z",
        merged_at="2024-02-03T10:00:00Z",
        merge_commit_sha=squash,
        labels=["performance"],
        body="f was O(n). Fixes #9.",
        head_sha="1" * 40,
    )
    server.add_pull(
        "octo/fastlib",
        2,
        title="Document f",
        created_at="2024-02-09T08:00:00Z",
        merged_at="2024-02-12T10:00:00Z",
        merge_commit_sha=merge,
        author="bob",
    )
    server.add_pull(
        "octo/fastlib",
        3,
        title="Add g",
        created_at="2024-02-20T08:00:00Z",
        merged_at="2024-03-02T10:00:00Z",
        merge_commit_sha=march,
    )
    server.issues[("octo/fastlib", 9)] = {"number": 9, "title": "f is slow", "body": "f takes O(n)."}
    server.issue_comments[("octo/fastlib", 1)] = [
        {"user": {"login": "carol"}, "created_at": "2024-01-02T00:00:00Z", "body": "nice speed-up"},
        {"user": {"login": "dave"}, "created_at": "2024-02-05T00:00:00Z", "body": "after the merge"},
    ]
    server.faults += [
        Fault(r"^/search/code", 403, {"Retry-After": "1"}, {"message": "You have exceeded a secondary rate limit."}),
        Fault(r"^/repos/octo/fastlib/pulls/2$", 502, body={"message": "Bad Gateway"}),
    ]
    yield server
    server.stop()


def _run(tmp_path, server, partition_key="2024-02-01"):
    csv = tmp_path / "extra.csv"
    csv.write_text("repo_name\nocto/fastlib\ngone/repo\n")
    resources = {
        "io_manager": ParquetIOManager(base_path=str(tmp_path / "data")),
        "git_source": GitSourceResource(source="github", repos_csv=str(csv), cache_dir=str(tmp_path / "cache")),
        "github_api": GitHubResource(
            tokens=",".join(TOKENS),
            base_url=server.url,
            seconds_between_requests=0,
            backoff_factor=0.05,
            cache_dir=str(tmp_path / "cache"),
        ),
    }
    result = materialize(ASSETS, partition_key=partition_key, resources=resources, instance=DagsterInstance.ephemeral())
    assert result.success
    return result


def _rows(tmp_path, asset):
    return pq.read_table(tmp_path / "data" / asset / "2024-02.parquet").to_pylist()


def test_github_month_end_to_end(tmp_path, github, caplog):
    caplog.set_level(logging.DEBUG)
    result = _run(tmp_path, github)

    discovered = {r["repo_name"]: r for r in _rows(tmp_path, "repos_discovered")}
    assert discovered["octo/fastlib"]["discovered_by"] == "search+csv"
    assert discovered["old-octo/renamed"]["discovered_by"] == "search"

    valid = {r["repo_name"]: r for r in _rows(tmp_path, "repos_valid")}
    assert valid["octo/fastlib"]["status"] == "ok" and valid["octo/fastlib"]["stars"] == 2000
    assert valid["octo/renamed"]["status"] == "ok" and valid["octo/renamed"]["renamed_from"] == "old-octo/renamed"
    assert valid["octo/renamed"]["benchmark_dir"] == "asv_bench/benchmarks"
    reasons = {name: (r["status"], r["reason"]) for name, r in valid.items() if r["status"] != "ok"}
    assert reasons == {
        "octo/forked": ("skipped", "fork of octo/fastlib"),
        "octo/tiny": ("skipped", "12 stars < 500"),
        "octo/attic": ("skipped", "archived"),
        "airspeed-velocity/asv": ("skipped", "asv itself is not a benchmark target"),
        "gone/repo": ("failed", "repository not found (HTTP 404)"),
    }

    changes = {r["pr_number"]: r for r in _rows(tmp_path, "patches")}
    assert sorted(changes) == [1, 2], "the PR opened in December and merged in February is February's; #3 is not"
    squash, merge = changes[1], changes[2]
    assert squash["merge_style"] == "squash" and merge["merge_style"] == "merge" and merge["parent_count"] == 2
    assert squash["pr_labels"] == ["performance"] and squash["pr_created_at"].year == 2023
    assert squash["touches_core"] and merge["docs_only"]
    assert "return 45" in squash["patch"]
    assert '"nice speed-up"' in squash["pr_comments"] and "after the merge" not in squash["pr_comments"]
    assert '"f is slow"' in squash["linked_issues"]
    assert merge["title"] == "Document f" and merge["pr_author"] == "bob"
    assert all(f.times == 0 for f in github.faults), "the rate limit and the 502 were retried"

    # Nothing secret anywhere: logs, Dagster events and metadata, parquet, cached responses.
    texts = [caplog.text, *(str(e) for e in result.all_events)]
    texts += [p.read_bytes().decode("latin-1") for p in (tmp_path / "data").rglob("*.parquet")]
    texts += [p.read_text() for p in (tmp_path / "cache" / "github").rglob("*.json")]
    for token in TOKENS:
        assert not any(token in text for text in texts)

    # A closed month re-run makes zero GitHub requests.
    before = github.count()
    _run(tmp_path, github)
    assert github.count() == before
    assert {r["pr_number"] for r in _rows(tmp_path, "patches")} == {1, 2}
