"""PyGithub against a real GitHub-shaped HTTP server on 127.0.0.1: search splitting, retries, renames, caching."""

from datetime import UTC, datetime, timedelta

import pytest

from formulacode_assets.core.github.client import GitHubClientPool, GitHubSettings
from formulacode_assets.core.github.response_cache import ResponseCache
from formulacode_assets.core.github.search import split_until_under_cap
from formulacode_assets.core.github.source import GitHubSource, linked_issue_refs
from formulacode_assets_tests.github_server import FakeGitHub, Fault

FEB = (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
TOKENS = ("ghp_testtokenAAAA1111", "ghp_testtokenBBBB2222")


@pytest.fixture
def server():
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def _source(server, tmp_path, tokens=TOKENS, refresh=False, **settings) -> GitHubSource:
    settings = GitHubSettings(
        base_url=server.url, tokens=tokens, seconds_between_requests=0, backoff_factor=0.05, **settings
    )
    return GitHubSource(GitHubClientPool(settings), ResponseCache(tmp_path / "gh-cache", refresh=refresh))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pr_opened_before_the_month_and_merged_inside_belongs_to_it(server, tmp_path):
    server.add_repo("octo/lib", "/nowhere")
    server.add_pull(
        "octo/lib",
        1,
        title="old but merged in Feb",
        created_at="2023-11-20T10:00:00Z",
        merged_at="2024-02-03T10:00:00Z",
        merge_commit_sha="a" * 40,
    )
    server.add_pull(
        "octo/lib",
        2,
        title="opened and merged in Feb",
        created_at="2024-02-10T10:00:00Z",
        merged_at="2024-02-12T10:00:00Z",
        merge_commit_sha="b" * 40,
    )
    server.add_pull(
        "octo/lib",
        3,
        title="opened in Feb, merged in March",
        created_at="2024-02-25T10:00:00Z",
        merged_at="2024-03-01T00:00:00Z",
        merge_commit_sha="c" * 40,
    )
    server.add_pull(
        "octo/lib", 4, title="never merged", created_at="2024-02-05T10:00:00Z", merged_at=None, merge_commit_sha=None
    )
    server.add_pull(
        "octo/lib",
        5,
        title="other base",
        created_at="2024-02-05T10:00:00Z",
        merged_at="2024-02-06T10:00:00Z",
        merge_commit_sha="d" * 40,
        base="v1.x",
    )
    numbers, capped = _source(server, tmp_path).merged_pr_numbers("octo/lib", "main", *FEB, closed=True)
    assert (numbers, capped) == ([1, 2], [])


def test_a_window_over_the_cap_is_split_and_every_pr_returned_once(server, tmp_path):
    server.add_repo("big/repo", "/nowhere")
    start, _ = FEB
    n = 2500
    for number in range(1, n + 1):
        merged = start + timedelta(seconds=number * (29 * 86400 // (n + 1)))
        server.add_pull(
            "big/repo",
            number,
            title=f"PR {number}",
            created_at="2023-12-01T00:00:00Z",
            merged_at=_iso(merged),
            merge_commit_sha=f"{number:040x}",
        )
    # Outside the window on both sides.
    server.add_pull(
        "big/repo",
        n + 1,
        title="Jan",
        created_at="2023-12-01T00:00:00Z",
        merged_at="2024-01-31T23:59:59Z",
        merge_commit_sha="e" * 40,
    )
    server.add_pull(
        "big/repo",
        n + 2,
        title="Mar",
        created_at="2023-12-01T00:00:00Z",
        merged_at="2024-03-01T00:00:00Z",
        merge_commit_sha="f" * 40,
    )
    numbers, capped = _source(server, tmp_path).merged_pr_numbers("big/repo", "main", *FEB, closed=True)
    assert numbers == list(range(1, n + 1)) and capped == []
    queries = {r.query["q"] for r in server.requests if r.path == "/search/issues"}
    assert len(queries) > 3, "the window was split into several queries"
    assert all("merged:" in q for q in queries)


def test_a_slice_that_cannot_be_split_is_reported(server, tmp_path):
    server.add_repo("big/repo", "/nowhere")
    for number in range(1, 1101):  # 1,100 PRs merged in the same second
        server.add_pull(
            "big/repo",
            number,
            title="x",
            created_at="2024-02-01T00:00:00Z",
            merged_at="2024-02-10T12:00:00Z",
            merge_commit_sha=f"{number:040x}",
        )
    numbers, capped = _source(server, tmp_path).merged_pr_numbers("big/repo", "main", *FEB, closed=True)
    assert len(capped) == 1 and capped[0]["total_count"] == 1100
    assert len(numbers) < 1100


def test_code_search_is_split_by_file_size(server, tmp_path):
    for i in range(2300):
        server.code_files.append({"repo": f"org{i}/proj", "path": "asv.conf.json", "size": 200 + (i % 1500)})
    server.code_files.append({"repo": "deep/repo", "path": "benchmarks/asv.conf.json", "size": 999})
    server.code_files.append({"repo": "deep/repo", "path": "benchmarks/other.json", "size": 999})
    found, capped = _source(server, tmp_path).discover_asv_repositories(closed=True, month="2024-02-01")
    assert capped == []
    assert len(found) == 2301
    assert {"repo_name": "deep/repo", "asv_conf_path": "benchmarks/asv.conf.json"} in found


def test_rate_limits_and_server_errors_are_retried(server, tmp_path):
    server.add_repo("octo/lib", "/nowhere")
    server.add_pull(
        "octo/lib",
        1,
        title="t",
        created_at="2024-02-01T00:00:00Z",
        merged_at="2024-02-03T10:00:00Z",
        merge_commit_sha="a" * 40,
    )
    server.faults += [
        Fault(
            r"^/search/issues",
            403,
            {"Retry-After": "1"},
            {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."},
        ),
        Fault(r"^/repos/octo/lib/pulls/1$", 502, body={"message": "Bad Gateway"}),
        Fault(r"^/repos/octo/lib/issues/1/comments$", 429, {"Retry-After": "1"}, {"message": "Too many requests"}),
    ]
    source = _source(server, tmp_path)
    numbers, _ = source.merged_pr_numbers("octo/lib", "main", *FEB, closed=True)
    assert numbers == [1]
    pull = source.pull_request("octo/lib", 1, closed=True)
    assert pull["status"] == "ok" and pull["merge_commit_sha"] == "a" * 40
    assert all(f.times == 0 for f in server.faults), "each fault was served once, then the retry succeeded"
    assert server.count("/search/issues") == 2 and server.count("/repos/octo/lib/pulls/1") == 2


def test_incomplete_search_results_are_asked_again(server, tmp_path):
    server.add_repo("octo/lib", "/nowhere")
    server.add_pull(
        "octo/lib",
        1,
        title="t",
        created_at="2024-02-01T00:00:00Z",
        merged_at="2024-02-03T10:00:00Z",
        merge_commit_sha="a" * 40,
    )
    server.incomplete_searches = 2
    numbers, _ = _source(server, tmp_path).merged_pr_numbers("octo/lib", "main", *FEB, closed=True)
    assert numbers == [1] and server.count("/search/issues") == 3


def test_errors_that_outlast_the_retries_become_a_failed_record(server, tmp_path):
    server.add_repo("octo/lib", "/nowhere")
    server.add_pull(
        "octo/lib",
        1,
        title="t",
        created_at="2024-02-01T00:00:00Z",
        merged_at="2024-02-03T10:00:00Z",
        merge_commit_sha="a" * 40,
    )
    server.faults.append(Fault(r"^/repos/octo/lib/pulls/1$", 503, times=100))
    record = _source(server, tmp_path, max_retries=2).pull_request("octo/lib", 1, closed=True)
    assert record["status"] == "failed" and "octo/lib#1" in record["reason"]
    assert not any(token in record["reason"] for token in TOKENS)


def test_repository_states_rename_and_token_rotation(server, tmp_path):
    server.add_repo("new-owner/lib", "/path/lib.git", stars=1234, parent={"full_name": "up/lib"}, fork=True)
    server.renamed["old-owner/lib"] = "new-owner/lib"
    server.blocked["gone/repo"] = 404
    server.blocked["dmca/repo"] = 451
    server.blocked["deleted/repo"] = 410
    source = _source(server, tmp_path)
    moved = source.repository("old-owner/lib", closed=True, month="2024-02-01")
    assert moved["full_name"] == "new-owner/lib" and moved["clone_url"] == "/path/lib.git"
    assert (moved["stars"], moved["is_fork"], moved["fork_parent"]) == (1234, True, "up/lib")
    assert source.repository("gone/repo", True, "2024-02-01") == {
        "status": "failed",
        "reason": "repository not found (HTTP 404)",
    }
    assert "legal" in source.repository("dmca/repo", True, "2024-02-01")["reason"]
    assert "gone" in source.repository("deleted/repo", True, "2024-02-01")["reason"]
    used = {r.authorization for r in server.requests}
    assert used == {f"token {t}" for t in TOKENS}, "both tokens were used"


def test_closed_months_are_served_from_the_cache_and_the_open_month_never(server, tmp_path):
    server.add_repo("octo/lib", "/nowhere")
    server.add_pull(
        "octo/lib",
        1,
        title="t",
        created_at="2024-02-01T00:00:00Z",
        merged_at="2024-02-03T10:00:00Z",
        merge_commit_sha="a" * 40,
    )
    source = _source(server, tmp_path)
    first = source.merged_pull_requests("octo/lib", "main", *FEB, closed=True)
    before = len(server.requests)
    assert _source(server, tmp_path).merged_pull_requests("octo/lib", "main", *FEB, closed=True) == first
    assert len(server.requests) == before, "a closed month re-run makes zero requests"
    _source(server, tmp_path).merged_pull_requests("octo/lib", "main", *FEB, closed=False)
    after_open = len(server.requests)
    assert after_open > before
    _source(server, tmp_path).merged_pull_requests("octo/lib", "main", *FEB, closed=False)
    assert len(server.requests) > after_open, "the open month is never served from the cache"
    _source(server, tmp_path, refresh=True).merged_pull_requests("octo/lib", "main", *FEB, closed=True)
    assert len(server.requests) > after_open + 1, "refresh refetches a closed month"
    cached = "".join(p.read_text() for p in (tmp_path / "gh-cache").rglob("*.json"))
    assert cached and not any(token in cached for token in TOKENS)


def test_pull_request_record_keeps_discussion_before_the_merge_and_linked_issues(server, tmp_path):
    server.add_repo("octo/lib", "/nowhere")
    server.add_pull(
        "octo/lib",
        7,
        title="Speed up parse",
        created_at="2024-02-01T00:00:00Z",
        merged_at="2024-02-03T10:00:00Z",
        merge_commit_sha="a" * 40,
        labels=["performance"],
        body="Closes #3. See also https://github.com/other/dep/issues/9 and fixes octo/lib#4",
    )
    server.issue_comments[("octo/lib", 7)] = [
        {"user": {"login": f"u{i}"}, "created_at": f"2024-02-0{1 + i // 40}T00:{i % 60:02d}:00Z", "body": f"c{i}"}
        for i in range(75)
    ] + [{"user": {"login": "late"}, "created_at": "2024-02-04T00:00:00Z", "body": "after merge"}]
    server.review_comments[("octo/lib", 7)] = [
        {"user": {"login": "rev"}, "created_at": "2024-02-02T00:00:00Z", "body": "nit"}
    ]
    server.issues[("octo/lib", 3)] = {"number": 3, "title": "parse is slow", "body": "It takes 3 s."}
    server.issues[("octo/lib", 4)] = {"number": 4, "title": "also slow", "body": None}
    pull = _source(server, tmp_path, per_page=30).pull_request("octo/lib", 7, closed=True)
    assert pull["labels"] == ["performance"]
    assert len(pull["comments"]) == 75 and pull["comments"][-1]["body"] == "c74", "all pages, nothing after merge"
    assert pull["review_comments"] == [{"author": "rev", "created_at": "2024-02-02T00:00:00Z", "body": "nit"}]
    assert [(i["number"], i["title"]) for i in pull["linked_issues"]] == [(3, "parse is slow"), (4, "also slow")]
    assert server.count("/repos/octo/lib/issues/7/comments") == 3, "followed the Link header over 3 pages"
    assert server.count("/repos/other/dep/issues/9") == 1, "a missing linked issue is skipped, not fatal"


def test_linked_issue_refs():
    body = "Fixes #12, closes: #13\nResolved other/repo#5 see https://github.com/a/b/issues/7 and #99 (mention)"
    assert linked_issue_refs(body, "me/repo") == [("me/repo", 12), ("me/repo", 13), ("other/repo", 5), ("a/b", 7)]


def test_split_until_under_cap_on_plain_counts():
    counts = {(0, 7): 1500, (0, 3): 900, (4, 7): 600}
    slices = split_until_under_cap((0, 7), counts.__getitem__, lambda r: ((0, 3), (4, 7)) if r == (0, 7) else None)
    assert slices.leaves == [((0, 3), 900), ((4, 7), 600)] and slices.capped == []
