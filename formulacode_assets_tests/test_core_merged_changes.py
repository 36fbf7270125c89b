"""Real-history cases for the month's merged changes, each on a real git repository."""

from datetime import UTC, datetime

import pytest

from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.mining.merged_changes import (
    log_records,
    merge_commit_rows,
    merged_changes_in_window,
    parse_pr_reference,
)

FEB = (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
MAR = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))


def _feb(repo):
    return {c.title: c for c in merged_changes_in_window(repo.path / ".git", "main", *FEB)}


def _seed(repo):
    return repo.commit("Initial commit", {"pkg/core.py": "x = 1\n"}, date="2024-01-10T10:00:00Z")


def test_squash_merge_with_trailing_pr_number(repo):
    base = _seed(repo)
    sha = repo.commit(
        "Speed up parser (#123)\n\nUse a table lookup.", {"pkg/core.py": "x = 2\n"}, date="2024-02-03T12:00:00Z"
    )
    change = _feb(repo)["Speed up parser"]
    assert (change.merge_commit_sha, change.base_sha) == (sha, base)
    assert change.pr_number == 123
    assert change.merge_style == "squash"
    assert change.body == "Use a table lookup."
    assert change.merged_at == datetime(2024, 2, 3, 12, tzinfo=UTC)


def test_merge_pull_request_commit_takes_title_from_body(repo):
    base = _seed(repo)
    repo.branch("feature")
    repo.commit("wip", {"pkg/fast.py": "y = 1\n"}, date="2024-02-01T09:00:00Z")
    repo.checkout("main")
    sha = repo.merge(
        "feature",
        "Merge pull request #45 from alice/fast-path\n\nAdd a fast path\n\nDetails here.",
        date="2024-02-04T08:00:00Z",
    )
    (change,) = merged_changes_in_window(repo.path / ".git", "main", *FEB)
    assert change.merge_commit_sha == sha and change.base_sha == base
    assert (change.pr_number, change.title, change.merge_style) == (45, "Add a fast path", "merge")
    assert change.body == "Details here."
    assert change.parent_count == 2


def test_merge_commit_with_squash_style_subject(repo):
    _seed(repo)
    repo.branch("feature")
    repo.commit("wip", {"pkg/fast.py": "y = 1\n"}, date="2024-02-01T09:00:00Z")
    repo.checkout("main")
    repo.merge("feature", "Vectorise lookups (#77)", date="2024-02-05T08:00:00Z")
    change = _feb(repo)["Vectorise lookups"]
    assert (change.pr_number, change.merge_style) == (77, "merge")


def test_side_branch_commits_are_not_merged_changes(repo):
    _seed(repo)
    repo.branch("feature")
    repo.commit("side work", {"pkg/fast.py": "y = 1\n"}, date="2024-02-01T09:00:00Z")
    repo.checkout("main")
    repo.merge("feature", "Merge pull request #1 from a/b\n\nTitle", date="2024-02-05T08:00:00Z")
    assert list(_feb(repo)) == ["Title"]


def test_direct_commit_has_no_pr_number(repo):
    _seed(repo)
    repo.commit("Tidy imports", {"pkg/core.py": "x = 3\n"}, date="2024-02-06T08:00:00Z")
    change = _feb(repo)["Tidy imports"]
    assert change.pr_number is None and change.merge_style == "direct"


def test_empty_commit_is_a_merged_change(repo):
    _seed(repo)
    repo.commit("Trigger CI", date="2024-02-07T08:00:00Z")
    assert _feb(repo)["Trigger CI"].merge_style == "direct"


def test_authored_next_month_committed_this_month_belongs_to_this_month(repo):
    _seed(repo)
    repo.commit(
        "Rebased fix (#9)", {"pkg/core.py": "x = 4\n"}, date="2024-02-29T23:30:00Z", author_date="2024-03-01T00:30:00Z"
    )
    assert "Rebased fix" in _feb(repo)
    assert merged_changes_in_window(repo.path / ".git", "main", *MAR) == []


def test_non_utc_offsets_near_midnight_use_the_utc_month(repo):
    _seed(repo)
    # 01:30 on 1 March in +02:00 is 23:30 on 29 February UTC.
    repo.commit("East (#1)", {"a.py": "1\n"}, date="2024-03-01T01:30:00+02:00")
    # 22:30 on 29 February in -03:00 is 01:30 on 1 March UTC.
    repo.commit("West (#2)", {"b.py": "2\n"}, date="2024-02-29T22:30:00-03:00")
    assert list(_feb(repo)) == ["East"]
    march = merged_changes_in_window(repo.path / ".git", "main", *MAR)
    assert [c.title for c in march] == ["West"]
    assert march[0].merged_at == datetime(2024, 3, 1, 1, 30, tzinfo=UTC)


def test_window_is_half_open(repo):
    _seed(repo)
    repo.commit("At start (#1)", {"a.py": "1\n"}, date="2024-02-01T00:00:00Z")
    repo.commit("At end (#2)", {"a.py": "2\n"}, date="2024-03-01T00:00:00Z")
    assert list(_feb(repo)) == ["At start"]


def test_empty_month_is_an_empty_list_not_an_error(repo):
    _seed(repo)
    repo.commit("April (#1)", {"a.py": "1\n"}, date="2024-04-02T00:00:00Z")
    assert merged_changes_in_window(repo.path / ".git", "main", *FEB) == []
    assert merge_commit_rows(repo.path / ".git", "o/r", "main", "2024-02-01", *FEB) == []


def test_committer_date_skew_within_slack_does_not_hide_changes(repo):
    _seed(repo)
    repo.commit("Feb A (#1)", {"a.py": "1\n"}, date="2024-02-10T00:00:00Z")
    # A fast-forwarded commit whose committer date is older than its parent's.
    repo.commit("Skewed (#2)", {"a.py": "2\n"}, date="2024-01-20T00:00:00Z")
    repo.commit("Feb B (#3)", {"a.py": "3\n"}, date="2024-02-20T00:00:00Z")
    assert list(_feb(repo)) == ["Feb A", "Feb B"]


def test_unknown_branch_becomes_a_failed_row(repo):
    _seed(repo)
    (row,) = merge_commit_rows(repo.path / ".git", "o/r", "trunk", "2024-02-01", *FEB)
    assert row["status"] == "failed" and "git log failed" in row["reason"]
    with pytest.raises(GitError):
        merged_changes_in_window(repo.path / ".git", "trunk", *FEB)


@pytest.mark.parametrize(
    ("message", "parents", "expected"),
    [
        ("Fix (#12)", 1, (12, "Fix", "", "squash")),
        ("Fix (#12) ", 1, (12, "Fix", "", "squash")),
        ("Mention #12 in the middle", 1, (None, "Mention #12 in the middle", "", "direct")),
        ("Merge pull request #7 from x/y\n\nTitle\n\nBody", 2, (7, "Title", "Body", "merge")),
        ("Merge pull request #7 from x/y", 2, (7, "Merge pull request #7 from x/y", "", "merge")),
        ("Merge branch 'main' into dev", 2, (None, "Merge branch 'main' into dev", "", "merge")),
    ],
)
def test_parse_pr_reference(message, parents, expected):
    assert parse_pr_reference(message, parents) == expected


def test_issue12_point5_author_with_unit_separator_is_one_ordinary_row(repo):
    """Issue 12 point 5: a \\x1f in an author name (the old field separator) no longer breaks the month."""
    _seed(repo)
    odd = repo.commit(
        "Odd author (#7)", {"pkg/core.py": "x = 3\n"}, date="2024-02-02T10:00:00Z", author="Eve\x1fMallory"
    )
    fine = repo.commit("Fine author (#8)", {"pkg/core.py": "x = 4\n"}, date="2024-02-03T10:00:00Z")
    rows = merge_commit_rows(repo.path / ".git", "o/r", "main", "2024-02-01", *FEB)
    assert [(r["merge_commit_sha"], r["status"]) for r in rows] == [(odd, "ok"), (fine, "ok")]
    assert rows[0]["author"] == "Eve\x1fMallory" and rows[0]["pr_number"] == 7 and rows[0]["title"] == "Odd author"
    assert rows[1]["author"] == "Ada Author" and rows[1]["pr_number"] == 8


def test_issue12_point5_a_malformed_log_record_is_one_failed_row():
    """Issue 12 point 5, parsed defensively: a record git should never emit costs only itself."""
    good = "\0".join(["a" * 40, "b" * 40, "Ann", "ann@x", "1706868000", "1706868000", "Fix (#1)\n"])
    bad = "\0".join(["c" * 40, "b" * 40, "Bob", "bob@x", "not-a-date", "1706868000", "Broken\n"])
    records = log_records(f"{good}\0{bad}\0{good}\0".encode())
    assert records[0][0] == "a" * 40 and records[-1][0] == "a" * 40
    assert records[1] == "c" * 40
    with_nul = "\0".join(["d" * 40, "", "Nul", "n@x", "1706868000", "1706868000", "Title\0more body\n"])
    (record,) = log_records(f"{with_nul}\0".encode())
    assert record[6] == "Title\0more body\n"
