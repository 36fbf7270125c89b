"""A disk cache of API responses for closed months, keyed by the request.

A closed month's answers no longer change (a PR merged in February stays merged in February), so
they are kept as JSON files and a re-run of that month makes no requests. The open month is never
served from the cache. Keys hold the request (endpoint, query, parameters), never credentials.
Files are written to a temporary name and renamed, so concurrent runs never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def month_is_closed(end: datetime, now: datetime | None = None) -> bool:
    """A month whose window ended before ``now`` (UTC) can be cached."""
    return end <= (now or datetime.now(UTC))


class ResponseCache:
    """``get_or_fetch`` returns the cached answer of a closed month's request, or fetches (and stores) it."""

    def __init__(self, root: Path, refresh: bool = False):
        self.root = Path(root)
        self.refresh = refresh
        self.hits = 0
        self.misses = 0

    def _path(self, namespace: str, key: dict) -> tuple[Path, str]:
        canonical = json.dumps(key, sort_keys=True, default=str)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return self.root / namespace / digest[:2] / f"{digest}.json", canonical

    def get_or_fetch(self, namespace: str, key: dict, closed: bool, fetch: Callable[[], Any]) -> Any:
        path, canonical = self._path(namespace, key)
        if closed and not self.refresh and path.exists():
            self.hits += 1
            return json.loads(path.read_text())["value"]
        self.misses += 1
        value = fetch()
        if closed:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump({"key": json.loads(canonical), "value": value}, handle, default=str)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return value
