"""GitHub as a source of repositories and merged pull requests, through PyGithub.

On top of the client pool (:mod:`.client`: token rotation, PyGithub's retries and pacing) and the
split search (:mod:`.search`: nothing lost to the 1,000-result cap), this module makes:

- plain-dict records (JSON-serialisable, so closed months are cached by ``ResponseCache``);
- 404 / 410 / 451 become a repository status; a renamed repository (301) is followed and recorded.

Tokens live only inside the PyGithub clients: never in keys, records, logs or exception text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from formulacode_assets.core.github.client import GitHubClientPool, github_exception, redact, request_error
from formulacode_assets.core.github.response_cache import ResponseCache
from formulacode_assets.core.github.search import SEARCH_CAP, split_size_range, split_time_window, split_until_under_cap

# Repository states that are answers, not errors: gone, moved away, blocked for legal reasons.
REPO_STATUS_CODES = {404: "not found", 410: "gone", 451: "unavailable for legal reasons"}
_CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+(?:(?P<repo>[\w.-]+/[\w.-]+))?#(?P<number>\d+)", re.IGNORECASE
)
_ISSUE_URL = re.compile(r"https?://[^\s/]+/(?P<repo>[\w.-]+/[\w.-]+)/issues/(?P<number>\d+)")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubSource:
    """The GitHub calls of the pipeline, cached per closed month."""

    def __init__(self, pool: GitHubClientPool, cache: ResponseCache, log: Callable[[str], None] = lambda _m: None):
        self.pool = pool
        self.cache = cache
        self.log = lambda message: log(redact(message))

    # -- search ------------------------------------------------------------------------------------

    def _search_page(self, kind: str, query: str, page: int, attempts: int = 3) -> dict:
        """One page of a search; GitHub's ``incomplete_results`` (a timed-out search) is asked again."""
        for _attempt in range(attempts):
            answer = self._search_page_once(kind, query, page)
            if not answer["incomplete_results"]:
                return answer
        self.log(f"search {query!r} page {page + 1}: GitHub still reports incomplete results")
        return answer

    def _search_page_once(self, kind: str, query: str, page: int) -> dict:
        gh = self.pool.client()
        try:
            results = gh.search_code(query) if kind == "code" else gh.search_issues(query)
            items = results.get_page(page)
            return {
                "total_count": results.totalCount,
                "incomplete_results": bool(results.incomplete_results),
                "items": [_search_item(kind, item) for item in items],
            }
        except github_exception() as exc:
            raise request_error(f"search {kind} {query!r}", exc) from None
        except Exception as exc:  # retries exhausted, connection errors
            raise request_error(f"search {kind} {query!r}", exc) from None

    def _search_all(self, kind: str, query: str, first: dict) -> Iterator[dict]:
        yield from first["items"]
        pages = min(first["total_count"], SEARCH_CAP)
        page_count = (pages + self.pool.settings.per_page - 1) // self.pool.settings.per_page
        for page in range(1, page_count):
            yield from self._search_page(kind, query, page)["items"]

    def search(self, kind: str, root: Any, query_for: Callable[[Any], str], split, closed: bool, cache_key: dict):
        """Every item of a search split under the cap; returns ``(items, capped_slices)``."""

        def fetch():
            firsts: dict[str, dict] = {}

            def count(part):
                query = query_for(part)
                firsts[query] = self._search_page(kind, query, 0)
                return firsts[query]["total_count"]

            slices = split_until_under_cap(root, count, split)
            items = []
            for part, n in slices.leaves:
                query = query_for(part)
                found = list(self._search_all(kind, query, firsts[query]))
                if len(found) < n:
                    self.log(f"search slice {query!r}: {len(found)} of {n} results returned")
                items.extend(found)
            capped = [{"query": query_for(part), "total_count": n} for part, n in slices.capped]
            return {"items": items, "capped": capped}

        answer = self.cache.get_or_fetch(f"search-{kind}", cache_key, closed, fetch)
        return answer["items"], answer["capped"]

    def discover_asv_repositories(self, closed: bool, month: str, max_size: int = 1 << 20) -> tuple[list[dict], list]:
        """Repositories with a file named ``asv.conf.json`` (code search split by file size)."""
        items, capped = self.search(
            "code",
            (0, max_size),
            lambda r: f"filename:asv.conf.json size:{r[0]}..{r[1]}",
            split_size_range,
            closed,
            {"what": "asv.conf.json", "month": month, "base_url": self.pool.settings.base_url},
        )
        found: dict[str, dict] = {}
        for item in items:
            name = item["repo_name"]
            if name and item["path"].rsplit("/", 1)[-1] == "asv.conf.json":
                found.setdefault(name, {"repo_name": name, "asv_conf_path": item["path"]})
        return sorted(found.values(), key=lambda r: r["repo_name"]), capped

    def merged_pr_numbers(
        self, repo_name: str, branch: str, start: datetime, end: datetime, closed: bool
    ) -> tuple[list[int], list]:
        """Numbers of PRs merged into ``branch`` in ``[start, end)``, by merge time (never creation time)."""

        def query_for(part):
            lo, hi = part
            # GitHub's ranges are inclusive: stop one second before the window's end.
            return (
                f"repo:{repo_name} is:pr is:merged base:{branch} merged:{_iso(lo)}..{_iso(hi - timedelta(seconds=1))}"
            )

        items, capped = self.search(
            "issues",
            (start, end),
            query_for,
            split_time_window,
            closed,
            {
                "repo": repo_name,
                "branch": branch,
                "start": _iso(start),
                "end": _iso(end),
                "base_url": self.pool.settings.base_url,
            },
        )
        numbers = sorted({int(item["number"]) for item in items})
        return numbers, capped

    # -- repositories --------------------------------------------------------------------------------

    def repository(self, repo_name: str, closed: bool, month: str) -> dict:
        """Repository metadata, or ``{"status": ..., "reason": ...}`` for 404/410/451 and request failures."""

        def fetch():
            gh = self.pool.client()
            try:
                data = gh.get_repo(repo_name).raw_data
            except github_exception() as exc:
                if exc.status in REPO_STATUS_CODES:
                    return {
                        "status": "failed",
                        "reason": f"repository {REPO_STATUS_CODES[exc.status]} (HTTP {exc.status})",
                    }
                return {"status": "failed", "reason": request_error(f"GET repos/{repo_name}", exc).reason}
            except Exception as exc:
                return {"status": "failed", "reason": request_error(f"GET repos/{repo_name}", exc).reason}
            parent = data.get("parent") or {}
            return {
                "status": "ok",
                "full_name": data.get("full_name"),
                "clone_url": data.get("clone_url"),
                "default_branch": data.get("default_branch"),
                "stars": data.get("stargazers_count"),
                "watchers": data.get("subscribers_count", data.get("watchers_count")),
                "is_fork": bool(data.get("fork")),
                "fork_parent": parent.get("full_name"),
                "is_archived": bool(data.get("archived")),
                "is_disabled": bool(data.get("disabled")),
            }

        return self.cache.get_or_fetch(
            "repos", {"repo": repo_name, "month": month, "base_url": self.pool.settings.base_url}, closed, fetch
        )

    def repositories(self, names: list[str], closed: bool, month: str) -> dict[str, dict]:
        return {name: self.repository(name, closed, month) for name in names}

    # -- pull requests -------------------------------------------------------------------------------

    def pull_request(self, repo_name: str, number: int, closed: bool) -> dict:
        """A merged PR with what a task needs: text, labels, shas, discussion before the merge, linked issues."""

        def fetch():
            gh = self.pool.client()
            what = f"{repo_name}#{number}"
            try:
                repo = gh.get_repo(repo_name)
                pr = repo.get_pull(number)
                merged_at = pr.merged_at
                comments = [
                    _comment(c) for c in pr.get_issue_comments() if merged_at is None or c.created_at < merged_at
                ]
                reviews = [
                    _comment(c) for c in pr.get_review_comments() if merged_at is None or c.created_at < merged_at
                ]
                linked = [
                    self._linked_issue(repo_name, repo, ref) for ref in linked_issue_refs(pr.body or "", repo_name)
                ]
            except github_exception() as exc:
                return {"number": number, "status": "failed", "reason": request_error(f"GET {what}", exc).reason}
            except Exception as exc:
                return {"number": number, "status": "failed", "reason": request_error(f"GET {what}", exc).reason}
            return {
                "number": number,
                "status": "ok",
                "title": pr.title,
                "body": pr.body or "",
                "url": pr.html_url,
                "author": pr.user.login if pr.user else None,
                "labels": [label.name for label in pr.labels],
                "created_at": _iso(pr.created_at),
                "merged_at": _iso(merged_at) if merged_at else None,
                "merge_commit_sha": pr.merge_commit_sha,
                "base_sha": pr.base.sha,
                "head_sha": pr.head.sha,
                "comments": comments,
                "review_comments": reviews,
                "linked_issues": [issue for issue in linked if issue is not None],
            }

        return self.cache.get_or_fetch(
            "pulls", {"repo": repo_name, "number": number, "base_url": self.pool.settings.base_url}, closed, fetch
        )

    def merged_pull_requests(
        self, repo_name: str, branch: str, start: datetime, end: datetime, closed: bool
    ) -> tuple[list[dict], list]:
        """Every PR merged into ``branch`` in the window, as records; plus search slices over the cap."""
        numbers, capped = self.merged_pr_numbers(repo_name, branch, start, end, closed)
        return [self.pull_request(repo_name, n, closed) for n in numbers], capped

    def _linked_issue(self, pr_repo_name: str, pr_repo, ref: tuple[str, int]) -> dict | None:
        repo_name, number = ref
        try:
            target = pr_repo if repo_name == pr_repo_name else self.pool.client().get_repo(repo_name)
            issue = target.get_issue(number)
            return {"repo": repo_name, "number": number, "title": issue.title, "body": issue.body or ""}
        except github_exception() as exc:
            self.log(f"linked issue {repo_name}#{number} skipped: HTTP {exc.status}")
            return None


def _search_item(kind: str, item) -> dict:
    """The fields the pipeline uses from a search hit (attributes present in the hit: no extra request)."""
    if kind == "code":
        return {"repo_name": item.repository.full_name, "path": item.path}
    return {"number": item.number}


def _comment(comment) -> dict:
    return {
        "author": comment.user.login if comment.user else None,
        "created_at": _iso(comment.created_at),
        "body": comment.body or "",
    }


def linked_issue_refs(body: str, repo_name: str) -> list[tuple[str, int]]:
    """Issues a PR body closes (``fixes #12``, ``closes owner/repo#3``) or links by URL, in order, once each."""
    refs: list[tuple[str, int]] = []
    for match in _CLOSING.finditer(body):
        refs.append((match.group("repo") or repo_name, int(match.group("number"))))
    for match in _ISSUE_URL.finditer(body):
        refs.append((match.group("repo"), int(match.group("number"))))
    return list(dict.fromkeys(refs))


def parse_iso(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if value else None
