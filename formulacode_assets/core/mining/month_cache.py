"""Mined repository-months by content, so re-running a month whose inputs did not change mines nothing.

A ``merge_commits`` repository-month is decided by the first-parent history through the window end
(the sha of the newest first-parent commit before the end names all of it), the window, the branch
and the code version; a ``patches`` repository-month by its input rows, the benchmark folder, the
asv config path and the code version. Either key unchanged means the same rows, so they are read
back instead of running git. A mirror that gained a commit inside the window has a new tip, so a
new key, and is mined again.

One SQLite file (``<cache_dir>/mining/months.sqlite3``, WAL: shared by threads, processes and
concurrent runs); rows are stored as Arrow IPC of the stage's contract, so types round-trip
exactly. Only months mined without a git failure are stored: a transient failure is retried.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from formulacode_assets.core.contracts import MERGE_COMMITS, PATCHES, Contract
from formulacode_assets.core.mining import merged_changes, patches
from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.sqlite_files import ensure_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mined_months (
    key TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    repo_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rows BLOB NOT NULL
)
"""


def _digest(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def merge_commits_key(
    repo_name: str, branch: str, tip: str | None, start: datetime, end: datetime, code_version: str
) -> str:
    """The key of a git-source ``merge_commits`` repository-month (``tip``: newest first-parent commit before end)."""
    return _digest(["merge_commits", repo_name, branch, tip, start.isoformat(), end.isoformat(), code_version])


def patches_key(rows: Sequence[dict], benchmark_dir: str | None, asv_conf_path: str | None, code_version: str) -> str:
    """The key of a ``patches`` repository-month: its input rows (shas, bases, text) and flags' inputs."""
    return _digest(["patches", list(rows), benchmark_dir, asv_conf_path, code_version])


class MinedMonthCache:
    """Rows of repository-months by key; each call opens its own connection, so threads may share it."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_wal(self.path)
        with self._connect() as con:
            con.execute(_SCHEMA)

    @classmethod
    def in_cache_dir(cls, cache_dir: Path | str) -> MinedMonthCache:
        return cls(Path(cache_dir) / "mining" / "months.sqlite3")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, key: str, contract: Contract) -> list[dict] | None:
        con = self._connect()
        try:
            found = con.execute("SELECT rows FROM mined_months WHERE key = ?", (key,)).fetchone()
        finally:
            con.close()
        if found is None:
            return None
        table = pa.ipc.open_stream(found[0]).read_all()
        if not table.schema.equals(contract.schema, check_metadata=False):
            return None  # the contract changed since: mine again
        return table.to_pylist()

    def put(self, key: str, contract: Contract, repo_name: str, rows: Sequence[dict]) -> None:
        table = contract.to_table(rows)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        con = self._connect()
        try:
            with con:
                con.execute(
                    "INSERT OR REPLACE INTO mined_months VALUES (?, ?, ?, ?, ?)",
                    (key, contract.name, repo_name, created, sink.getvalue().to_pybytes()),
                )
        finally:
            con.close()


def rows_of_month(
    cache: MinedMonthCache,
    key: str | None,
    contract: Contract,
    repo_name: str,
    mine: Callable[[], list[dict]],
    *,
    failed_before: int = 0,
) -> tuple[list[dict], bool]:
    """``(rows, mined)``: the cached rows for ``key``, else ``mine()``'s, stored when git did not fail.

    ``key`` None (the history tip could not be read) always mines. ``failed_before`` is how many
    input rows had already failed upstream: only rows that failed here keep a month out of the cache.
    """
    if key is not None and (rows := cache.get(key, contract)) is not None:
        return rows, False
    rows = mine()
    if key is not None and sum(r.get("status") == "failed" for r in rows) <= failed_before:
        cache.put(key, contract, repo_name, rows)
    return rows, True


def cached_merge_commit_rows(
    cache: MinedMonthCache,
    code_version: str,
    git_dir: Path,
    repo_name: str,
    branch: str,
    month: str,
    start: datetime,
    end: datetime,
) -> tuple[list[dict], bool]:
    """:func:`merged_changes.merge_commit_rows`, read from the cache when the history through ``end`` is unchanged."""
    try:
        tip = merged_changes.last_commit_before(git_dir, branch, end)
    except GitError:
        key = None  # mining reports the problem as a failed row
    else:
        key = merge_commits_key(repo_name, branch, tip, start, end, code_version)
    return rows_of_month(
        cache,
        key,
        MERGE_COMMITS,
        repo_name,
        lambda: merged_changes.merge_commit_rows(git_dir, repo_name, branch, month, start, end),
    )


def cached_patch_rows(
    cache: MinedMonthCache,
    code_version: str,
    git_dir: Path,
    repo_name: str,
    changes: Sequence[dict],
    benchmark_dir: str | None,
    asv_conf_path: str | None,
) -> tuple[list[dict], bool]:
    """:func:`patches.patch_rows`, read from the cache when the month's input rows are unchanged."""
    return rows_of_month(
        cache,
        patches_key(changes, benchmark_dir, asv_conf_path, code_version),
        PATCHES,
        repo_name,
        lambda: patches.patch_rows(git_dir, changes, benchmark_dir, asv_conf_path),
        failed_before=sum(r.get("status") == "failed" for r in changes),
    )
