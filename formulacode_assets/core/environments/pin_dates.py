"""Resolution guard rails: every resolved pin with its release date, and pins far older than the commit.

A resolver maximising one package can quietly push another back by years (``sparse==0.3.1`` for
2024 commits, because the newest numpy excluded every newer sparse). Nothing fails — the
benchmarks just measure a stack nobody used. Each pin's release date comes from the package
index's JSON simple API (PEP 691 / PEP 700 ``upload-time``: PyPI and any local index serving
it); a pin released more than ``max_age_days`` (two years) before the commit is flagged on the
row. An unreachable index leaves dates unknown (``None``), never fails a context.

Flagging is not enough: :func:`guard_old_pins` *prevents* such a pin where the package had a
newer release by the commit date. It adds a floor (``pkg>=V``, V the oldest release of the two
years before the commit, or the newest one at the commit when nothing that recent exists) and
re-resolves; a floor that makes the resolution impossible is dropped again and the flag says so.
A pin that *is* the newest release at the commit date (an unmaintained package) stays, flagged.
A floor rather than a blanket downgrade: the rest of the resolution stays as the resolver chose.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.version import InvalidVersion, Version

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


def release_history(project: str, index_url: str, timeout: float = 10) -> dict[str, datetime] | None:
    """``{version: earliest upload-time}`` of ``project`` on the index (None: not on it; OSError: unreachable)."""
    url = f"{index_url.rstrip('/')}/{project}/"
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError:  # not on this index
        return None
    except ValueError:
        return None
    history: dict[str, datetime] = {}
    for entry in data.get("files") or []:
        version = _file_version(entry.get("filename", ""), project)
        if not version or not entry.get("upload-time"):
            continue
        try:
            when = datetime.fromisoformat(entry["upload-time"].replace("Z", "+00:00"))
        except ValueError:
            continue
        history[version] = min(when, history.get(version, when))
    return history


def release_date(project: str, version: str, index_url: str, timeout: float = 10) -> datetime | None:
    """The earliest ``upload-time`` of the files of ``project==version`` on the index (None: unknown)."""
    return (release_history(project, index_url, timeout) or {}).get(version)


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


def floor_version(
    pinned: str, history: dict[str, datetime], commit_date: datetime, max_age_days: int = MAX_AGE_DAYS
) -> str | None:
    """The lower bound that keeps ``pinned`` out, or None when nothing newer was released by the commit.

    The oldest final release of the ``max_age_days`` before the commit (the least the resolver is
    asked to give up), else the newest final release at the commit.
    """
    try:
        old = Version(pinned)
    except InvalidVersion:
        return None
    newer = []
    for text, when in history.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version > old and not version.is_prerelease and when <= commit_date:
            newer.append((version, when))
    if not newer:
        return None
    recent = [v for v, when in newer if when >= commit_date - timedelta(days=max_age_days)]
    return str(min(recent) if recent else max(v for v, _ in newer))


# ``resolve(requirements) -> (ok, pins, error)``: the install analysis's resolver at the commit date.
Resolver = Callable[[list[str]], tuple[bool, list[str], str]]


@dataclass
class PinGuard:
    pins: list[str]
    requirements: list[str]
    dates: dict[str, str | None]
    flagged: list[str]  # still too old after the guard, each saying why it stayed
    floored: list[str] = field(default_factory=list)  # "pkg>=V (was pkg==old, N years older than the commit)"


def guard_old_pins(
    pins: Sequence[str],
    requirements: Sequence[str],
    commit_date: datetime,
    index_url: str,
    resolve: Resolver,
    *,
    max_age_days: int = MAX_AGE_DAYS,
    timeout: float = 10,
) -> PinGuard:
    """Date the pins; floor the old ones that had a newer release and re-resolve (see the module doc)."""
    dates = pin_dates(pins, index_url, timeout)
    notes: dict[str, str] = {}
    floors: dict[str, str] = {}
    for pin, when in sorted(dates.items()):
        parsed = parse_pin(pin)
        if not when or not parsed or (commit_date - datetime.fromisoformat(when)).days <= max_age_days:
            continue
        try:
            history = release_history(parsed[0], index_url, timeout) or {}
        except OSError:
            history = {}
        floor = floor_version(parsed[1], history, commit_date, max_age_days)
        if floor is None:
            notes[pin] = "the newest release at the commit date" if history else "release history unknown"
        else:
            floors[pin] = f"{parsed[0]}>={floor}"
    if not floors:
        return PinGuard(list(pins), list(requirements), dates, _flags(dates, commit_date, max_age_days, notes))
    accepted: list[str] = []
    best = None
    ok, new_pins, error = resolve([*requirements, *floors.values()])
    if ok:
        accepted, best = list(floors), new_pins
    else:  # one at a time: keep each floor that still resolves with the ones kept before it
        for pin, floor in floors.items():
            ok, new_pins, error = resolve([*requirements, *(floors[p] for p in accepted), floor])
            if ok:
                accepted.append(pin)
                best = new_pins
            else:
                last = error.strip().splitlines()[-1:] or ["no resolution"]
                notes[pin] = f"the floor {floor} does not resolve: {last[0][:200]}"
    if best is None:
        return PinGuard(list(pins), list(requirements), dates, _flags(dates, commit_date, max_age_days, notes))
    new_dates = {pin: dates.get(pin) for pin in best}
    missing = [pin for pin in best if pin not in dates]
    new_dates.update(pin_dates(missing, index_url, timeout))
    floored = []
    for pin in accepted:
        age = (commit_date - datetime.fromisoformat(dates[pin])).days / 365.25
        name = parse_pin(pin)[0]
        now = next((p for p in best if (parse_pin(p) or ("",))[0] == name), "not installed")
        floored.append(f"{floors[pin]} (was {pin}, {age:.1f} years older than the commit; now {now})")
    return PinGuard(
        best,
        [*requirements, *(floors[p] for p in accepted)],
        new_dates,
        _flags(new_dates, commit_date, max_age_days, notes),
        floored,
    )


def _flags(dates, commit_date, max_age_days, notes: dict[str, str]) -> list[str]:
    flagged = flag_old_pins(dates, commit_date, max_age_days)
    out = []
    for line in flagged:
        pin = line.split(" (", 1)[0]
        out.append(line[:-1] + f"; {notes[pin]})" if pin in notes else line)
    return out
