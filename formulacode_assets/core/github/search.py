"""Search that never loses results to GitHub's 1,000-result cap.

A query whose ``total_count`` passes the cap is split (file-size ranges for code search, time
windows for PR search) until every slice is under it; a slice that cannot be split further is
reported, not silently truncated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SEARCH_CAP = 1000


@dataclass
class SearchSlices:
    """The leaves of a split search: each under the cap, plus those that could not be split."""

    leaves: list[tuple[Any, int]] = field(default_factory=list)
    capped: list[tuple[Any, int]] = field(default_factory=list)


def split_until_under_cap(
    root: Any, count: Callable[[Any], int], split: Callable[[Any], tuple[Any, Any] | None], cap: int = SEARCH_CAP
) -> SearchSlices:
    """Split ``root`` (a size range, a time window) until each slice counts at most ``cap`` results."""
    result = SearchSlices()
    pending = [root]
    while pending:
        part = pending.pop()
        n = count(part)
        if n <= cap:
            if n:
                result.leaves.append((part, n))
            continue
        halves = split(part)
        if halves is None:
            result.capped.append((part, n))
        else:
            pending.extend(reversed(halves))
    return result


def split_size_range(part: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    lo, hi = part
    if lo >= hi:
        return None
    mid = (lo + hi) // 2
    return (lo, mid), (mid + 1, hi)


def split_time_window(part: tuple[datetime, datetime]) -> tuple[tuple[datetime, datetime], ...] | None:
    start, end = part
    if end - start <= timedelta(seconds=2):
        return None
    mid = start + (end - start) / 2
    mid = mid.replace(microsecond=0)
    return (start, mid), (mid, end)
