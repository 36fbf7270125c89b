"""Repository names, the repository list, asv configs and repos_valid rows on real repositories."""

from datetime import UTC, datetime

import pytest

from formulacode_assets.core.mining.asv_config import (
    AsvConfigError,
    find_asv_config,
    load_asv_json,
    resolve_benchmark_dir,
)
from formulacode_assets.core.mining.git import GitError, run_git
from formulacode_assets.core.mining.mirror import mirror_path, sync_mirror
from formulacode_assets.core.mining.repos import github_exclusion, read_repo_list, repo_validity_at, repos_valid_rows
from formulacode_assets.core.repo_names import InvalidRepoName, validate_repo_name

COMMENTED_CONF = """// asv config, as real projects write it
{
    // The version of the config file format.  Do not change this.
    "version": 1,
    "project": "gridlib",  // trailing comment
    "repo": "..",
    "url": "https://example.com/a//b",   // a // inside a string is not a comment
    "pythons": ["3.11"],
    "matrix": {"numpy": [],},
}
"""


@pytest.mark.parametrize("name", ["numpy/numpy", "scikit-learn/scikit-learn", "a.b/c_d", "pandas-dev/pandas"])
def test_valid_repo_names(name):
    assert validate_repo_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "numpy",
        "a/b/c",
        "../etc",
        "a/..",
        "./x",
        "-rf/x",
        "owner/-upload-pack=evil",
        "a b/c",
        "a/b;rm",
        "",
        "/abs",
        "a/",
        "a/b\n",
    ],
)
def test_invalid_repo_names(name):
    with pytest.raises(InvalidRepoName):
        validate_repo_name(name)


def test_asv_json_with_comments_and_trailing_commas():
    config = load_asv_json(COMMENTED_CONF)
    assert config["url"] == "https://example.com/a//b"
    assert config["matrix"] == {"numpy": []}
    assert "benchmark_dir" not in config
    assert resolve_benchmark_dir("benchmarks/asv.conf.json", config) == "benchmarks/benchmarks"
    assert resolve_benchmark_dir("asv.conf.json", config) == "benchmarks"
    assert resolve_benchmark_dir("asv_bench/asv.conf.json", {"benchmark_dir": "benchmarks"}) == "asv_bench/benchmarks"
    assert resolve_benchmark_dir("asv_bench/asv.conf.json", {"benchmark_dir": "."}) == "asv_bench"
    with pytest.raises(AsvConfigError):
        resolve_benchmark_dir("asv.conf.json", {"benchmark_dir": "../../etc"})
    with pytest.raises(AsvConfigError):
        load_asv_json("{ not json")


def test_find_asv_config_at_a_commit(repo):
    first = repo.commit("Initial", {"pkg/a.py": "1\n"}, date="2024-01-05T00:00:00Z")
    second = repo.commit("Add asv (#1)", {"benchmarks/asv.conf.json": COMMENTED_CONF}, date="2024-02-05T00:00:00Z")
    git_dir = repo.path / ".git"
    assert find_asv_config(git_dir, first) is None
    location = find_asv_config(git_dir, second)
    assert (location.conf_path, location.benchmark_dir) == ("benchmarks/asv.conf.json", "benchmarks/benchmarks")
    assert location.config["project"] == "gridlib"


def test_validity_is_judged_at_the_end_of_the_month(repo):
    repo.commit("Initial", {"pkg/a.py": "1\n"}, date="2024-01-05T00:00:00Z")
    repo.commit("Add asv (#1)", {"asv.conf.json": "{}"}, date="2024-02-05T00:00:00Z")
    git_dir = repo.path / ".git"
    assert repo_validity_at(git_dir, "main", datetime(2023, 12, 1, tzinfo=UTC)).status == "skipped"
    jan = repo_validity_at(git_dir, "main", datetime(2024, 2, 1, tzinfo=UTC))
    assert (jan.status, jan.reason) == ("skipped", "no asv.conf.json on the default branch")
    feb = repo_validity_at(git_dir, "main", datetime(2024, 3, 1, tzinfo=UTC))
    assert (feb.status, feb.asv_conf_path, feb.benchmark_dir) == ("ok", "asv.conf.json", "benchmarks")
    broken = repo_validity_at(git_dir, "nope", datetime(2024, 3, 1, tzinfo=UTC))
    assert broken.status == "failed" and "cannot read branch" in broken.reason


def test_repo_list_keeps_bad_lines_with_a_reason(tmp_path):
    csv = tmp_path / "repos.csv"
    csv.write_text(
        "repo_name,url,default_branch\ngood/repo,./local/repo,\n../evil,/tmp/x,\ngood/repo,/dup,\ngh/only,,develop\n"
    )
    specs = {s.repo_name: s for s in read_repo_list(csv)}
    assert specs["good/repo"].url == str((tmp_path / "local/repo").resolve())
    assert specs["good/repo"].problem is None
    assert "unsafe segment" in specs["../evil"].problem
    assert specs["gh/only"].url == "https://github.com/gh/only" and specs["gh/only"].default_branch == "develop"


def test_mirror_is_cloned_once_then_fetched(repo, tmp_path):
    repo.commit("Initial", {"asv.conf.json": "{}"}, date="2024-01-05T00:00:00Z")
    cache = tmp_path / "cache"
    first = sync_mirror(cache, "o/r", str(repo.path))
    assert (first.action, first.default_branch) == ("cloned", "main")
    assert first.path == mirror_path(cache, "o/r") == cache / "mirrors" / "o" / "r.git"
    inode = first.path.stat().st_ino
    new = repo.commit("Second (#1)", {"a.py": "1\n"}, date="2024-01-06T00:00:00Z")
    second = sync_mirror(cache, "o/r", str(repo.path))
    assert second.action == "fetched" and second.path.stat().st_ino == inode
    assert repo.git("--git-dir", str(second.path), "rev-parse", "refs/heads/main") == new
    # only branches and tags are mirrored
    assert "refs/pull" not in repo.git("--git-dir", str(second.path), "for-each-ref")


def test_repos_valid_rows_report_each_failure(repo, tmp_path):
    repo.commit("Initial", {"asv_bench/asv.conf.json": '{"benchmark_dir": "benchmarks"}'}, date="2024-01-05T00:00:00Z")
    csv = tmp_path / "repos.csv"
    csv.write_text(f"repo_name,url\nok/repo,{repo.path}\nmissing/repo,{tmp_path / 'nowhere'}\n-bad/name,x\n")
    specs = read_repo_list(csv)
    cache = tmp_path / "cache"
    mirrors = {}
    for spec in specs:
        if spec.problem is None:
            try:
                mirrors[spec.repo_name] = sync_mirror(cache, spec.repo_name, spec.url)
            except Exception as exc:  # noqa: BLE001 - the resource does the same, see GitSourceResource
                mirrors[spec.repo_name] = f"mirror sync failed: {exc}"
    rows = {
        r["repo_name"]: r
        for r in repos_valid_rows(specs, mirrors, "git", "2024-01-01", datetime(2024, 2, 1, tzinfo=UTC))
    }
    assert rows["ok/repo"]["status"] == "ok" and rows["ok/repo"]["benchmark_dir"] == "asv_bench/benchmarks"
    assert rows["missing/repo"]["status"] == "failed" and "mirror sync failed" in rows["missing/repo"]["reason"]
    assert rows["-bad/name"]["status"] == "failed" and "unsafe segment" in rows["-bad/name"]["reason"]


def test_git_timeouts_and_failures_are_git_errors(tmp_path):
    with pytest.raises(GitError, match="timed out"):
        run_git(None, ["hash-object", "--stdin"], input=b"x" * 10, timeout=0.000001)
    with pytest.raises(GitError) as info:
        run_git(tmp_path / "nowhere.git", ["rev-parse", "HEAD"])
    assert info.value.reason and info.value.returncode != 0


_META = {"status": "ok", "full_name": "o/r", "is_fork": False, "is_archived": False, "is_disabled": False, "stars": 800}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, None),
        ({"is_fork": True, "fork_parent": "up/r"}, "fork of up/r"),
        ({"is_archived": True}, "archived"),
        ({"is_disabled": True}, "disabled"),
        ({"stars": 499}, "499 stars < 500"),
        ({"full_name": "airspeed-velocity/asv"}, "asv itself is not a benchmark target"),
        ({"status": "failed", "reason": "repository not found (HTTP 404)"}, "repository not found (HTTP 404)"),
    ],
)
def test_github_exclusion_reasons(change, reason):
    assert github_exclusion({**_META, **change}, min_stars=500) == reason
