"""Resolution guard rails: every resolved pin with its release date, and pins far older than the commit.

A resolver maximising one package can quietly push another back by years (``sparse==0.3.1`` for
2024 commits, because the newest numpy excluded every newer sparse). Nothing fails — the
benchmarks just measure a stack nobody used. Each pin's release date comes from the package
index's JSON simple API (PEP 691 / PEP 700 ``upload-time``: PyPI and any local index serving
it); a pin released more than ``max_age_days`` (two years) before the commit is flagged on the
row. An unreachable index leaves dates unknown (``None``), never fails a context.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import datetime

MAX_AGE_DAYS = 730
_ACCEPT = "application/vnd.pypi.simple.v1+json"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pin(pin: str) -> tuple[str, str] | None:
    match = _PIN.match(pin.strip())
    return (normalize(match.group(1)), match.group(2)) if match else None


def _file_version(filename: str, project: str) -> str | None:
    """The version in a wheel or sdist file name of ``project``."""
    stem = re.sub(r"\.(whl|tar\.gz|zip|tar\.bz2)$", "", filename)
    parts = stem.split("-")
    if len(parts) < 2 or normalize(parts[0]) != project:
        return None
    return parts[1]


def release_date(project: str, version: str, index_url: str, timeout: float = 10) -> datetime | None:
    """The earliest ``upload-time`` of the files of ``project==version`` on the index (None: unknown)."""
    url = f"{index_url.rstrip('/')}/{project}/"
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError:  # not on this index
        return None
    except ValueError:
        return None
    times = []
    for entry in data.get("files") or []:
        if _file_version(entry.get("filename", ""), project) == version and entry.get("upload-time"):
            try:
                times.append(datetime.fromisoformat(entry["upload-time"].replace("Z", "+00:00")))
            except ValueError:
                continue
    return min(times) if times else None


def pin_dates(pins: Iterable[str], index_url: str, timeout: float = 10) -> dict[str, str | None]:
    """``{pin: ISO release date or None}``; once the index is unreachable the rest stay unknown."""
    dated: dict[str, str | None] = {}
    reachable = True
    for pin in pins:
        parsed = parse_pin(pin)
        when = None
        if parsed and reachable:
            try:
                when = release_date(*parsed, index_url, timeout)
            except OSError:
                reachable = False
        dated[pin] = when.isoformat() if when else None
    return dated


def flag_old_pins(dates: dict[str, str | None], commit_date: datetime, max_age_days: int = MAX_AGE_DAYS) -> list[str]:
    """Pins released more than ``max_age_days`` before the commit, each with its age: ``"pkg==1 (3.1 years)"``."""
    flagged = []
    for pin, when in sorted(dates.items()):
        if not when:
            continue
        age = (commit_date - datetime.fromisoformat(when)).days
        if age > max_age_days:
            flagged.append(f"{pin} ({age / 365.25:.1f} years older than the commit)")
    return flagged
