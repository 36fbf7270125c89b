"""The changes merged into a default branch in a time window, from one ``git log`` per repo-month."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from formulacode_assets.core.mining.git import GitError, run_git

# git's --since stops the walk at the first commit older than the date. Real histories have some
# committer-date skew along the first-parent chain (fast-forwarded branches, clock errors), so the
# walk stops this much earlier and the exact window is applied here, on the committer timestamp.
WALK_SLACK = timedelta(days=60)

_MERGE_PR = re.compile(r"^Merge pull request #(\d+) from \S+")
_TRAILING_PR = re.compile(r"\s*\(#(\d+)\)\s*$")
_FIELDS = ("%H", "%P", "%an", "%ae", "%at", "%ct", "%B")
# Fields are NUL-separated and, with ``-z``, records are NUL-terminated: git cannot put a NUL inside
# an ident or a date, so any byte an author chose (\x1f included) stays inside its field.
_LOG_FORMAT = "%x00".join(_FIELDS)
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_PARENTS = re.compile(r"^([0-9a-f]{40,64}( [0-9a-f]{40,64})*)?$")
_DIGITS = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class MergedChange:
    merge_commit_sha: str
    base_sha: str | None  # the first parent; None for a root commit
    parent_count: int
    pr_number: int | None
    title: str
    body: str
    author: str
    author_email: str
    authored_at: datetime
    merged_at: datetime  # the committer date of the first-parent commit, UTC
    merge_style: str  # "merge" | "squash" | "direct"


def parse_pr_reference(message: str, parent_count: int) -> tuple[int | None, str, str, str]:
    """Split a commit message into (pr_number, title, body, merge_style).

    GitHub writes ``Merge pull request #N from owner/branch`` with the PR title as the first body
    line for merge commits, and ``Title (#N)`` for squash merges; a merge commit may also use the
    squash-style subject. Anything else is a direct push with no PR number.
    """
    subject, _, rest = message.strip("\n").partition("\n")
    body = rest.strip("\n")
    pr_number: int | None = None
    title = subject.strip()
    if match := _MERGE_PR.match(subject):
        pr_number = int(match.group(1))
        first, _, remainder = body.partition("\n")
        if first.strip():
            title, body = first.strip(), remainder.strip("\n")
    elif match := _TRAILING_PR.search(subject):
        pr_number = int(match.group(1))
        title = subject[: match.start()].strip()
    if parent_count > 1:
        style = "merge"
    elif pr_number is not None:
        style = "squash"
    else:
        style = "direct"
    return pr_number, title, body, style


def _utc(timestamp: str) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


def _looks_like_record(tokens: list[str], i: int) -> bool:
    return i + 1 < len(tokens) and bool(_SHA.match(tokens[i])) and bool(_PARENTS.match(tokens[i + 1]))


def _starts_record(tokens: list[str], i: int) -> bool:
    return (
        i + 6 < len(tokens)
        and _looks_like_record(tokens, i)
        and bool(_DIGITS.match(tokens[i + 4]))
        and bool(_DIGITS.match(tokens[i + 5]))
    )


def log_records(out: bytes) -> list[tuple[str, ...] | str]:
    """Split ``git log -z --format=_LOG_FORMAT`` output into 7-field records.

    A record that does not have the expected shape (a message with a raw NUL, a crafted object)
    is returned as the text of its first token (its sha, when it has one) so that the caller can
    make it one failed row; the records around it are unaffected.
    """
    tokens = out.decode("utf-8", "replace").split("\0")
    if tokens and tokens[-1] == "":
        tokens.pop()
    records: list[tuple[str, ...] | str] = []
    i = 0
    while i < len(tokens):
        if _starts_record(tokens, i):
            fields = tokens[i : i + 7]
            i += 7
            # A raw NUL inside a message splits it: keep the pieces until the next record starts.
            while i < len(tokens) and not _looks_like_record(tokens, i):
                fields[6] += "\0" + tokens[i]
                i += 1
            records.append(tuple(fields))
        else:
            records.append(tokens[i][:64])
            i += 1
            while i < len(tokens) and not _starts_record(tokens, i):
                i += 1
    return records


def merged_changes_in_window(git_dir: Path, branch: str, start: datetime, end: datetime) -> list[MergedChange]:
    """First-parent commits of ``branch`` whose committer date is in ``[start, end)`` (UTC), oldest first."""
    return [c for c in _window_records(git_dir, branch, start, end) if isinstance(c, MergedChange)]


def _window_records(git_dir: Path, branch: str, start: datetime, end: datetime) -> list[MergedChange | str]:
    """The window's changes, oldest first; an unparseable commit record is kept as its sha text."""
    since = int((start - WALK_SLACK).timestamp())
    until = int(end.timestamp())
    out = run_git(
        git_dir,
        [
            "log",
            "--first-parent",
            "-z",
            f"--format={_LOG_FORMAT}",
            f"--since=@{since}",
            f"--until=@{until}",
            f"refs/heads/{branch}",
            "--",
        ],
    )
    changes: list[MergedChange | str] = []
    for record in log_records(out):
        if isinstance(record, str):
            changes.append(record)
            continue
        sha, parents, author, email, authored, committed, message = record
        try:
            merged_at, authored_at = _utc(committed), _utc(authored)
        except (ValueError, OverflowError, OSError):
            changes.append(sha)
            continue
        if not (start <= merged_at < end):
            continue
        parent_list = parents.split()
        pr_number, title, body, style = parse_pr_reference(message, len(parent_list))
        changes.append(
            MergedChange(
                merge_commit_sha=sha,
                base_sha=parent_list[0] if parent_list else None,
                parent_count=len(parent_list),
                pr_number=pr_number,
                title=title,
                body=body,
                author=author,
                author_email=email,
                authored_at=authored_at,
                merged_at=merged_at,
                merge_style=style,
            )
        )
    changes.reverse()
    return changes


def last_commit_before(git_dir: Path, branch: str, end: datetime) -> str | None:
    """The tip of ``branch`` as it stood at ``end`` (first-parent walk on committer date), if any."""
    out = run_git(
        git_dir,
        ["rev-list", "-1", "--first-parent", f"--until=@{int(end.timestamp()) - 1}", f"refs/heads/{branch}", "--"],
    )
    sha = out.decode().strip()
    return sha or None


def merge_commit_rows(
    git_dir: Path, repo_name: str, branch: str, month: str, start: datetime, end: datetime
) -> list[dict]:
    """The month's ``merge_commits`` rows of one repository; a git failure becomes one failed row."""
    try:
        changes = _window_records(git_dir, branch, start, end)
    except GitError as exc:
        return [{"month": month, "repo_name": repo_name, "status": "failed", "reason": f"git log failed: {exc.reason}"}]
    rows = []
    for change in changes:
        if isinstance(change, MergedChange):
            rows.append({"month": month, "repo_name": repo_name, **vars(change), "status": "ok", "reason": None})
        else:
            sha = change if _SHA.match(change) else None
            reason = f"unparseable git log record {change[:40]!r}"
            rows.append(
                {"month": month, "repo_name": repo_name, "merge_commit_sha": sha, "status": "failed", "reason": reason}
            )
    return rows


def commits_by_sha(git_dir: Path, shas: list[str]) -> dict[str, dict]:
    """Parents, author and dates of the given commits (one git process); unknown shas are absent."""
    if not shas:
        return {}
    out = run_git(
        git_dir,
        ["log", "--no-walk=unsorted", "--stdin", "--ignore-missing", "-z", f"--format={_LOG_FORMAT}"],
        input="".join(f"{sha}\n" for sha in shas).encode(),
    )
    commits = {}
    for record in log_records(out):
        if isinstance(record, tuple):
            sha, parents, author, email, authored, committed, _message = record
            commits[sha] = {
                "parents": parents.split(),
                "author": author,
                "author_email": email,
                "authored_at": _utc(authored),
            }
    return commits


def pull_request_rows(
    git_dir: Path, repo_name: str, month: str, start: datetime, end: datetime, pulls: list[dict]
) -> list[dict]:
    """``merge_commits`` rows from GitHub PR records, with the code side (base = first parent) from the mirror.

    A PR belongs to the month by ``merged_at``, whenever it was opened. A PR whose merge commit
    is not in the mirror (force-pushed away, not fetched) is a failed row with that reason.
    """
    shas = [p["merge_commit_sha"] for p in pulls if p.get("status") == "ok" and p.get("merge_commit_sha")]
    try:
        commits = commits_by_sha(git_dir, shas)
    except GitError as exc:
        commits, git_problem = {}, f"git log failed: {exc.reason}"
    else:
        git_problem = None
    rows = []
    for pr in pulls:
        row = {"month": month, "repo_name": repo_name, "pr_number": pr["number"]}
        if pr.get("status") != "ok":
            rows.append({**row, "status": "failed", "reason": pr.get("reason")})
            continue
        merged_at = datetime.strptime(pr["merged_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if not (start <= merged_at < end):
            continue  # search returned a PR outside the window (its index lags): not this month's
        sha = pr.get("merge_commit_sha")
        commit = commits.get(sha) if sha else None
        row.update(
            {
                "merge_commit_sha": sha,
                "title": pr["title"],
                "body": pr["body"],
                "merged_at": merged_at,
                "pr_url": pr.get("url"),
                "pr_author": pr.get("author"),
                "pr_labels": pr.get("labels") or [],
                "pr_created_at": datetime.strptime(pr["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
                "pr_base_sha": pr.get("base_sha"),
                "pr_head_sha": pr.get("head_sha"),
                "pr_comments": json.dumps(pr.get("comments") or []),
                "pr_review_comments": json.dumps(pr.get("review_comments") or []),
                "linked_issues": json.dumps(pr.get("linked_issues") or []),
            }
        )
        if commit is None:
            reason = git_problem or (
                f"merge commit {sha} is not in the mirror" if sha else "PR has no merge commit sha"
            )
            rows.append({**row, "status": "failed", "reason": reason})
            continue
        parents = commit["parents"]
        rows.append(
            {
                **row,
                "base_sha": parents[0] if parents else None,
                "parent_count": len(parents),
                "author": commit["author"],
                "author_email": commit["author_email"],
                "authored_at": commit["authored_at"],
                "merge_style": "merge" if len(parents) > 1 else "squash",
                "status": "ok",
                "reason": None,
            }
        )
    return sorted(rows, key=lambda r: (r.get("merged_at") or end, r["pr_number"]))
