"""A GitHub-shaped REST server on 127.0.0.1 for tests: real HTTP, real pagination, scripted faults.

It serves what the pipeline calls — code and issue search (``total_count``, ``incomplete_results``,
the 1,000-result cap, ``Link`` headers), repositories (301 for renamed ones, 404/451), pull
requests, their comments and issues — from in-memory data, and records every request (path,
query, Authorization header) so tests can count requests and check token rotation.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

SEARCH_CAP = 1000


@dataclass
class Fault:
    """Answer requests whose path matches ``path`` with ``status`` the next ``times`` times."""

    path: str
    status: int
    headers: dict = field(default_factory=dict)
    body: dict = field(default_factory=dict)
    times: int = 1


@dataclass
class Request:
    method: str
    path: str
    query: dict
    authorization: str | None


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeGitHub:
    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.renamed: dict[str, str] = {}  # old full name -> new full name
        self.blocked: dict[str, int] = {}  # full name -> 404 / 410 / 451
        self.code_files: list[dict] = []  # {"repo": full_name, "path": ..., "size": ...}
        self.pulls: dict[tuple[str, int], dict] = {}
        self.issue_comments: dict[tuple[str, int], list[dict]] = {}
        self.review_comments: dict[tuple[str, int], list[dict]] = {}
        self.issues: dict[tuple[str, int], dict] = {}
        self.faults: list[Fault] = []
        self.incomplete_searches = 0  # the next N search answers say incomplete_results: true
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- data ------------------------------------------------------------------------------------

    def add_repo(self, full_name: str, clone_url: str, stars: int = 1000, **fields) -> dict:
        repo = {
            "id": len(self.repos) + 1000,
            "full_name": full_name,
            "name": full_name.split("/")[1],
            "owner": {"login": full_name.split("/")[0]},
            "clone_url": clone_url,
            "html_url": f"https://github.example/{full_name}",
            "default_branch": "main",
            "stargazers_count": stars,
            "subscribers_count": stars // 10,
            "fork": False,
            "archived": False,
            "disabled": False,
        }
        repo.update(fields)
        self.repos[full_name] = repo
        return repo

    def add_pull(
        self,
        repo: str,
        number: int,
        *,
        title: str,
        created_at: str,
        merged_at: str | None,
        merge_commit_sha: str | None,
        base: str = "main",
        body: str = "",
        labels=(),
        author="alice",
        base_sha: str = "0" * 40,
        head_sha: str = "f" * 40,
    ) -> dict:
        pull = {
            "number": number,
            "title": title,
            "body": body,
            "state": "closed",
            "html_url": f"https://github.example/{repo}/pull/{number}",
            "user": {"login": author},
            "labels": [{"name": name} for name in labels],
            "created_at": created_at,
            "merged_at": merged_at,
            "merged": merged_at is not None,
            "merge_commit_sha": merge_commit_sha,
            "base": {"ref": base, "sha": base_sha},
            "head": {"ref": f"feature-{number}", "sha": head_sha},
        }
        self.pulls[(repo, number)] = pull
        return pull

    # -- server ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):  # keep test output quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def count(self, path: str = "", *, prefix: bool = False) -> int:
        """Requests to ``path`` (or to every path under it with ``prefix=True``; "" counts all)."""
        with self._lock:
            return sum(1 for r in self.requests if (r.path.startswith(path) if prefix or not path else r.path == path))

    # -- routing ---------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        with self._lock:
            self.requests.append(Request("GET", parsed.path, query, handler.headers.get("Authorization")))
            fault = next((f for f in self.faults if f.times > 0 and re.search(f.path, parsed.path)), None)
            if fault:
                fault.times -= 1
        if fault:
            return self._send(handler, fault.status, fault.body, fault.headers)
        try:
            status, body, headers = self._route(parsed.path, query)
        except KeyError:
            status, body, headers = 404, {"message": "Not Found"}, {}
        self._send(handler, status, body, headers)

    def _send(self, handler, status: int, body, headers: dict) -> None:
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("X-RateLimit-Limit", "5000")
        handler.send_header("X-RateLimit-Remaining", "4999")
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, path: str, query: dict):
        if path == "/search/code":
            return self._search(path, query, self._code_matches(query["q"]))
        if path == "/search/issues":
            return self._search(path, query, self._pull_matches(query["q"]))
        if match := re.fullmatch(r"/repositories/(\d+)", path):
            repo = next(r for r in self.repos.values() if r["id"] == int(match.group(1)))
            return 200, repo, {}
        if match := re.fullmatch(r"/repos/([^/]+/[^/]+)", path):
            name = match.group(1)
            if name in self.blocked:
                return self.blocked[name], {"message": "Repository access blocked"}, {}
            if name in self.renamed:
                new = self.repos[self.renamed[name]]
                return 301, {"message": "Moved Permanently"}, {"Location": f"{self.url}/repositories/{new['id']}"}
            return 200, self.repos[name], {}
        if match := re.fullmatch(r"/repos/([^/]+/[^/]+)/pulls/(\d+)", path):
            repo, number = match.group(1), int(match.group(2))
            urls = {"url": f"{self.url}{path}", "issue_url": f"{self.url}/repos/{repo}/issues/{number}"}
            return 200, {**self.pulls[(repo, number)], **urls}, {}
        if match := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path):
            key = (match.group(1), int(match.group(2)))
            return self._page(path, query, self.issue_comments.get(key, []))
        if match := re.fullmatch(r"/repos/([^/]+/[^/]+)/pulls/(\d+)/comments", path):
            key = (match.group(1), int(match.group(2)))
            return self._page(path, query, self.review_comments.get(key, []))
        if match := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)", path):
            return 200, {**self.issues[(match.group(1), int(match.group(2)))], "url": f"{self.url}{path}"}, {}
        raise KeyError(path)

    def _links(self, path: str, query: dict, page: int, last: int) -> dict:
        links = []
        for rel, number in (("next", page + 1), ("last", last)):
            if rel == "next" and page >= last:
                continue
            links.append(f'<{self.url}{path}?{urlencode({**query, "page": number})}>; rel="{rel}"')
        return {"Link": ", ".join(links)} if links else {}

    def _page(self, path: str, query: dict, items: list):
        per_page, page = int(query.get("per_page", 30)), int(query.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        return 200, items[(page - 1) * per_page : page * per_page], self._links(path, query, page, last)

    def _search(self, path: str, query: dict, matches: list):
        per_page, page = int(query.get("per_page", 30)), int(query.get("page", 1))
        reachable = matches[:SEARCH_CAP]  # GitHub serves at most 1,000 results of a query
        items = reachable[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(reachable) // per_page))
        with self._lock:
            incomplete = self.incomplete_searches > 0
            self.incomplete_searches -= incomplete
        body = {"total_count": len(matches), "incomplete_results": incomplete, "items": items}
        return 200, body, self._links(path, query, page, last)

    def _code_matches(self, q: str) -> list:
        size = re.search(r"size:(\d+)\.\.(\d+)", q)
        lo, hi = (int(size.group(1)), int(size.group(2))) if size else (0, 1 << 62)
        name = re.search(r"filename:(\S+)", q).group(1)
        found = [f for f in self.code_files if f["path"].rsplit("/", 1)[-1] == name and lo <= f["size"] <= hi]
        return [
            {
                "name": name,
                "path": f["path"],
                "sha": "0" * 40,
                "url": f"{self.url}/repos/{f['repo']}/contents/{f['path']}",
                "repository": {"full_name": f["repo"], "url": f"{self.url}/repos/{f['repo']}"},
            }
            for f in sorted(found, key=lambda f: (f["repo"], f["path"]))
        ]

    def _pull_matches(self, q: str) -> list:
        repo = re.search(r"repo:(\S+)", q).group(1)
        base = re.search(r"base:(\S+)", q).group(1)
        lo, hi = (_parse_ts(t) for t in re.search(r"merged:(\S+)\.\.(\S+)", q).groups())
        found = [
            p
            for (name, _n), p in self.pulls.items()
            if name == repo and p["merged_at"] and p["base"]["ref"] == base and lo <= _parse_ts(p["merged_at"]) <= hi
        ]
        found.sort(key=lambda p: p["number"])
        return [
            {
                "number": p["number"],
                "title": p["title"],
                "pull_request": {"url": f"{self.url}/repos/{repo}/pulls/{p['number']}"},
                "url": f"{self.url}/repos/{repo}/issues/{p['number']}",
                "created_at": p["created_at"],
                "closed_at": p["merged_at"],
                "state": "closed",
            }
            for p in found
        ]
